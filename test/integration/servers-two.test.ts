import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { freePort, startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { adminQuery, serverUrl, useTestPlatform } from '../support/env.js';
import { createTestUser } from '../support/users.js';

/** A server URL (no database) as `tenantServers` takes it. */
function withoutDatabase(url: string): string {
  const u = new URL(url);
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

describe('tenants over two real PostgreSQL servers', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  let dataDir: string;
  let port: number;
  let second: RunningServer | undefined;
  let platform: Platform;
  let userId: string;
  const tenants: Tenant[] = [];
  const contents = new Map<string, { documentId: string; bytes: Buffer }>();

  const secondUrl = (): string => `postgres://postgres:postgres@127.0.0.1:${port}`;
  const startSecond = async (): Promise<void> => {
    second = await startPostgres({ dataDir, port }, false);
  };
  const options = { tenantServers: { default: withoutDatabase(serverUrl()), second: '' }, tenantSpares: 0, pool: { connectTimeoutMs: 3_000 } };

  /** The names of the databases of `server` ('default': the harness's) among `names`. */
  async function databasesOn(server: 'default' | 'second', names: string[]): Promise<string[]> {
    const sql = 'SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname';
    if (server === 'default') return (await adminQuery<{ datname: string }>(sql, [names])).rows.map((r) => r.datname);
    const client = new pg.Client({ connectionString: `${secondUrl()}/postgres` });
    await client.connect();
    try {
      return (await client.query<{ datname: string }>(sql, [names])).rows.map((r) => r.datname);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    // The server's user must reach the data folder (mkdtemp makes it private).
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-second-pg-'));
    await chmod(dataDir, 0o755);
    port = await freePort();
    await startSecond();
    options.tenantServers.second = secondUrl();
    platform = await env.initPlatform(options);
    userId = (await createTestUser(platform, 'Twoservers')).id;
  }, 120_000);

  afterAll(async () => {
    await platform?.close();
    await second?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('places tenants on both servers, each database on its own server only, and documents round-trip on each', async () => {
    tenants.push(...(await Promise.all(Array.from({ length: 6 }, (_, i) => platform.tenants.create({ name: `two ${i}`, createdBy: userId })))));
    const on = (server: string): Tenant[] => tenants.filter((t) => t.server === server);
    expect(on('default').length).toBeGreaterThanOrEqual(2);
    expect(on('second').length).toBeGreaterThanOrEqual(2);
    expect(on('default').length + on('second').length).toBe(6);
    const names = tenants.map((t) => t.databaseName);
    expect(await databasesOn('default', names)).toEqual(on('default').map((t) => t.databaseName).sort());
    expect(await databasesOn('second', names)).toEqual(on('second').map((t) => t.databaseName).sort());
    for (const t of tenants) {
      const bytes = Buffer.from(`the bytes of ${t.name} on ${t.server}`);
      const doc = await platform.withTenant(t, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: bytes }), { userId });
      contents.set(t.id, { documentId: doc.id, bytes });
      const { body } = await platform.withTenant(t, (ctx) => ctx.documents.download(doc.id), { userId });
      expect(await readAll(body)).toEqual(bytes);
    }
    const stats = platform.stats();
    expect(stats.connections.servers.default).toBeGreaterThan(0);
    expect(stats.connections.servers.second).toBeGreaterThan(0);
  });

  it('migrates the fleet on both servers and reports the status of each tenant', async () => {
    const result = await platform.migrations.tenants.up();
    expect(result.failed).toEqual([]);
    expect(result.succeeded.sort()).toEqual(tenants.map((t) => t.id).sort());
    const status = await platform.migrations.tenants.status();
    expect(status.map((s) => [s.tenantId, s.server, s.reachable, s.pending])).toEqual(
      expect.arrayContaining(tenants.map((t) => [t.id, t.server, true, []])),
    );
  });

  it('with the second server stopped, only its tenants fail; everything else goes on', async () => {
    await second!.stop();
    second = undefined;
    const onDefault = tenants.filter((t) => t.server === 'default');
    const onSecond = tenants.filter((t) => t.server === 'second');
    for (const t of onDefault) {
      const { rows } = await platform.withTenant(t, (ctx) => ctx.query<{ n: number }>('SELECT count(*)::int AS n FROM documents'));
      expect(rows[0]!.n).toBe(1);
    }
    for (const t of onSecond) {
      const err = await platform.withTenant(t, (ctx) => ctx.query('SELECT 1')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    }
    const fleet = await platform.migrations.tenants.up();
    expect(fleet.succeeded.sort()).toEqual(onDefault.map((t) => t.id).sort());
    expect(fleet.failed.map((f) => [f.tenantId, (f.error as { code?: string }).code]).sort()).toEqual(
      onSecond.map((t) => [t.id, 'UNAVAILABLE']).sort(),
    );
    const status = await platform.migrations.tenants.status();
    for (const t of onSecond) expect(status.find((s) => s.tenantId === t.id)).toMatchObject({ reachable: false });
    for (const t of onDefault) expect(status.find((s) => s.tenantId === t.id)).toMatchObject({ reachable: true, pending: [] });
    // Another process starting now: init() succeeds, and its new tenants go to the server that answers.
    const other = await env.initPlatform(options);
    const placed = await Promise.all([1, 2, 3].map((i) => other.tenants.create({ name: `while down ${i}` })));
    expect(placed.map((t) => t.server)).toEqual(['default', 'default', 'default']);
    const named = await other.tenants.create({ name: 'on the stopped one', server: 'second' }).catch((e: unknown) => e);
    expect(named).toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('restarted, the second server serves its tenants again, and drops work on both servers', async () => {
    await startSecond();
    for (const t of tenants.filter((x) => x.server === 'second')) {
      const { documentId, bytes } = contents.get(t.id)!;
      const { body } = await platform.withTenant(t, (ctx) => ctx.documents.download(documentId), { userId });
      expect(await readAll(body)).toEqual(bytes);
    }
    const [a, b] = [tenants.find((t) => t.server === 'default')!, tenants.find((t) => t.server === 'second')!];
    await platform.tenants.drop(a.id);
    await platform.tenants.drop(b.id);
    expect(await databasesOn('default', [a.databaseName])).toEqual([]);
    expect(await databasesOn('second', [b.databaseName])).toEqual([]);
  });
});
