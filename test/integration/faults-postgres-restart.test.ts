import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TenantDbError, type Platform, type Tenant } from '../../src/index.js';
import { freePort, startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { useTestPlatform } from '../support/env.js';
import { createTestUser } from '../support/users.js';

// The harness' server is shared with the other test files: this one restarts a server of its own.
const skipReason = process.env.TENANTDB_TEST_PG_URL
  ? 'TENANTDB_TEST_PG_URL is set: no PostgreSQL of the test\'s own to restart'
  : '';
if (skipReason) console.log(`faults-postgres-restart skipped: ${skipReason}`);

const CALLERS = 16;

/** One call of the load: when it started and ended (see `epoch`), and how it went. */
interface Call {
  caller: number;
  started: number;
  ended: number;
  error?: unknown;
}

describe.skipIf(Boolean(skipReason))('faults: PostgreSQL restarted under load', () => {
  const env = useTestPlatform();
  let dataDir: string;
  let port: number;
  let server: RunningServer | undefined;
  let platform: Platform;
  const tenants: Tenant[] = [];
  const documents: string[] = [];
  let userId: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  const urlOf = (database: string): string => `postgres://postgres:postgres@127.0.0.1:${port}/${database}`;
  const start = async (): Promise<void> => {
    server = await startPostgres({ dataDir, port }, false);
  };

  async function ownQuery<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: urlOf('postgres') });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** Client backends on the server, but the one asking, by database. */
  async function backendsByDatabase(): Promise<Map<string, number>> {
    const rows = await ownQuery<{ datname: string; n: number }>(
      "SELECT datname, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY datname",
    );
    return new Map(rows.map((r) => [r.datname, r.n]));
  }

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    // The server's user must reach the data folder (mkdtemp makes it private).
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-faults-pg-'));
    await chmod(dataDir, 0o755);
    port = await freePort();
    await start();
    expect(server!.kind).toBe('embedded');
    platform = env.platform({
      mainUrl: urlOf(env.mainDb),
      tenantSpares: 0,
      pool: { maxConnections: 12, maxConnectionsPerTenant: 4, maxMainConnections: 6, connectTimeoutMs: 5_000, acquireTimeoutMs: 10_000 },
    });
    await platform.init();
    userId = (await createTestUser(platform, 'Restart')).id;
    for (const name of ['Restart A', 'Restart B', 'Restart C']) {
      const tenant = await platform.tenants.create({ name, createdBy: userId });
      tenants.push(tenant);
      const doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: name, userId }));
      documents.push(doc.id);
    }
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await platform?.close();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('no crash, calls while it is down fail with TenantDbErrors caused by the driver, all works again after, nothing leaked', async () => {
    // A mix: tenant scopes over three tenants (their databases), with and without a user (the main
    // database), and main-database calls.
    const op = (caller: number): Promise<unknown> => {
      const t = caller % tenants.length;
      switch (caller % 4) {
        case 0:
          return platform.withTenant(tenants[t]!, (ctx) => ctx.documents.list({}));
        case 1:
          return platform.withTenant(tenants[t]!, (ctx) => ctx.documents.get(documents[t]!), { userId });
        case 2:
          return platform.users.get(userId);
        default:
          return platform.tenants.get(tenants[t]!.id);
      }
    };
    // 0: up; 1: stopped; 2: being started; 3: started again.
    let epoch = 0;
    let running = true;
    const calls: Call[] = [];
    const callers = Array.from({ length: CALLERS }, async (_, caller) => {
      while (running) {
        const call: Call = { caller, started: epoch, ended: -1 };
        try {
          await op(caller);
        } catch (err) {
          call.error = err;
        }
        call.ended = epoch;
        calls.push(call);
        // Pacing only (a refused connect fails at once): no ordering depends on it.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    const everyCaller = (match: (c: Call) => boolean): void => {
      const seen = new Set(calls.filter(match).map((c) => c.caller));
      expect(seen.size).toBe(CALLERS);
    };
    try {
      await vi.waitFor(() => everyCaller((c) => c.error === undefined), { timeout: 60_000, interval: 20 });
      await server!.stop();
      epoch = 1;
      await vi.waitFor(() => everyCaller((c) => c.started === 1 && c.error !== undefined), { timeout: 60_000, interval: 20 });
      epoch = 2;
      await start();
      epoch = 3;
      await vi.waitFor(() => everyCaller((c) => c.started === 3 && c.error === undefined), { timeout: 60_000, interval: 20 });
    } finally {
      running = false;
      await Promise.all(callers);
    }

    // Every call made wholly while the server was down failed; every failure was a TenantDbError with
    // the driver's (or socket's) error as cause, and told the caller to retry.
    const whileDown = calls.filter((c) => c.started === 1 && c.ended === 1);
    expect(whileDown.length).toBeGreaterThanOrEqual(CALLERS);
    expect(whileDown.filter((c) => c.error === undefined)).toEqual([]);
    const failures = calls.filter((c) => c.error !== undefined).map((c) => c.error);
    for (const err of failures) {
      expect(err).toBeInstanceOf(TenantDbError);
      expect((err as TenantDbError).cause).toBeInstanceOf(Error);
      expect((err as TenantDbError).cause).not.toBeInstanceOf(TenantDbError);
      expect(['UNAVAILABLE', 'DATABASE']).toContain((err as TenantDbError).code);
      expect(err).toMatchObject({ retryable: true });
    }
    // The ones after the restart all worked.
    expect(calls.filter((c) => c.started === 3 && c.error !== undefined)).toEqual([]);
    expect(unhandled).toEqual([]);

    // Each kind of call works again, and so does a write.
    for (let caller = 0; caller < 4; caller++) await op(caller);
    await platform.withTenant(tenants[0]!, (ctx) => ctx.documents.upload({ filename: 'after.txt', body: 'after', userId }));

    // Quiet: what the platform counts is what the server has, within the budget.
    const tenantDatabases = new Set(tenants.map((t) => t.databaseName));
    await vi.waitFor(
      async () => {
        const byDb = await backendsByDatabase();
        const onTenants = [...byDb].filter(([db]) => tenantDatabases.has(db)).reduce((sum, [, n]) => sum + n, 0);
        const stats = platform.stats().connections;
        expect(stats.open).toBe(onTenants);
        expect(stats.servers.default).toBe(onTenants);
        expect(stats.open).toBeLessThanOrEqual(stats.max);
        // The main pool, and the lock session.
        expect(byDb.get(env.mainDb) ?? 0).toBeLessThanOrEqual(6 + 1);
      },
      { timeout: 30_000, interval: 100 },
    );

    await platform.close();
    await vi.waitFor(async () => expect([...(await backendsByDatabase())]).toEqual([]), { timeout: 30_000, interval: 100 });
  });
});
