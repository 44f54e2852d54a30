import { describe, expect, it } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { TenantPoolManager, type PoolKey, type TenantPoolManagerOptions } from '../../src/pools/tenant-pool-manager.js';
import { useTestPlatform } from '../support/env.js';
import { tenantServerUrl as server, useManagers, usePoolDatabases } from '../support/pool-databases.js';
import { silentServer } from '../support/silent-server.js';

// One connection budget per tenant server: two server names on the harness server stand for two servers.
const DBS = usePoolDatabases('tdbt_srv', 6);
const [A, B, C, D, E] = DBS as [string, string, string, string, string];

const on = (serverName: string, database: string): PoolKey => ({ server: server(), database, serverName });

const closedAfterEach = useManagers();
function manager(overrides: Partial<TenantPoolManagerOptions> = {}): TenantPoolManager {
  return closedAfterEach(new TenantPoolManager({ maxConnectionsPerTenant: 2, maxConnections: 2, idleMs: 30_000, acquireTimeoutMs: 30_000, ...overrides }));
}

const pidOf = async (pools: TenantPoolManager, key: PoolKey): Promise<number> =>
  (await pools.query<{ pid: number }>(key, 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

describe('TenantPoolManager: one budget per tenant server', () => {
  it('gives each server its own ceiling, and reports each', async () => {
    const pools = manager({ acquireTimeoutMs: 300 });
    const held = [await pools.acquire(on('default', A)), await pools.acquire(on('default', A))];
    // The default server's budget is full; the other server's is untouched.
    held.push(await pools.acquire(on('other', B)), await pools.acquire(on('other', C)));
    const third = await pools.acquire(on('default', D)).catch((err: unknown) => err);
    expect(isTenantDbError(third, 'UNAVAILABLE')).toBe(true);
    expect(pools.stats().servers).toMatchObject({ default: { open: 2, max: 2 }, other: { open: 2, max: 2, waiting: 0 } });
    expect(pools.stats().connections).toEqual({ open: 4, max: 4 });
    for (const lease of held) lease.release();
  });

  it('closes idle connections of the waiter\'s own server only', async () => {
    const pools = manager({ maxConnectionsPerTenant: 1, acquireTimeoutMs: 400 });
    // default: two idle connections; other: full with two lent ones.
    const idlePids = [await pidOf(pools, on('default', A)), await pidOf(pools, on('default', B))];
    const lent = [await pools.acquire(on('other', C)), await pools.acquire(on('other', D))];
    // Closing default's idle connections would free nothing for other's waiter: it times out, they stay.
    const waiter = await pools.acquire(on('other', E)).catch((err: unknown) => err);
    expect(isTenantDbError(waiter, 'UNAVAILABLE')).toBe(true);
    expect(pools.stats().pools.evictions).toBe(0);
    expect([await pidOf(pools, on('default', A)), await pidOf(pools, on('default', B))]).toEqual(idlePids);

    // Once other's connections are idle, a waiter of other closes one of them, and default's still stay.
    for (const lease of lent) lease.release();
    const { rows } = await pools.query<{ db: string }>(on('other', E), 'SELECT current_database() AS db');
    expect(rows[0]!.db).toBe(E);
    expect(pools.stats().pools.evictions).toBe(1);
    expect([await pidOf(pools, on('default', A)), await pidOf(pools, on('default', B))]).toEqual(idlePids);
    expect(pools.stats().servers.other!.open).toBeLessThanOrEqual(2);
  });

  it('a server that hangs fails its own callers only: the other server\'s are not delayed', async () => {
    const hung = await silentServer();
    try {
      const pools = manager({ maxConnectionsPerTenant: 4, maxConnections: 2, connectTimeoutMs: 1_500, acquireTimeoutMs: 2_000 });
      const hungKey = (db: string): PoolKey => ({ server: `postgres://someone:sekret-pw@127.0.0.1:${hung.port}`, database: db, serverName: 'hung' });
      // Ten times its budget of callers on the hung server: two connecting, eighteen waiting for its budget.
      const stuck = Array.from({ length: 20 }, (_, i) =>
        pools.query(hungKey(DBS[i % DBS.length]!), 'SELECT 1').then(
          () => 'answered',
          (err: unknown) => err,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(pools.stats().servers.hung).toMatchObject({ open: 2, max: 2 });
      // Meanwhile twenty callers of the healthy server, ten times its budget, are served at once.
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => pools.query<{ db: string }>(on('default', DBS[i % 2]!), 'SELECT current_database() AS db')),
      );
      const elapsed = performance.now() - started;
      expect(results.map((r) => r.rows[0]!.db)).toEqual(Array.from({ length: 20 }, (_, i) => DBS[i % 2]));
      expect(elapsed).toBeLessThan(1_000);
      for (const outcome of await Promise.all(stuck)) {
        expect(isTenantDbError(outcome, 'UNAVAILABLE'), String(outcome)).toBe(true);
        expect((outcome as Error).message).not.toContain('sekret-pw');
      }
    } finally {
      await hung.close();
    }
  });
});

describe('platform.stats(): per tenant server', () => {
  const env = useTestPlatform();

  it('reports every configured server, used or not, and the budget of each', async () => {
    const platform = await env.initPlatform({ tenantServers: { default: server(), other: server() }, pool: { maxConnections: 7 }, tenantSpares: 0 });
    const tenant = await platform.tenants.create({ name: 'Stats' });
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    const stats = platform.stats();
    expect(stats.connections.max).toBe(14);
    expect(stats.servers.default).toEqual({ connections: { open: 1, max: 7 }, waiting: 0 });
    expect(stats.servers.other).toEqual({ connections: { open: 0, max: 7 }, waiting: 0 });
    expect(stats.connections.servers).toEqual({ default: 1, other: 0 });
    expect(stats.connections.open).toBe(1);
  });
});
