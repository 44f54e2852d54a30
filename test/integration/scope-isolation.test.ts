import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, type Platform, type Tenant } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';

const env = useTestPlatform();
let platform: Platform;
let tenants: Tenant[];

beforeAll(async () => {
  platform = await env.initPlatform();
  tenants = await Promise.all(Array.from({ length: 8 }, (_, i) => platform.tenants.create({ name: `Scope ${i}` })));
  await Promise.all(
    tenants.map((t) =>
      platform.withTenant(t, (ctx) => ctx.query('CREATE TABLE markers (scope int PRIMARY KEY, tenant_id uuid NOT NULL)')),
    ),
  );
});

describe('currentTenant()', () => {
  it('is undefined outside any scope', () => {
    expect(currentTenant()).toBeUndefined();
  });

  it('is the scope\'s ctx inside it, across awaits, timers, microtasks and callbacks', async () => {
    const [t] = tenants as [Tenant];
    const seen = await platform.withTenant(t, async (ctx) => {
      const found: Array<unknown> = [currentTenant()];
      await ctx.query('SELECT 1');
      found.push(currentTenant());
      await sleep(5);
      found.push(currentTenant());
      found.push(await new Promise((resolve) => setTimeout(() => resolve(currentTenant()), 5)));
      found.push(await new Promise((resolve) => setImmediate(() => resolve(currentTenant()))));
      found.push(await Promise.resolve().then(() => currentTenant()));
      return found.map((c) => c === ctx);
    });
    expect(seen).toEqual(Array(6).fill(true));
    expect(currentTenant()).toBeUndefined();
  });

  it('a timer started inside a scope still sees it after the scope returned', async () => {
    const [t] = tenants as [Tenant];
    let later: Promise<string | undefined> | undefined;
    await platform.withTenant(t, () => {
      later = sleep(10).then(() => currentTenant()?.tenant.id);
    });
    expect(currentTenant()).toBeUndefined();
    expect(await later).toBe(t.id);
  });

  it('nested scopes restore the outer one, also when the inner throws', async () => {
    const [a, b] = tenants as [Tenant, Tenant];
    const trace = await platform.withTenant(a, async (outer) => {
      const steps: string[] = [currentTenant()!.tenant.id];
      await platform.withTenant(b, async (inner) => {
        steps.push(currentTenant()!.tenant.id);
        expect(currentTenant()).toBe(inner);
        const db = (await inner.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
        steps.push(db);
      });
      steps.push(currentTenant()!.tenant.id);
      await expect(
        platform.withTenant(b, async () => {
          await sleep(1);
          throw new Error('inner failure');
        }),
      ).rejects.toThrow('inner failure');
      steps.push(currentTenant()!.tenant.id);
      expect(currentTenant()).toBe(outer);
      return steps;
    });
    expect(trace).toEqual([a.id, b.id, b.databaseName, a.id, a.id]);
  });
});

/** 400 scopes over the 8 tenants, interleaved by random delays, each writing then reading back its marker. */
async function interleave(on: Platform, offset: number): Promise<string[]> {
  const results = await Promise.all(
    Array.from({ length: 400 }, async (_, i) => {
      const scope = offset + i;
      const tenant = tenants[i % tenants.length]!;
      // Random delays before, between and after the queries interleave the scopes.
      await sleep(Math.floor(Math.random() * 10));
      return on.withTenant(tenant, async (ctx) => {
        const problems: string[] = [];
        const check = (where: string): void => {
          if (currentTenant() !== ctx) problems.push(`${scope} ${where}: another scope`);
          if (currentTenant()?.tenant.id !== tenant.id) problems.push(`${scope} ${where}: another tenant`);
        };
        check('start');
        await sleep(Math.floor(Math.random() * 5));
        await ctx.query('INSERT INTO markers (scope, tenant_id) VALUES ($1, $2)', [scope, tenant.id]);
        check('after insert');
        await sleep(Math.floor(Math.random() * 5));
        const { rows } = await currentTenant()!.query<{ tenant_id: string; db: string }>(
          'SELECT tenant_id, current_database() AS db FROM markers WHERE scope = $1',
          [scope],
        );
        check('after read');
        if (rows.length !== 1 || rows[0]!.tenant_id !== tenant.id || rows[0]!.db !== tenant.databaseName) {
          problems.push(`${scope} read back ${JSON.stringify(rows)}`);
        }
        return problems;
      });
    }),
  );
  return results.flat();
}

/** Each tenant database holds exactly its own markers of the range. */
async function markersAreHome(offset: number): Promise<void> {
  for (const [i, tenant] of tenants.entries()) {
    const rows = await platform.withTenant(
      tenant,
      async (ctx) =>
        (await ctx.query<{ scope: number; tenant_id: string }>('SELECT scope, tenant_id FROM markers WHERE scope >= $1 AND scope < $2', [offset, offset + 400]))
          .rows,
    );
    expect(rows).toHaveLength(50);
    expect(rows.every((r) => r.tenant_id === tenant.id && (r.scope - offset) % tenants.length === i)).toBe(true);
  }
}

describe('concurrent scopes', () => {
  it('400 interleaved scopes over 8 tenants never see each other', async () => {
    expect(await interleave(platform, 0)).toEqual([]);
    expect(currentTenant()).toBeUndefined();
    await markersAreHome(0);
  });

  it('nor when the pools churn: 3 pools of 2 connections, 6 in all, for 8 tenants', async () => {
    const tight = env.platform({ pool: { maxTenantPools: 3, maxConnectionsPerTenant: 2, maxConnections: 6 } });
    expect(await interleave(tight, 1000)).toEqual([]);
    const stats = tight.stats();
    expect(stats.pools.evictions).toBeGreaterThan(0);
    expect(stats.connections.open).toBeLessThanOrEqual(6);
    await markersAreHome(1000);
  });
});
