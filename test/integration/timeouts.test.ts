import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TenantDbError, type Platform, type Tenant } from '../../src/index.js';
import { startPgBouncer, type RunningServer } from '../../scripts/dev-servers.js';
import { serverUrl, useTestPlatform } from '../support/env.js';
import { describeWithPgBouncer } from '../support/pgbouncer.js';
import { useTempFolders } from '../support/temp-folders.js';
import { silentServer as silentServerOnPort } from '../support/silent-server.js';

const CONNECT_TIMEOUT_MS = 1_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A silent server, with a URL that points at it. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = await silentServerOnPort();
  return { url: `postgres://postgres:secret-pass@127.0.0.1:${server.port}`, close: server.close };
}

/** The server of the test PostgreSQL, as `tenantServers` takes it. */
function realServer(): string {
  const u = new URL(serverUrl());
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}

/** Rejects with UNAVAILABLE (retryable, no password in the message) within the connect timeout plus one second. */
async function expectUnavailableInTime(call: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsed = performance.now() - started;
  expect(err).toBeInstanceOf(TenantDbError);
  expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
  expect((err as Error).message).not.toContain('secret-pass');
  expect(elapsed).toBeLessThan(CONNECT_TIMEOUT_MS + 1_000);
}

describe('pool.connectTimeoutMs: a server that accepts and never answers', () => {
  const env = useTestPlatform({ pool: { connectTimeoutMs: CONNECT_TIMEOUT_MS }, tenantSpares: 0 });
  let silent: Awaited<ReturnType<typeof silentServer>>;
  let tenant: Tenant;

  beforeAll(async () => {
    silent = await silentServer();
    const platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'timeouts' });
  });

  afterAll(async () => {
    await silent.close();
  });

  it('fails a call on the main database (main pool) and init() with UNAVAILABLE in time', async () => {
    const platform = env.platform({ mainUrl: `${silent.url}/saas` });
    await expectUnavailableInTime(() => platform.users.get(randomUUID()));
    await expectUnavailableInTime(() => platform.init());
  });

  it('fails the main migrations (a migration connection over mainAdminUrl) in time', async () => {
    const platform = env.platform({ mainAdminUrl: `${silent.url}/saas` });
    await expectUnavailableInTime(() => platform.migrations.main.pending());
  });

  it('fails tenants.create when the lock session (mainAdminUrl) hangs, and leaves no row', async () => {
    const platform = env.platform({ mainAdminUrl: `${silent.url}/saas` });
    await expectUnavailableInTime(() => platform.tenants.create({ name: 'locked out' }));
    expect((await platform.tenants.list()).map((t) => t.name)).toEqual(['timeouts']);
  });

  it("fails tenants.create on a server whose admin connections hang", async () => {
    const platform = env.platform({ tenantServers: { hung: silent.url } });
    await expectUnavailableInTime(() => platform.tenants.create({ name: 'nowhere', server: 'hung' }));
  });

  it('fails a scope whose tenant connections hang, and frees the budget slot', async () => {
    const platform = env.platform({ tenantServers: { default: { url: silent.url, adminUrl: realServer() } } });
    await expectUnavailableInTime(() => platform.withTenant(tenant, (ctx) => ctx.query('SELECT 1')));
    // The slot goes back once the timed-out socket has closed (a tick later).
    await vi.waitFor(() => expect(platform.stats().connections.open).toBe(0), { timeout: 1_000, interval: 10 });
  });
});

describeWithPgBouncer('pool.connectTimeoutMs through PgBouncer in front of a server that never answers', () => {
  const env = useTestPlatform({ pool: { connectTimeoutMs: CONNECT_TIMEOUT_MS }, tenantSpares: 0 });
  let silent: Awaited<ReturnType<typeof silentServer>>;
  let bouncer: RunningServer;
  let tenant: Tenant;

  beforeAll(async () => {
    silent = await silentServer();
    bouncer = (await startPgBouncer({ serverUrl: silent.url, mode: 'transaction' }))!;
    const platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'behind a hung pooler' });
  });

  afterAll(async () => {
    await bouncer?.stop();
    await silent?.close();
  });

  it('fails the main pool and a scope with UNAVAILABLE in time, though PgBouncer itself answers', async () => {
    const pooled = new URL(bouncer.url);
    pooled.pathname = '/saas';
    await expectUnavailableInTime(() => env.platform({ mainUrl: pooled.toString() }).users.get(randomUUID()));
    pooled.pathname = '';
    const scoped = env.platform({ tenantServers: { default: { url: pooled.toString().replace(/\/$/, ''), adminUrl: realServer() } } });
    await expectUnavailableInTime(() => scoped.withTenant(tenant, (ctx) => ctx.query('SELECT 1')));
  });
});

describe('pool.statementTimeoutMs', () => {
  const folderWith = useTempFolders('tenantdb-timeouts');
  const env = useTestPlatform({ pool: { statementTimeoutMs: 300 }, tenantSpares: 0 });
  let platform: Platform;
  let tenant: Tenant;

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'slow' });
  });

  it("cancels the caller's slow query with the driver's error (57014) untouched, and the next query works", async () => {
    for (const run of [
      (sql: string) => platform.withTenant(tenant, (ctx) => ctx.query(sql)),
      (sql: string) => platform.withTenant(tenant, (ctx) => ctx.transaction((tx) => tx.query(sql))),
    ]) {
      const err = await run('SELECT pg_sleep(5)').catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(TenantDbError);
      expect(err).toMatchObject({ code: '57014' });
      expect((await run('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    }
  });

  it('does not bound migrations', async () => {
    const folder = await folderWith({ '0100_slow.sql': 'SELECT pg_sleep(0.6);\nCREATE TABLE slow (id int);\n' });
    const migrating = env.platform({ tenantMigrations: [folder] });
    const result = await migrating.migrations.tenants.up();
    expect(result.failed).toEqual([]);
    expect(result.succeeded).toEqual([tenant.id]);
  });
});

describe('pool.idleInTransactionTimeoutMs', () => {
  const env = useTestPlatform({ pool: { idleInTransactionTimeoutMs: 500 }, tenantSpares: 0 });

  it('ends a transaction left idle: its connection and its locks are freed for others', async () => {
    const platform = await env.initPlatform();
    const tenant = await platform.tenants.create({ name: 'forgetful' });
    // Takes a lock, then forgets to finish for longer than the timeout.
    const forgotten = platform
      .withTenant(tenant, (ctx) =>
        ctx.transaction(async (tx) => {
          await tx.query('SELECT pg_advisory_xact_lock(42)');
          await sleep(2_500);
          await tx.query('SELECT 1');
        }),
      )
      .then(
        () => 'finished',
        (e: unknown) => e,
      );
    await sleep(100);
    const started = performance.now();
    await platform.withTenant(tenant, (ctx) => ctx.transaction((tx) => tx.query('SELECT pg_advisory_xact_lock(42)')));
    const waited = performance.now() - started;
    // The server ended the idle transaction after 500 ms: the lock was free long before the 2.5 s sleep ended.
    expect(waited).toBeLessThan(2_000);
    const outcome = await forgotten;
    expect(outcome).toBeInstanceOf(Error);
    expect(outcome).not.toBeInstanceOf(TenantDbError);
    expect((await platform.withTenant(tenant, (ctx) => ctx.query('SELECT 1 AS n'))).rows).toEqual([{ n: 1 }]);
  });
});

describe('pool.acquireTimeoutMs on the main pool', () => {
  const env = useTestPlatform({ pool: { maxMainConnections: 1, acquireTimeoutMs: 300 }, tenantSpares: 0 });

  it('a caller that finds every main connection busy for longer gets UNAVAILABLE, and the pool works after', async () => {
    const platform = await env.initPlatform();
    const id = randomUUID();
    // Another session locks the users table, so the platform's one main connection waits inside a query.
    const blocker = new pg.Client({ connectionString: env.mainUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const busy = platform.users.get(id).catch((e: unknown) => e);
      await sleep(50);
      const err = await platform.users.get(id).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      await blocker.query('ROLLBACK');
      expect(await busy).toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await blocker.end();
    }
    await expect(platform.users.get(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
