import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanUpPlatform, harnessProcessEnv, uniqueName } from '../support/env.js';
import { spawnServer, type SpawnedServer } from '../support/spawn.js';

// Both example apps, started as a user starts them, driven over real HTTP.
describe.each([['express'], ['fastify']])('examples/%s over HTTP', (name) => {
  const mainDb = uniqueName(`tdbt_ex_${name}`);
  let server: SpawnedServer | undefined;

  afterAll(async () => {
    const code = await server?.stop();
    expect(code).toBe(0); // a clean shutdown on SIGTERM
    await cleanUpPlatform(mainDb);
  });

  it('signs up, logs in, creates a tenant, invites a member, streams documents in and out, deletes', async () => {
    server = await spawnServer(`examples/${name}/server.ts`, harnessProcessEnv(mainDb));
    const base = server.url;
    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(base + path, {
        method,
        headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });

    for (const [first, email] of [['Ada', 'ada@example.com'], ['Bob', 'bob@example.com']]) {
      const res = await call('POST', '/users', { firstName: first, lastName: 'X', email, password: 'a long password' });
      expect(res.status).toBe(201);
    }
    const dup = await call('POST', '/users', { firstName: 'A', lastName: 'X', email: 'ADA@example.com', password: 'a long password' });
    expect(dup.status).toBe(409);
    expect(((await dup.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');

    const bad = await call('POST', '/login', { email: 'ada@example.com', password: 'wrong password' });
    expect(bad.status).toBe(401);
    const login = async (email: string): Promise<{ token: string; user: { id: string } }> =>
      (await call('POST', '/login', { email, password: 'a long password' })).json() as Promise<{ token: string; user: { id: string } }>;
    const ada = await login('ada@example.com');
    const bob = await login('bob@example.com');
    const as = (who: { token: string }, tenantId?: string): Record<string, string> => ({
      authorization: `Bearer ${who.token}`,
      ...(tenantId && { 'x-tenant-id': tenantId }),
    });

    const created = await call('POST', '/tenants', { name: `Acme ${name}` }, as(ada));
    expect(created.status).toBe(201);
    const tenant = (await created.json()) as { id: string };

    // Bob is not a member yet.
    expect((await call('GET', '/t/documents', undefined, as(bob, tenant.id))).status).toBe(403);
    const invite = await call('POST', '/t/members', { userId: bob.user.id, role: 'viewer' }, as(ada, tenant.id));
    expect(invite.status).toBe(201);

    // A 3 MiB upload streamed from the request body, of unknown length (chunked).
    const bytes = randomBytes(3 * 1024 * 1024);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 256 * 1024) controller.enqueue(bytes.subarray(i, i + 256 * 1024));
        controller.close();
      },
    });
    const up = await fetch(`${base}/t/documents/report.bin`, {
      method: 'PUT',
      headers: { ...as(ada, tenant.id), 'content-type': 'application/octet-stream' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(up.status).toBe(201);
    const doc = (await up.json()) as { id: string; sizeBytes: number; md5: string };
    expect(doc.sizeBytes).toBe(bytes.length);
    expect(doc.md5).toBe(createHash('md5').update(bytes).digest('hex'));

    // Bob, a viewer, reads but cannot upload or delete.
    const listed = (await (await call('GET', '/t/documents', undefined, as(bob, tenant.id))).json()) as { items: { id: string }[] };
    expect(listed.items.map((d) => d.id)).toEqual([doc.id]);
    const down = await call('GET', `/t/documents/${doc.id}`, undefined, as(bob, tenant.id));
    expect(down.status).toBe(200);
    expect(Buffer.from(await down.arrayBuffer()).equals(bytes)).toBe(true);
    const viewerUpload = await fetch(`${base}/t/documents/nope.txt`, { method: 'PUT', headers: { ...as(bob, tenant.id), 'content-type': 'text/plain' }, body: 'x' });
    expect(viewerUpload.status).toBe(403);
    expect((await call('DELETE', `/t/documents/${doc.id}`, undefined, as(bob, tenant.id))).status).toBe(403);

    // No tenant named → 400; an unknown tenant → 404; no user → 403.
    expect((await call('GET', '/t/documents', undefined, as(ada))).status).toBe(400);
    expect((await call('GET', '/t/documents', undefined, as(ada, '00000000-0000-4000-8000-000000000000'))).status).toBe(404);
    expect((await call('GET', '/t/documents', undefined, { 'x-tenant-id': tenant.id })).status).toBe(403);

    expect((await call('DELETE', `/t/documents/${doc.id}`, undefined, as(ada, tenant.id))).status).toBe(204);
    expect((await call('GET', `/t/documents/${doc.id}`, undefined, as(ada, tenant.id))).status).toBe(404);
  });
});
