import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, TenantDbError, type Platform, type Tenant } from '../../src/index.js';
import { errorHandler, tenancy } from '../../src/integrations/express.js';
import { tenancyPlugin } from '../../src/integrations/fastify.js';
import { useTestPlatform } from '../support/env.js';

const env = useTestPlatform();
let platform: Platform;
let tenants: Tenant[];

beforeAll(async () => {
  platform = await env.initPlatform();
  tenants = [await platform.tenants.create({ name: 'North' }), await platform.tenants.create({ name: 'South' })];
  await platform.tenants.deactivate((await platform.tenants.create({ name: 'Gone' })).id);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What each handler reports: the tenant of req.tenant and of currentTenant() after a random delay. */
async function probe(tenantOfReq: Tenant): Promise<{ req: string; current: string | undefined; same: boolean; db: string }> {
  await sleep(Math.random() * 20);
  const current = currentTenant();
  const { rows } = await current!.query<{ db: string }>('SELECT current_database() AS db');
  await sleep(Math.random() * 10);
  return { req: tenantOfReq.id, current: currentTenant()?.tenant.id, same: currentTenant() !== undefined, db: rows[0]!.db };
}

async function interleave(base: string): Promise<void> {
  const requests = Array.from({ length: 60 }, (_, i) => tenants[i % 2]!);
  const answers = await Promise.all(
    requests.map(async (t) => {
      const res = await fetch(`${base}/probe`, { headers: { 'x-tenant-id': t.id } });
      expect(res.status).toBe(200);
      return { sent: t, got: (await res.json()) as Awaited<ReturnType<typeof probe>> };
    }),
  );
  for (const { sent, got } of answers) {
    expect(got.req).toBe(sent.id);
    expect(got.current).toBe(sent.id);
    expect(got.db).toBe(sent.databaseName);
  }
}

async function errorsMapped(base: string): Promise<void> {
  const none = await fetch(`${base}/probe`);
  expect(none.status).toBe(400);
  expect(await none.json()).toEqual({ error: { code: 'VALIDATION', message: expect.any(String), retryable: false } });
  expect(none.headers.get('retry-after')).toBeNull();
  const unknown = await fetch(`${base}/probe`, { headers: { 'x-tenant-id': 'tenant_nope_00000000' } });
  expect(unknown.status).toBe(404);
  const inactive = await fetch(`${base}/probe`, { headers: { 'x-tenant-id': (await platform.tenants.list({ includeInactive: true })).find((t) => !t.isActive)!.id } });
  expect(inactive.status).toBe(423);
  expect(((await inactive.json()) as { error: { code: string } }).error.code).toBe('TENANT_INACTIVE');
  const thrown = await fetch(`${base}/conflict`, { headers: { 'x-tenant-id': tenants[0]!.id } });
  expect(thrown.status).toBe(409);
  // Retry later: 503 with Retry-After, and `retryable` in the body.
  const unavailable = await fetch(`${base}/unavailable`, { headers: { 'x-tenant-id': tenants[0]!.id } });
  expect(unavailable.status).toBe(503);
  expect(unavailable.headers.get('retry-after')).toBe('1');
  expect(await unavailable.json()).toEqual({ error: { code: 'UNAVAILABLE', message: 'try later', retryable: true } });
  // Other errors pass on untouched to the framework's own handling.
  const plain = await fetch(`${base}/boom`, { headers: { 'x-tenant-id': tenants[0]!.id } });
  expect(plain.status).toBe(500);
  expect(JSON.stringify(await plain.text())).not.toContain('CONFLICT');
}

describe('Express integration', () => {
  let server: ReturnType<express.Express['listen']>;
  let base: string;
  beforeAll(async () => {
    const app = express();
    app.use(tenancy(platform, { tenant: (req) => req.header('x-tenant-id') }));
    app.get('/probe', async (req, res) => res.json(await probe(req.tenant.tenant)));
    app.get('/conflict', () => {
      throw new TenantDbError('CONFLICT', 'taken');
    });
    app.get('/unavailable', () => {
      throw new TenantDbError('UNAVAILABLE', 'try later');
    });
    app.get('/boom', () => {
      throw new Error('plain');
    });
    app.use(errorHandler());
    app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).send('plain'));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('never lets a request see another request\'s tenant (60 interleaved, random delays)', () => interleave(base));
  it('maps TenantDbError codes to HTTP statuses and passes other errors on', () => errorsMapped(base));
  it('leaves no scope behind: outside a request there is none', () => expect(currentTenant()).toBeUndefined());
});

describe('Fastify integration', () => {
  const app = Fastify();
  let base: string;
  beforeAll(async () => {
    await app.register(tenancyPlugin, { platform, tenant: (req) => req.headers['x-tenant-id'] as string | undefined });
    app.get('/probe', (req) => probe(req.tenant.tenant));
    app.get('/conflict', async () => {
      throw new TenantDbError('CONFLICT', 'taken');
    });
    app.get('/unavailable', async () => {
      throw new TenantDbError('UNAVAILABLE', 'try later');
    });
    app.get('/boom', async () => {
      throw new Error('plain');
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  it('never lets a request see another request\'s tenant (60 interleaved, random delays)', () => interleave(base));
  it('maps TenantDbError codes to HTTP statuses and passes other errors on', () => errorsMapped(base));
});

describe('options', () => {
  it('rejects a missing tenant function at once (VALIDATION)', () => {
    expect(() => tenancy(platform, {} as never)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
  it('requires an acting user when user() is given: none → 403', async () => {
    const app = express();
    app.use(tenancy(platform, { tenant: () => tenants[0]!.id, user: () => undefined }));
    app.get('/', (_req, res) => void res.send('no'));
    app.use(errorHandler());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await new Promise<void>((r) => server.close(() => r()));
    expect(res.status).toBe(403);
  });
});
