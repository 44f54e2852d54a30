import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant, TenantContext, User } from '../../src/index.js';
import { errorHandler, tenancy } from '../../src/integrations/express.js';
import { tenancyPlugin } from '../../src/integrations/fastify.js';
import { countingS3Client } from '../support/counting-s3.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { eventually, pushBody } from '../support/hostile-http.js';
import { createTestUser } from '../support/users.js';

const MIB = 1024 * 1024;
// Below the 8 MiB part size: a refused upload must not have sent a single byte to S3.
const MAX_BYTES = MIB;
const BODY_SIZE = 64 * MIB;

const env = useTestPlatform();
const s3 = useTestS3Client();
const counting = countingS3Client();
const bucket = inject('s3Bucket');
let platform: Platform;
let ada: User;
let mine: Tenant;
let theirs: Tenant;

beforeAll(async () => {
  platform = await env.initPlatform({ documents: { maxBytes: MAX_BYTES }, s3: { ...env.options().s3, client: counting.client } });
  ada = await createTestUser(platform, 'Ada');
  const bob = await createTestUser(platform, 'Bob');
  // Ada is a member (admin) of her tenant only, Bob of his.
  mine = await platform.tenants.create({ name: 'Mine', createdBy: ada.id });
  theirs = await platform.tenants.create({ name: 'Theirs', createdBy: bob.id });
});
afterAll(async () => {
  await platform.close();
  counting.client.destroy();
});

/** What the server side saw: the tenants whose handlers ran (a refused request reaches none), and each request's socket. */
interface Probe {
  handled: string[];
  sockets: Socket[];
}

function seen(probe: Probe, req: IncomingMessage): void {
  probe.sockets.push(req.socket);
}

function upload(probe: Probe, ctx: TenantContext, filename: string, body: Readable): Promise<unknown> {
  probe.handled.push(ctx.tenant.id);
  return ctx.documents.upload({ filename, body });
}

interface TestServer {
  port: number;
  probe: Probe;
  close(): Promise<void>;
}

// Mounted as in examples/: the tenant from X-Tenant-Id, the acting user from the request (here a header
// standing in for the app's session), uploads streaming the request itself.
async function expressServer(): Promise<TestServer> {
  const probe: Probe = { handled: [], sockets: [] };
  const app = express();
  app.use((req, _res, next) => {
    seen(probe, req);
    next();
  });
  app.use(tenancy(platform, { tenant: (req) => req.header('x-tenant-id'), user: (req) => req.header('x-user-id') }));
  app.get('/documents', async (req, res) => {
    probe.handled.push(req.tenant.tenant.id);
    res.json(await req.tenant.documents.list({}));
  });
  app.put('/documents/:name', async (req, res) => {
    res.status(201).json(await upload(probe, req.tenant, req.params.name, req));
  });
  app.use(errorHandler());
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    probe,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function fastifyServer(): Promise<TestServer> {
  const probe: Probe = { handled: [], sockets: [] };
  const app = Fastify();
  app.addHook('onRequest', (req, _reply, done) => {
    seen(probe, req.raw);
    done();
  });
  await app.register(async (scope) => {
    await scope.register(tenancyPlugin, {
      platform,
      tenant: (req) => req.headers['x-tenant-id'] as string | undefined,
      user: (req) => req.headers['x-user-id'] as string | undefined,
    });
    scope.get('/documents', async (req) => {
      probe.handled.push(req.tenant.tenant.id);
      return req.tenant.documents.list({});
    });
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.put('/documents/:name', async (req, reply) =>
      reply.status(201).send(await upload(probe, req.tenant, (req.params as { name: string }).name, req.raw)),
    );
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, probe, close: () => app.close() };
}

async function storedNothing(tenant: Tenant): Promise<void> {
  expect(await listKeys(s3, bucket, `${env.prefix}tenants/${tenant.id}/`)).toEqual([]);
  const { rows } = await platform.withTenant(tenant, (ctx) =>
    ctx.query<{ n: string }>('SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM files) AS n'),
  );
  expect(Number(rows[0]!.n)).toBe(0);
}

describe.each([
  ['Express', expressServer],
  ['Fastify', fastifyServer],
])('%s', (_name, start) => {
  let server: TestServer;
  let base: string;
  beforeAll(async () => {
    server = await start();
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());

  it("answers 403 to a member of one tenant who sends another tenant's X-Tenant-Id (id, upper-cased id or database name), before any handler runs", async () => {
    const as = (tenant: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${base}/documents${init.method === 'PUT' ? '/spoof.txt' : ''}`, {
        ...init,
        headers: { 'x-tenant-id': tenant, 'x-user-id': ada.id, 'content-type': 'text/plain' },
      });
    const own = await as(mine.id);
    expect(own.status).toBe(200);
    expect(await own.json()).toEqual({ items: [], nextCursor: null });
    const handledBefore = server.probe.handled.length;

    for (const spoofed of [theirs.id, theirs.id.toUpperCase(), theirs.databaseName]) {
      for (const init of [{}, { method: 'PUT', body: 'written into the wrong tenant' }]) {
        const res = await as(spoofed, init);
        expect(res.status).toBe(403);
        expect(await res.json()).toEqual({ error: { code: 'FORBIDDEN', message: expect.any(String), retryable: false } });
      }
    }
    expect(server.probe.handled.slice(handledBefore)).toEqual([]);
    await storedNothing(theirs);
  });

  it('refuses an oversized body while it streams: 400 VALIDATION before the client sent it all, the server read little of it, nothing stored', async () => {
    const mark = counting.traffic.commands.length;
    const sockets = server.probe.sockets.length;
    const pushed = await pushBody(
      server.port,
      { path: '/documents/huge.bin', headers: { 'x-tenant-id': mine.id, 'x-user-id': ada.id, 'content-type': 'application/octet-stream' } },
      BODY_SIZE,
    );
    // 400 per the error table (VALIDATION), not a connection reset; the connection is not kept for another request.
    expect(pushed.error).toBeUndefined();
    expect(pushed.response?.status).toBe(400);
    expect(pushed.response?.headers.connection).toBe('close');
    expect(JSON.parse(pushed.response!.body)).toEqual({
      error: { code: 'VALIDATION', message: expect.stringContaining('maxBytes'), retryable: false },
    });
    // The client was told while most of its body was still unsent (what it wrote sits in socket buffers)...
    expect(pushed.written).toBeLessThan(BODY_SIZE / 4);
    // ...and the server read not much more than the limit before it stopped, over the whole connection.
    const socket = server.probe.sockets[sockets]!;
    await eventually('the server closed the connection', () => socket.destroyed);
    expect(socket.bytesRead).toBeLessThan(4 * MAX_BYTES);
    expect(counting.writesSince(mark)).toEqual([]);
    await storedNothing(mine);
  });
});
