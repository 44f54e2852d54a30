import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { TenantPoolManager, type PoolKey, type TenantPoolManagerOptions } from '../../src/pools/tenant-pool-manager.js';
import { adminQuery, dbUrl, serverUrl, uniqueName } from '../support/env.js';
import { connectionsTo as serverConnections, tenantServerUrl as server } from '../support/pool-databases.js';

// Plain databases stand in for tenant databases: the pool manager only needs somewhere to connect.
const DBS = Array.from({ length: 12 }, (_, i) => uniqueName(`tdbt_pool${i}`));
const [A, B, C, D] = DBS as [string, string, string, string];

const key = (database: string): PoolKey => ({ server: server(), database });

function options(overrides: Partial<TenantPoolManagerOptions> = {}): TenantPoolManagerOptions {
  return {
    maxTenantPools: 10,
    maxConnectionsPerTenant: 2,
    maxConnections: 10,
    idleMs: 30_000,
    acquireTimeoutMs: 30_000,
    ...overrides,
  };
}

const managers: TenantPoolManager[] = [];
function manager(overrides: Partial<TenantPoolManagerOptions> = {}, drainTimeoutMs?: number): TenantPoolManager {
  const m = new TenantPoolManager(options(overrides), undefined, drainTimeoutMs === undefined ? {} : { drainTimeoutMs });
  managers.push(m);
  return m;
}

beforeAll(async () => {
  for (const db of DBS) await adminQuery(`CREATE DATABASE "${db}"`);
  await adminQuery('CREATE TABLE t (v int)', [], A);
});

// Each test closes what it opened, so that one test's idle connections never show in the next one's counts.
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

afterAll(async () => {
  for (const db of DBS) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
});

describe('TenantPoolManager: the budget is the cache', () => {
  /** The backend pid that serves a query on `db` now. */
  const pidOf = async (pools: TenantPoolManager, db: string): Promise<number> =>
    (await pools.query<{ pid: number }>(key(db), 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

  it('keeps idle connections of as many tenants as the budget holds, without a pool count bound', async () => {
    const pools = manager({ maxTenantPools: undefined, maxConnectionsPerTenant: 1, maxConnections: 8 });
    for (const db of DBS.slice(0, 8)) await pools.query(key(db), 'SELECT 1');
    // Waited for: the backends of an earlier test's closed connections can still be listed for a moment (a
    // slow machine counted 9).
    await vi.waitFor(async () => expect(await serverConnections(DBS)).toBe(8), { timeout: 10_000, interval: 20 });
    expect(pools.stats().pools).toMatchObject({ open: 8, misses: 8, hits: 0, evictions: 0 });
    for (const db of DBS.slice(0, 8)) await pools.query(key(db), 'SELECT 1');
    expect(pools.stats().pools).toMatchObject({ misses: 8, hits: 8, evictions: 0 });
  });

  it('when the budget is full, closes the idle connection of the tenant asked for least often, not the least recent', async () => {
    const pools = manager({ maxTenantPools: undefined, maxConnectionsPerTenant: 1, maxConnections: 4 });
    const [hot1, hot2, hot3, ...cold] = DBS as [string, string, string, ...string[]];
    // Three hot tenants, asked for often; then used less recently than the cold ones that follow.
    for (let i = 0; i < 10; i++) for (const db of [hot1, hot2, hot3]) await pools.query(key(db), 'SELECT 1');
    const pids = await Promise.all([hot1, hot2, hot3].map((db) => pidOf(pools, db)));
    // A stream of cold tenants, each once: each takes the fourth slot from the previous cold one.
    for (const db of cold) await pools.query(key(db), 'SELECT 1');
    expect(pools.stats().connections.open).toBeLessThanOrEqual(4);
    const evictions = pools.stats().pools.evictions;
    expect(evictions).toBe(cold.length - 1);
    // The hot tenants still have their connections (the same backends), and are served without connecting.
    const misses = pools.stats().pools.misses;
    expect(await Promise.all([hot1, hot2, hot3].map((db) => pidOf(pools, db)))).toEqual(pids);
    expect(pools.stats().pools.misses).toBe(misses);
    await vi.waitFor(async () => expect(await serverConnections(DBS)).toBeLessThanOrEqual(4), { timeout: 10_000, interval: 20 });
  });

  it('reports open connections per server', async () => {
    const pools = manager({ maxTenantPools: undefined, maxConnectionsPerTenant: 2, maxConnections: 6 });
    await Promise.all([pools.query(key(A), 'SELECT pg_sleep(0.05)'), pools.query(key(A), 'SELECT pg_sleep(0.05)'), pools.query(key(B), 'SELECT 1')]);
    expect(pools.stats().servers).toEqual({ [server()]: { open: 3, max: 6, waiting: 0 } });
  });
});

describe('TenantPoolManager: the connection budget', () => {
  it('stays within maxConnections under churn (12 tenants, 3 pools of 2, budget 6, 24 callers)', async () => {
    const pools = manager({ maxTenantPools: 3, maxConnectionsPerTenant: 2, maxConnections: 6 });
    const sampler = new pg.Client({ connectionString: serverUrl() });
    await sampler.connect();
    let running = true;
    let peakServer = 0;
    let peakStats = 0;
    let samples = 0;
    const sampling = (async () => {
      while (running) {
        const { rows } = await sampler.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1)',
          [DBS],
        );
        peakServer = Math.max(peakServer, rows[0]!.n);
        peakStats = Math.max(peakStats, pools.stats().connections.open);
        samples++;
      }
    })();

    const errors: unknown[] = [];
    const wrongDatabase: string[] = [];
    const caller = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        const db = DBS[Math.floor(Math.random() * DBS.length)]!;
        try {
          const { rows } = await pools.query<{ db: string }>(key(db), 'SELECT current_database() AS db, pg_sleep(0.005)');
          if (rows[0]!.db !== db) wrongDatabase.push(`${rows[0]!.db} instead of ${db}`);
        } catch (err) {
          errors.push(err);
        }
        peakStats = Math.max(peakStats, pools.stats().connections.open);
      }
    };
    try {
      await Promise.all(Array.from({ length: 24 }, caller));
    } finally {
      running = false;
      await sampling;
      await sampler.end();
    }

    expect(errors).toEqual([]);
    expect(wrongDatabase).toEqual([]);
    expect(samples).toBeGreaterThan(0);
    expect(peakServer).toBeLessThanOrEqual(6);
    expect(peakStats).toBeLessThanOrEqual(6);
    const stats = pools.stats();
    expect(stats.connections.max).toBe(6);
    expect(stats.pools.evictions).toBeGreaterThan(0);
    expect(stats.pools.hits + stats.pools.misses).toBe(24 * 20);
  });
});

describe('TenantPoolManager: waiting for the budget', () => {
  it('fails a waiter with UNAVAILABLE after acquireTimeoutMs while the holders keep working', async () => {
    const pools = manager({ maxConnections: 2, maxConnectionsPerTenant: 2, acquireTimeoutMs: 300 });
    const h1 = await pools.acquire(key(A));
    const h2 = await pools.acquire(key(A));
    const waiting = pools.acquire(key(B)).then(
      (lease) => {
        lease.release();
        return 'acquired';
      },
      (err: unknown) => err,
    );
    // The holders' connections keep working while someone waits.
    expect((await h1.client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    const err = await waiting;
    expect(isTenantDbError(err, 'UNAVAILABLE')).toBe(true);
    expect((await h2.client.query<{ two: number }>('SELECT 2 AS two')).rows[0]!.two).toBe(2);
    expect(pools.stats().connections.open).toBe(2);
    h1.release();
    h2.release();

    // Now idle, A's connections are closed for B rather than making it wait.
    const { rows } = await pools.query<{ db: string }>(key(B), 'SELECT current_database() AS db');
    expect(rows[0]!.db).toBe(B);
    expect(pools.stats().connections.open).toBeLessThanOrEqual(2);
  });

  it('serves waiters of other tenants in FIFO order', async () => {
    const pools = manager({ maxConnections: 2, maxConnectionsPerTenant: 2 });
    const h1 = await pools.acquire(key(A));
    const h2 = await pools.acquire(key(A));
    const order: string[] = [];
    const wait = (db: string) =>
      pools.acquire(key(db)).then((lease) => {
        order.push(db);
        return lease;
      });
    const b = wait(B);
    const c = wait(C);
    const d = wait(D);

    h1.release();
    const leaseB = await b;
    expect(order).toEqual([B]);
    h2.release();
    const leaseC = await c;
    expect(order).toEqual([B, C]);
    leaseB.release();
    const leaseD = await d;
    expect(order).toEqual([B, C, D]);
    for (const lease of [leaseC, leaseD]) {
      expect((await lease.client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db).toBe(
        order[[leaseB, leaseC, leaseD].indexOf(lease)],
      );
      lease.release();
    }
    expect(pools.stats().connections.open).toBeLessThanOrEqual(2);
  });
});

describe('TenantPoolManager: pools', () => {
  it('lets a long query finish while its pool is evicted', async () => {
    const pools = manager({ maxTenantPools: 2 });
    const lockHolder = new pg.Client({ connectionString: dbUrl(A) });
    await lockHolder.connect();
    try {
      await lockHolder.query('SELECT pg_advisory_lock(4242)');
      const long = pools.query<{ db: string }>(key(A), 'SELECT pg_advisory_xact_lock(4242), current_database() AS db');
      // The query is running (blocked on the lock) on A's pool...
      await vi.waitFor(
        async () => {
          const { rows } = await adminQuery<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            [A],
          );
          expect(rows[0]!.n).toBe(1);
        },
        { timeout: 10_000, interval: 20 },
      );
      // ...when traffic to two other tenants evicts that pool.
      await pools.query(key(B), 'SELECT 1');
      await pools.query(key(C), 'SELECT 1');
      const during = pools.stats();
      expect(during.pools.evictions).toBe(1);
      expect(during.pools.open).toBe(3); // two cached, A draining

      await lockHolder.query('SELECT pg_advisory_unlock(4242)');
      const { rows } = await long;
      expect(rows[0]!.db).toBe(A);
    } finally {
      await lockHolder.end();
    }
    // Once its last client is back, the evicted pool ends and its connection closes.
    await vi.waitFor(
      async () => {
        expect(pools.stats().pools.open).toBe(2);
        expect(await serverConnections([A])).toBe(0);
      },
      { timeout: 10_000, interval: 20 },
    );
    // A new call for the evicted tenant builds a fresh pool.
    const misses = pools.stats().pools.misses;
    await pools.query(key(A), 'SELECT 1');
    expect(pools.stats().pools.misses).toBe(misses + 1);
  });

  it('builds one pool for 100 parallel first calls to one tenant', async () => {
    const pools = manager({ maxConnectionsPerTenant: 4 });
    const results = await Promise.all(
      Array.from({ length: 100 }, () => pools.query<{ db: string }>(key(B), 'SELECT current_database() AS db')),
    );
    expect(results.every((r) => r.rows[0]!.db === B)).toBe(true);
    const stats = pools.stats();
    // A miss is a request that opened a connection: the pool's four; the other 96 reused them.
    expect(stats.pools.misses).toBe(4);
    expect(stats.pools.hits).toBe(96);
    expect(stats.pools.open).toBe(1);
    expect(stats.connections.open).toBe(4);
  });

  it('closes pools idle for idleMs, and their connections', async () => {
    const pools = manager({ idleMs: 200 });
    await Promise.all([pools.query(key(C), 'SELECT 1'), pools.query(key(D), 'SELECT 1')]);
    expect(await serverConnections([C, D])).toBe(2);
    expect(pools.stats().pools.open).toBe(2);
    await vi.waitFor(
      async () => {
        expect(pools.stats().pools.open).toBe(0);
        expect(pools.stats().connections.open).toBe(0);
        expect(await serverConnections([C, D])).toBe(0);
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(pools.stats().pools.evictions).toBe(0);
    await pools.query(key(C), 'SELECT 1');
    expect(pools.stats().pools.misses).toBe(3);
  });
});

describe('TenantPoolManager: failures', () => {
  it('survives pg_terminate_backend on idle, lent and busy connections, and reconnects', async () => {
    const pools = manager({ maxConnectionsPerTenant: 3 });
    const idle = await pools.acquire(key(B));
    const lent = await pools.acquire(key(B));
    const busy = await pools.acquire(key(B));
    idle.release();
    const running = busy.client.query('SELECT pg_sleep(30)').then(
      () => 'finished',
      (err: unknown) => err,
    );
    await vi.waitFor(
      async () => {
        const { rows } = await adminQuery<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'",
          [B],
        );
        expect(rows[0]!.n).toBe(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    const killed = await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [B]);
    expect(killed.rowCount).toBe(3);

    // Only the running query fails, with the server's own error (not wrapped).
    const err = await running;
    expect(err).toBeInstanceOf(Error);
    expect(isTenantDbError(err)).toBe(false);
    busy.release();
    // Every socket closed (the lent one too, while still out); nothing crashed.
    await vi.waitFor(() => expect(pools.stats().connections.open).toBe(0), { timeout: 10_000, interval: 20 });
    lent.release();

    const { rows } = await pools.query<{ db: string }>(key(B), 'SELECT current_database() AS db');
    expect(rows[0]!.db).toBe(B);
  });

  it('one query on a warm client (the fast path) also goes back clean: a BEGIN it sent is rolled back, a failed query leaves it usable', async () => {
    const pools = manager({ maxConnectionsPerTenant: 1 });
    const backendPid = 'SELECT pg_backend_pid() AS pid';
    const pid = (await pools.query<{ pid: number }>(key(A), backendPid)).rows[0]!.pid; // warm: the client is idle now
    await pools.query(key(A), 'BEGIN; INSERT INTO t VALUES (7)');
    await expect(pools.query(key(A), 'SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
    const seen = await pools.withClient(key(A), async (client) => ({
      status: client.getTransactionStatus(),
      pid: (await client.query<{ pid: number }>(backendPid)).rows[0]!.pid,
      rows: (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE v = 7')).rows[0]!.n,
    }));
    expect(seen).toEqual({ status: 'I', pid, rows: 0 });
    expect(pools.stats().connections.open).toBe(1);
  });

  it('gives a client back clean when it was left inside an open or aborted transaction', async () => {
    // One connection per tenant: the next borrower gets the very same client.
    const pools = manager({ maxConnectionsPerTenant: 1 });
    const backendPid = 'SELECT pg_backend_pid() AS pid';
    const pid = await pools.withClient(key(A), async (client) => {
      await client.query('BEGIN');
      await client.query('INSERT INTO t VALUES (1)');
      return (await client.query<{ pid: number }>(backendPid)).rows[0]!.pid;
    });
    const seen = await pools.withClient(key(A), async (client) => ({
      status: client.getTransactionStatus(),
      pid: (await client.query<{ pid: number }>(backendPid)).rows[0]!.pid,
      rows: (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]!.n,
    }));
    expect(seen).toEqual({ status: 'I', pid, rows: 0 }); // rolled back, not destroyed

    await pools.withClient(key(A), async (client) => {
      await client.query('BEGIN');
      await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      // in_failed_sql_transaction: the transaction is aborted when the client goes back
      await expect(client.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    });
    expect(await pools.withClient(key(A), async (client) => client.getTransactionStatus())).toBe('I');

    // Aborted by the very query that failed, in one round trip: the status pg reports lags behind.
    await pools.withClient(key(A), async (client) => {
      await expect(client.query('BEGIN; SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    });
    const afterBatch = await pools.withClient(key(A), async (client) => ({
      status: client.getTransactionStatus(),
      pid: (await client.query<{ pid: number }>(backendPid)).rows[0]!.pid,
    }));
    expect(afterBatch).toEqual({ status: 'I', pid });

    // The caller's SQL errors pass through untouched, and the client still comes back clean.
    await expect(
      pools.withClient(key(A), async (client) => {
        await client.query('BEGIN');
        await client.query('SELECT * FROM no_such_table');
      }),
    ).rejects.toMatchObject({ code: '42P01' });

    // acquire/release: the release rolls back before the client is lent again.
    const lease = await pools.acquire(key(A));
    await lease.client.query('BEGIN');
    await lease.client.query('INSERT INTO t VALUES (2)');
    lease.release();
    const next = await pools.acquire(key(A));
    try {
      expect(next.client.getTransactionStatus()).toBe('I');
      expect((await next.client.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]!.n).toBe(0);
    } finally {
      next.release();
    }
  });

  it('reports an unknown database as NOT_FOUND and an unreachable server as UNAVAILABLE, without the password', async () => {
    const pools = manager();
    const missing = await pools.query(key(uniqueName('tdbt_missing')), 'SELECT 1').catch((err: unknown) => err);
    expect(isTenantDbError(missing, 'NOT_FOUND')).toBe(true);

    const unreachable = { server: 'postgres://someone:sekret-pw@127.0.0.1:1', database: A };
    const down = await pools.query(unreachable, 'SELECT 1').catch((err: unknown) => err);
    expect(isTenantDbError(down, 'UNAVAILABLE')).toBe(true);
    expect((down as Error).message).not.toContain('sekret-pw');

    // Failed pools hold nothing.
    await vi.waitFor(() => expect(pools.stats().connections.open).toBe(0), { timeout: 10_000, interval: 20 });
    expect(pools.stats().pools.open).toBe(0);
  });
});

describe('TenantPoolManager: ending', () => {
  it('close() is idempotent, ends every pool and connection, and later calls get CLOSED', async () => {
    const pools = manager({ maxTenantPools: 2 });
    await pools.query(key(A), 'SELECT 1');
    await pools.query(key(B), 'SELECT 1');
    await pools.query(key(C), 'SELECT 1'); // evicts A
    expect(await serverConnections([B, C])).toBe(2);

    const first = pools.close();
    const second = pools.close();
    expect(second).toBe(first);
    await first;
    await pools.close();

    expect(await serverConnections([A, B, C])).toBe(0);
    expect(pools.stats().connections.open).toBe(0);
    expect(pools.stats().pools.open).toBe(0);
    await expect(pools.acquire(key(A))).rejects.toSatisfy((err) => isTenantDbError(err, 'CLOSED'));
    await expect(pools.query(key(D), 'SELECT 1')).rejects.toSatisfy((err) => isTenantDbError(err, 'CLOSED'));
  });

  it('close() fails waiters with CLOSED and destroys clients still lent after drainTimeoutMs', async () => {
    const pools = manager({ maxConnections: 1 }, 200);
    const lent = await pools.acquire(key(D));
    const waiter = pools.acquire(key(C)).catch((err: unknown) => err);
    await pools.close();
    expect(isTenantDbError(await waiter, 'CLOSED')).toBe(true);
    expect(pools.stats().connections.open).toBe(0);
    await expect(lent.client.query('SELECT 1')).rejects.toBeInstanceOf(Error);
    lent.release();
    await vi.waitFor(async () => expect(await serverConnections([C, D])).toBe(0), { timeout: 10_000, interval: 20 });
  });

  it('endPool() ends one database pool now; the next call opens a fresh one', async () => {
    // acquireTimeoutMs beyond the test timeout: the queued caller must be failed by endPool itself.
    const pools = manager({ maxConnectionsPerTenant: 1, acquireTimeoutMs: 120_000 }, 200);
    await pools.query(key(C), 'SELECT 1');
    await pools.query(key(D), 'SELECT 1');
    await pools.endPool(key(C));
    expect(await serverConnections([C])).toBe(0);
    expect(await serverConnections([D])).toBe(1);
    expect(pools.stats().pools.open).toBe(1);

    const lent = await pools.acquire(key(C));
    expect(pools.stats().pools.misses).toBe(3);
    const queued = pools.acquire(key(C)).catch((err: unknown) => err);
    await pools.endPool(key(C)); // fails the queued caller, destroys the lent client after drainTimeoutMs
    expect(isTenantDbError(await queued, 'UNAVAILABLE')).toBe(true);
    await expect(lent.client.query('SELECT 1')).rejects.toBeInstanceOf(Error);
    lent.release();
    await vi.waitFor(async () => expect(await serverConnections([C])).toBe(0), { timeout: 10_000, interval: 20 });
    expect(pools.stats().connections.open).toBe(1);
    expect(pools.stats().pools.open).toBe(1);
  });
});
