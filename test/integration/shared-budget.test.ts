import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { openClient } from '../../src/connections/timed-client.js';
import { isTenantDbError } from '../../src/errors.js';
import { sharedBudgetNamespace } from '../../src/pools/shared-budget.js';
import { TenantPoolManager, type PoolKey, type TenantPoolManagerOptions } from '../../src/pools/tenant-pool-manager.js';
import { adminQuery, serverUrl, useTestPlatform } from '../support/env.js';
import { silentServer } from '../support/silent-server.js';
import { connectionsTo as serverConnections, tenantServerUrl as server, useManagers, usePoolDatabases } from '../support/pool-databases.js';

// Two pool managers in one process stand for two processes: each has its own control connection, and
// the slots they share are advisory locks on the server, as between processes.
const DBS = usePoolDatabases('tdbt_shared', 12);
const [A, B, C] = DBS as [string, string, string];

const key = (database: string): PoolKey => ({ server: server(), database, serverName: 'default' });

/** A gate in front of the control connection's connects: closed, a reconnect waits until it opens. */
function gate(): { open(): void; close(): void; wait(): Promise<void> } {
  let opened: Promise<void> = Promise.resolve();
  let release = (): void => {};
  return {
    open: () => release(),
    close: () => {
      opened = new Promise((resolve) => (release = resolve));
    },
    wait: () => opened,
  };
}

const closedAfterEach = useManagers();
function manager(namespace: number, max: number, overrides: Partial<TenantPoolManagerOptions> = {}, connects = gate()): TenantPoolManager {
  const m = new TenantPoolManager(
    { maxConnectionsPerTenant: 2, maxConnections: 4, idleMs: 30_000, acquireTimeoutMs: 20_000, ...overrides },
    undefined,
    {
      sharedBudget: {
        maxConnections: max,
        control: () => ({
          connect: async () => {
            await connects.wait();
            return openClient(serverUrl(), 2_000);
          },
          label: 'the test server',
          namespace,
        }),
      },
    },
  );
  return closedAfterEach(m);
}

const newNamespace = (): number => Math.floor(Math.random() * 0x7fffffff);

/** Slots of `namespace` locked on the server, and by how many sessions. */
async function slotsLocked(namespace: number): Promise<{ slots: number; sessions: number }> {
  const { rows } = await adminQuery<{ slots: number; sessions: number }>(
    `SELECT count(*)::int AS slots, count(DISTINCT pid)::int AS sessions
       FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $1::bigint::oid AND granted`,
    [namespace],
  );
  return rows[0]!;
}

/** Ends the control session of `namespace` (its locks go with it) with `connects` closed, so that no new one opens yet. */
async function loseControl(namespace: number, connects: ReturnType<typeof gate>): Promise<void> {
  connects.close();
  await adminQuery(
    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $1::bigint::oid",
    [namespace],
  );
  await vi.waitFor(async () => expect((await slotsLocked(namespace)).slots).toBe(0), { timeout: 5_000, interval: 10 });
}

/** A session of the test's own on `postgres` that takes slots as another process would. */
async function outsider(namespace: number, slots: number[]): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  for (const slot of slots) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [namespace, slot]);
    expect(rows[0]!.ok).toBe(true);
  }
  return client;
}

describe('shared budget: one ceiling over every process', () => {
  it('two processes, ten times the shared budget of callers: never more than 3 connections, no error', async () => {
    const namespace = newNamespace();
    const pools = [manager(namespace, 3), manager(namespace, 3)];
    const sampler = new pg.Client({ connectionString: serverUrl() });
    await sampler.connect();
    let running = true;
    const peak = { connections: 0, slots: 0, held: 0, samples: 0 };
    const sampling = (async () => {
      while (running) {
        const { rows } = await sampler.query<{ n: number; slots: number }>(
          `SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE datname = ANY($1)) AS n,
                  (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $2::bigint::oid AND granted) AS slots`,
          [DBS, namespace],
        );
        peak.connections = Math.max(peak.connections, rows[0]!.n);
        peak.slots = Math.max(peak.slots, rows[0]!.slots);
        peak.held = Math.max(peak.held, pools.reduce((sum, p) => sum + p.stats().servers.default!.shared!.held, 0));
        peak.samples++;
      }
    })();
    const errors: unknown[] = [];
    const wrong: string[] = [];
    const caller = async (pools: TenantPoolManager): Promise<void> => {
      for (let i = 0; i < 10; i++) {
        const db = DBS[Math.floor(Math.random() * DBS.length)]!;
        try {
          const { rows } = await pools.query<{ db: string }>(key(db), 'SELECT current_database() AS db, pg_sleep(0.005)');
          if (rows[0]!.db !== db) wrong.push(db);
        } catch (err) {
          errors.push(err);
        }
      }
    };
    try {
      // 15 callers per process: 30 over a budget of 3.
      await Promise.all(pools.flatMap((p) => Array.from({ length: 15 }, () => caller(p))));
    } finally {
      running = false;
      await sampling;
      await sampler.end();
    }
    expect(errors).toEqual([]);
    expect(wrong).toEqual([]);
    expect(peak.samples).toBeGreaterThan(0);
    expect(peak.connections).toBeLessThanOrEqual(3);
    expect(peak.slots).toBeLessThanOrEqual(3);
    expect(peak.held).toBeLessThanOrEqual(3);
    for (const p of pools) {
      expect(p.stats().pools.hits + p.stats().pools.misses).toBe(150);
      expect(p.stats().servers.default).toMatchObject({ max: 4, shared: { max: 3 } });
    }
  });

  it('a process that finds no slot free waits, then gets UNAVAILABLE after acquireTimeoutMs', async () => {
    const namespace = newNamespace();
    const other = await outsider(namespace, [0, 1]);
    try {
      const pools = manager(namespace, 2, { acquireTimeoutMs: 300 });
      const started = performance.now();
      const err = await pools.query(key(A), 'SELECT 1').catch((e: unknown) => e);
      expect(isTenantDbError(err, 'UNAVAILABLE')).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect(await serverConnections([A])).toBe(0);
      // A slot given back by the other process is taken by the next call.
      await other.query('SELECT pg_advisory_unlock($1, 1)', [namespace]);
      const { rows } = await pools.query<{ db: string }>(key(A), 'SELECT current_database() AS db');
      expect(rows[0]!.db).toBe(A);
      expect(pools.stats().servers.default!.shared).toEqual({ held: 1, max: 2 });
    } finally {
      await other.end();
    }
  });

  it('a process that waits gets the idle connections of another process closed for it', async () => {
    const namespace = newNamespace();
    const [first, second] = [manager(namespace, 2, { maxConnectionsPerTenant: 1 }), manager(namespace, 2, { maxConnectionsPerTenant: 1 })];
    await first.query(key(A), 'SELECT 1');
    await first.query(key(B), 'SELECT 1');
    expect(await slotsLocked(namespace)).toEqual({ slots: 2, sessions: 1 });
    // Both slots are idle connections of the first process: the second process's caller is served in well under its timeout.
    const started = performance.now();
    const { rows } = await second.query<{ db: string }>(key(C), 'SELECT current_database() AS db');
    expect(rows[0]!.db).toBe(C);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(first.stats().pools.evictions).toBeGreaterThanOrEqual(1);
    expect(await serverConnections([A, B, C])).toBeLessThanOrEqual(2);
  });

  it('a hit never waits for the control connection, nor for a caller waiting for a slot', async () => {
    const namespace = newNamespace();
    const connects = gate();
    const pools = manager(namespace, 3, {}, connects);
    await pools.query(key(A), 'SELECT 1');
    // The control connection is lost, and the next one cannot open yet: a miss must wait for it.
    await loseControl(namespace, connects);
    const miss = pools.query<{ db: string }>(key(B), 'SELECT current_database() AS db').then(
      (result) => result.rows[0]!.db,
      (err: unknown) => err,
    );
    try {
      const started = performance.now();
      for (let i = 0; i < 10; i++) await pools.query(key(A), 'SELECT 1');
      expect(performance.now() - started).toBeLessThan(500);
      expect(await Promise.race([miss.then(() => 'served'), new Promise((resolve) => setTimeout(resolve, 50, 'waiting'))])).toBe('waiting');
    } finally {
      // Once the control connection is back, the connection open takes its slot again and the miss is served.
      connects.open();
    }
    expect(await miss).toBe(B);
    await vi.waitFor(async () => expect(await slotsLocked(namespace)).toEqual({ slots: 2, sessions: 1 }), { timeout: 5_000, interval: 10 });
  });
});

describe('shared budget: per server', () => {
  it('a server whose control connection hangs fails its own callers only', async () => {
    const hung = await silentServer();
    try {
      const namespace = newNamespace();
      const pools = closedAfterEach(
        new TenantPoolManager({ maxConnectionsPerTenant: 2, maxConnections: 4, idleMs: 30_000, acquireTimeoutMs: 2_000, connectTimeoutMs: 1_500 }, undefined, {
          sharedBudget: {
            maxConnections: 2,
            control: (name) => ({
              connect: () => openClient(name === 'hung' ? `postgres://someone:sekret-pw@127.0.0.1:${hung.port}/postgres` : serverUrl(), 1_500),
              label: name,
              namespace,
            }),
          },
        }),
      );
      // Ten times the shared budget of callers on each server (other databases: a pool is cached by URL and database).
      const stuck = Array.from({ length: 20 }, (_, i) =>
        pools.query({ ...key(DBS[2 + (i % 10)]!), serverName: 'hung' }, 'SELECT 1').catch((err: unknown) => err),
      );
      const started = performance.now();
      const served = await Promise.all(Array.from({ length: 20 }, (_, i) => pools.query<{ db: string }>(key(DBS[i % 2]!), 'SELECT current_database() AS db')));
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(served.map((r) => r.rows[0]!.db)).toEqual(Array.from({ length: 20 }, (_, i) => DBS[i % 2]));
      for (const err of await Promise.all(stuck)) {
        expect(isTenantDbError(err, 'UNAVAILABLE'), String(err)).toBe(true);
        expect((err as Error).message).not.toContain('sekret-pw');
      }
    } finally {
      await hung.close();
    }
  });
});

describe('shared budget: a lost control connection', () => {
  it('takes its slots again; the connections whose slot another process took meanwhile close, idle ones first', async () => {
    const namespace = newNamespace();
    const connects = gate();
    const pools = manager(namespace, 3, { maxConnectionsPerTenant: 1 }, connects);
    await pools.query(key(A), 'SELECT 1');
    await pools.query(key(B), 'SELECT 1');
    const lent = await pools.acquire(key(C));
    expect(await slotsLocked(namespace)).toEqual({ slots: 3, sessions: 1 });

    await loseControl(namespace, connects);
    // Another process takes two of the three slots before this one is back.
    const other = await outsider(namespace, [0, 1]).finally(() => connects.open());
    try {
      // One slot left for three connections: the two idle ones close, the lent one keeps working.
      await vi.waitFor(async () => expect(await serverConnections([A, B, C])).toBe(1), { timeout: 5_000, interval: 10 });
      expect((await lent.client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db).toBe(C);
      // A slot goes back when its socket's close event arrives, which can come after the server has let
      // the session go (a slow machine showed it): the stats are waited for, as the server count is.
      await vi.waitFor(() => expect(pools.stats().servers.default!.shared).toEqual({ held: 1, max: 3 }), { timeout: 5_000, interval: 10 });
      expect(await slotsLocked(namespace)).toEqual({ slots: 3, sessions: 2 });
      lent.release();
    } finally {
      await other.end();
    }
    const { rows } = await pools.query<{ db: string }>(key(A), 'SELECT current_database() AS db');
    expect(rows[0]!.db).toBe(A);
  });

  it('closes lent connections too when another process took every slot, and their callers get the failure', async () => {
    const namespace = newNamespace();
    const connects = gate();
    const pools = manager(namespace, 2, { maxConnectionsPerTenant: 1 }, connects);
    await pools.query(key(A), 'SELECT 1');
    const lent = await pools.acquire(key(B));
    await loseControl(namespace, connects);
    const other = await outsider(namespace, [0, 1]).finally(() => connects.open());
    try {
      // No slot left: the idle connection and the lent one both close; the lent one's next query fails.
      await vi.waitFor(async () => expect(await serverConnections([A, B])).toBe(0), { timeout: 5_000, interval: 10 });
      await expect(lent.client.query('SELECT 1')).rejects.toBeInstanceOf(Error);
      lent.release();
      await vi.waitFor(() => expect(pools.stats().servers.default).toMatchObject({ open: 0, shared: { held: 0, max: 2 } }), {
        timeout: 5_000,
        interval: 10,
      });
    } finally {
      await other.end();
    }
  });

  it('fails callers at once with UNAVAILABLE when the control connection cannot be opened, and close() ends it', async () => {
    const pools = new TenantPoolManager(
      { maxConnectionsPerTenant: 2, maxConnections: 4, idleMs: 30_000, acquireTimeoutMs: 20_000 },
      undefined,
      {
        sharedBudget: {
          maxConnections: 3,
          control: () => ({ connect: () => openClient('postgres://someone:sekret-pw@127.0.0.1:1/postgres', 1_000), label: 'down', namespace: 1 }),
        },
      },
    );
    closedAfterEach(pools);
    const started = performance.now();
    const err = await pools.query(key(A), 'SELECT 1').catch((e: unknown) => e);
    expect(isTenantDbError(err, 'UNAVAILABLE')).toBe(true);
    expect((err as Error).message).not.toContain('sekret-pw');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(pools.stats().servers.default).toMatchObject({ open: 0, shared: { held: 0 } });

    const namespace = newNamespace();
    const healthy = manager(namespace, 3);
    await healthy.query(key(A), 'SELECT 1');
    expect(await slotsLocked(namespace)).toEqual({ slots: 1, sessions: 1 });
    await healthy.close();
    expect(await slotsLocked(namespace)).toEqual({ slots: 0, sessions: 0 });
  });
});

describe('pool.sharedBudget on a platform', () => {
  const env = useTestPlatform({ tenantSpares: 0 });

  it('takes its slots on the server\'s postgres database, reports them per server, and gives them all back on close()', async () => {
    const platform = await env.initPlatform({ pool: { sharedBudget: { maxConnections: 5 } } });
    const tenant = await platform.tenants.create({ name: 'Shared' });
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    expect(platform.stats().servers.default).toEqual({ connections: { open: 1, max: 50 }, waiting: 0, sharedBudget: { held: 1, max: 5 } });
    const namespace = sharedBudgetNamespace(env.mainDb, 'default');
    const { rows } = await adminQuery<{ datname: string }>(
      `SELECT d.datname FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = $1::bigint::oid AND l.granted`,
      [namespace],
    );
    expect(rows).toEqual([{ datname: 'postgres' }]);
    await platform.close();
    expect(await slotsLocked(namespace)).toEqual({ slots: 0, sessions: 0 });
  });
});
