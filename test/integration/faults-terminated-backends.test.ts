import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TenantDbError, type Platform, type Tenant } from '../../src/index.js';
import { adminQuery, dbUrl, useTestPlatform } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

/**
 * Backends killed with pg_terminate_backend under the platform's pools: idle ones (the next call must not
 * be the one that finds out), and mid-query ones (that call fails, the next works, and its connection's
 * place in the pool is free again). Only this file's databases are touched on the shared server.
 */
describe('faults: backends terminated', () => {
  const env = useTestPlatform();
  let setup: Platform;
  let tenant: Tenant;
  let userId: string;
  let documentId: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  const backends = async (database: string): Promise<number[]> =>
    (
      await adminQuery<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        [database],
      )
    ).rows.map((r) => r.pid);

  /** An admin session of the test's own, kept open: the call after a kill goes out before any socket is read. */
  let admin: pg.Client;

  /**
   * Terminates every backend of `database` (but the admin's), without waiting for them to exit: the pool's
   * connections are then dead while the pool has not heard of it yet.
   */
  const terminateAll = async (database: string): Promise<number> =>
    (await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]))
      .rowCount ?? 0;

  /** Runs `sql` (which takes locks) in a transaction on `database` and keeps it open until `release()`. */
  async function holdLocks(database: string, sql: string, params: unknown[]): Promise<{ release(): Promise<void> }> {
    const client = new pg.Client({ connectionString: dbUrl(database) });
    await client.connect();
    await client.query('BEGIN');
    await client.query(sql, params);
    return {
      async release() {
        await client.query('ROLLBACK').catch(() => {});
        await client.end();
      },
    };
  }

  /** The pid of the one backend of `database` waiting for a lock, once there is one. */
  async function waitingBackend(database: string): Promise<number> {
    let pid: number | undefined;
    await vi.waitFor(
      async () => {
        const { rows } = await adminQuery<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
          [database],
        );
        expect(rows).toHaveLength(1);
        pid = rows[0]!.pid;
      },
      { timeout: 20_000, interval: 20 },
    );
    return pid!;
  }

  /** What the budget counts agrees with the server, within the budget. */
  async function budgetAgreesWithServer(platform: Platform): Promise<void> {
    await vi.waitFor(
      async () => {
        const open = platform.stats().connections.open;
        expect(open).toBe((await backends(tenant.databaseName)).length);
        expect(open).toBeLessThanOrEqual(platform.stats().connections.max);
      },
      { timeout: 20_000, interval: 50 },
    );
  }

  /** What `promise` rejects with (undefined if it resolves), handled at once: it fails while the test waits elsewhere. */
  const settled = (promise: Promise<unknown>): Promise<unknown> => promise.then(
    () => undefined,
    (err: unknown) => err,
  );

  const listDocuments = (platform: Platform): Promise<unknown> => platform.withTenant(tenant, (ctx) => ctx.documents.list({}));

  /** A platform of this test, closed after it, so that the server's count of connections is its own. */
  const platforms: Platform[] = [];
  function testPlatform(extra: Parameters<typeof env.platform>[0]): Platform {
    const p = env.platform(extra);
    platforms.push(p);
    return p;
  }

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    admin = new pg.Client({ connectionString: dbUrl('postgres') });
    await admin.connect();
    setup = await env.initPlatform({ tenantSpares: 0 });
    userId = (await createTestUser(setup, 'Terminated')).id;
    tenant = await setup.tenants.create({ name: 'Terminated', createdBy: userId });
    documentId = (await setup.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: 'a', userId }))).id;
  });
  afterEach(async () => {
    await Promise.all(platforms.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await admin.end();
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  describe('a tenant pool', () => {
    it('idle backends terminated: the very next call succeeds, every round', async () => {
      const platform = testPlatform({ pool: { maxConnectionsPerTenant: 3 } });
      for (let round = 0; round < 5; round++) {
        // Three idle connections in the pool, then all killed at once; the calls after may find them
        // before their FATAL has come.
        await Promise.all([0, 1, 2].map(() => platform.withTenant(tenant, (ctx) => ctx.query('SELECT pg_sleep(0.05)'))));
        expect(await terminateAll(tenant.databaseName)).toBeGreaterThanOrEqual(3);
        expect(await listDocuments(platform)).toMatchObject({ items: [{ id: documentId }] });
        await platform.withTenant(tenant, (ctx) => ctx.query('SELECT $1::int AS one', [1]));
        await platform.withTenant(tenant, (ctx) => ctx.transaction((tx) => tx.query('SELECT 1')));
      }
      await budgetAgreesWithServer(platform);
    });

    it('a backend terminated mid-query: that call fails with a retryable DATABASE (57P01 as cause), the next succeeds, the slot is free', async () => {
      // One connection in the whole budget: a slot not given back would leave the next call waiting, then UNAVAILABLE.
      const platform = testPlatform({ pool: { maxConnections: 1, maxConnectionsPerTenant: 1, acquireTimeoutMs: 5_000 } });
      await listDocuments(platform);
      // The rename's UPDATE waits for the row lock: the server has parsed it and is running it.
      const lock = await holdLocks(tenant.databaseName, 'SELECT 1 FROM documents WHERE id = $1 FOR UPDATE', [documentId]);
      try {
        const inFlight = settled(platform.withTenant(tenant, (ctx) => ctx.documents.rename(documentId, 'b.txt')));
        await adminQuery('SELECT pg_terminate_backend($1)', [await waitingBackend(tenant.databaseName)]);
        const err = await rejectionOf(inFlight.then((e) => Promise.reject(e)));
        expect(err.code).toBe('DATABASE');
        expect(err.retryable).toBe(true);
        expect(err.cause).toMatchObject({ code: '57P01' });
        expect(err.cause).not.toBeInstanceOf(TenantDbError);
      } finally {
        await lock.release();
      }
      // Not renamed: the terminated statement did not run again behind the caller's back.
      expect(await platform.withTenant(tenant, (ctx) => ctx.documents.get(documentId))).toMatchObject({ filename: 'a.txt' });
      await budgetAgreesWithServer(platform);
      expect(platform.stats().connections.open).toBe(1);
    });

    it("ctx.query terminated mid-query: the driver's 57P01 reaches the caller untouched (as errors of its own SQL do), the next works", async () => {
      const platform = testPlatform({ pool: { maxConnections: 1, maxConnectionsPerTenant: 1, acquireTimeoutMs: 5_000 } });
      const lock = await holdLocks(tenant.databaseName, 'SELECT 1 FROM documents WHERE id = $1 FOR UPDATE', [documentId]);
      let err: unknown;
      try {
        const inFlight = platform
          .withTenant(tenant, (ctx) => ctx.query('UPDATE documents SET updated_at = now() WHERE id = $1', [documentId]))
          .catch((e: unknown) => e);
        await adminQuery('SELECT pg_terminate_backend($1)', [await waitingBackend(tenant.databaseName)]);
        err = await inFlight;
      } finally {
        await lock.release();
      }
      expect(err).not.toBeInstanceOf(TenantDbError);
      expect(err).toMatchObject({ code: '57P01' });
      await platform.withTenant(tenant, (ctx) => ctx.query('SELECT 1'));
      await budgetAgreesWithServer(platform);
    });
  });

  describe('the main database pool', () => {
    it('idle backends terminated: the very next call succeeds, every round', async () => {
      const platform = testPlatform({ pool: { maxMainConnections: 3 }, tenantCacheMs: 0 });
      for (let round = 0; round < 5; round++) {
        await Promise.all([0, 1, 2].map(() => platform.users.get(userId)));
        expect(await terminateAll(env.mainDb)).toBeGreaterThanOrEqual(3);
        expect((await platform.users.get(userId)).id).toBe(userId);
        expect((await platform.tenants.get(tenant.id)).id).toBe(tenant.id);
        // The membership is read from the main database on every scope with a user.
        expect(await platform.withTenant(tenant, (ctx) => ctx.role, { userId })).toBe('admin');
      }
      // A transaction on the main database first after the kill (setRole): its BEGIN goes on another connection.
      for (let round = 0; round < 3; round++) {
        await Promise.all([0, 1, 2].map(() => platform.users.get(userId)));
        expect(await terminateAll(env.mainDb)).toBeGreaterThanOrEqual(3);
        await platform.memberships.setRole(tenant.id, userId, 'admin');
      }
    });

    it('a backend terminated mid-query: that call fails with a retryable DATABASE (57P01 as cause), the next succeeds, the slot is free', async () => {
      // One main connection: a leaked one would leave the next call waiting, then UNAVAILABLE.
      const platform = testPlatform({ pool: { maxMainConnections: 1, acquireTimeoutMs: 5_000 } });
      await platform.users.get(userId);
      const lock = await holdLocks(env.mainDb, 'SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [userId]);
      try {
        const inFlight = settled(platform.users.update(userId, { firstName: 'Renamed' }));
        await adminQuery('SELECT pg_terminate_backend($1)', [await waitingBackend(env.mainDb)]);
        const err = await rejectionOf(inFlight.then((e) => Promise.reject(e)));
        expect(err.code).toBe('DATABASE');
        expect(err.retryable).toBe(true);
        expect(err.cause).toMatchObject({ code: '57P01' });
      } finally {
        await lock.release();
      }
      expect(await platform.users.get(userId)).toMatchObject({ id: userId, firstName: 'Terminated' });
      expect((await platform.tenants.get(tenant.id)).id).toBe(tenant.id);
    });
  });
});
