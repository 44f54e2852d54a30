import { describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';

// Ten times the main pool's default size (10): ten concurrent creates once deadlocked it, each holding one
// of its connections and waiting for another.
const BURST = 100;
/**
 * The slowest scope allowed during the burst: a bound that starvation cannot meet, not a speed target.
 * Creates that held a main connection for their whole run would queue a scope behind a hundred creates
 * sharing ten connections (each takes 100 ms or more: a second or more); a deadlock, for ever. Alone the
 * slowest scope takes about 50 ms; the whole suite on a slower 2-core machine once took it past 250 ms.
 */
const SLOWEST_SCOPE_MS = 1_000;

/** Runs scopes on `tenants` one after another until `done` settles; returns each scope's latency in ms. */
async function probeScopes(platform: Platform, tenants: Tenant[], done: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  let finished = false;
  void done.finally(() => (finished = true));
  for (let i = 0; !finished; i++) {
    const start = performance.now();
    const tenant = tenants[i % tenants.length]!;
    const [row] = await platform.withTenant(tenant.id, async (ctx) => (await ctx.query<{ n: number }>('SELECT 1 AS n')).rows);
    latencies.push(performance.now() - start);
    expect(row).toEqual({ n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return latencies;
}

async function burst(platform: Platform, slug: string): Promise<{ statuses: string[]; latencies: number[] }> {
  // Scopes read the registry every time (tenantCacheMs: 0), so they need the main pool the creates use.
  const others = [await platform.tenants.create({ name: `${slug} other a` }), await platform.tenants.create({ name: `${slug} other b` })];
  const creates = Promise.all(Array.from({ length: BURST }, (_, i) => platform.tenants.create({ name: `${slug} ${i}` })));
  const [tenants, latencies] = await Promise.all([creates, probeScopes(platform, others, creates)]);
  return { statuses: tenants.map((t) => t.status), latencies };
}

describe(`a burst of ${BURST} concurrent tenants.create`, () => {
  const env = useTestPlatform({ tenantCacheMs: 0 });

  it.each([
    ['with spares (the default 2)', 2],
    ['without spares', 0],
  ])('%s: every create finishes, and scopes on other tenants keep answering meanwhile', async (label, tenantSpares) => {
    const platform = await env.initPlatform({ tenantSpares });
    const slug = `burst ${tenantSpares}`;
    const { statuses, latencies } = await burst(platform, slug);
    expect(statuses).toEqual(Array.from({ length: BURST }, () => 'ready'));
    expect(latencies.length).toBeGreaterThan(0);
    expect(Math.max(...latencies), `slowest scope of ${latencies.length}`).toBeLessThan(SLOWEST_SCOPE_MS);
    const { rows } = await adminQuery<{ n: string }>(
      `SELECT count(*) AS n FROM tenants WHERE name LIKE $1 AND status = 'ready'`,
      [`${slug} %`],
      env.mainDb,
    );
    expect(Number(rows[0]!.n)).toBe(BURST + 2);
    await platform.close();
  }, 240_000);
});

describe('a platform whose every pool has a single connection', () => {
  // With one connection per pool, any library call that holds a pooled connection while it waits for
  // another one from the same pool waits for ever: acquireTimeoutMs turns that into a failure here.
  const env = useTestPlatform({
    tenantCacheMs: 0,
    pool: { maxMainConnections: 1, maxAdminConnections: 1, maxConnections: 1, maxConnectionsPerTenant: 1, acquireTimeoutMs: 10_000 },
  });

  it('does everything: creates in parallel, scopes, memberships, documents, migrations, repair, stats, sweep, drop', async () => {
    const platform = await env.initPlatform();
    const owner = await platform.users.create({ firstName: 'Solo', lastName: 'Pool', email: 'solo@example.com', password: 'correct horse' });
    const member = await platform.users.create({ firstName: 'Two', lastName: 'Pool', email: 'two@example.com', password: 'correct horse' });
    const tenants = await Promise.all(Array.from({ length: 10 }, (_, i) => platform.tenants.create({ name: `single ${i}`, createdBy: owner.id })));
    expect(tenants.map((t) => t.status)).toEqual(Array.from({ length: 10 }, () => 'ready'));
    const [first, second] = tenants as [Tenant, Tenant];

    await platform.memberships.add(first.id, member.id, 'user');
    await platform.memberships.setRole(first.id, member.id, 'viewer');
    expect((await platform.memberships.listMembers(first.id)).length).toBe(2);
    const roles = await Promise.all(
      tenants.map((t) => platform.withTenant(t, (ctx) => ctx.role, { userId: owner.id })),
    );
    expect(roles).toEqual(tenants.map(() => 'admin'));

    const uploads = await Promise.all(
      ['a.txt', 'b.txt', 'c.txt'].map((filename) =>
        platform.withTenant(first, (ctx) => ctx.documents.upload({ filename, body: `same bytes ${filename.length}` }), { userId: owner.id }),
      ),
    );
    expect(uploads.filter((d) => d.deduplicated)).toHaveLength(2);
    await platform.withTenant(first, (ctx) =>
      ctx.transaction(async (tx) => {
        await tx.query('SELECT count(*) FROM documents');
      }),
    );

    const migrated = await platform.migrations.tenants.up({ concurrency: 4 });
    expect(migrated.failed).toEqual([]);
    expect(migrated.succeeded.length).toBe(10);
    expect((await platform.migrations.tenants.status()).every((s) => s.pending.length === 0)).toBe(true);
    expect((await platform.tenants.repair()).failed).toEqual([]);
    expect((await platform.tenants.stats(first.id)).documents).toBe(3);
    expect((await platform.storage.sweep({ olderThanMs: 0 })).objectsDeleted).toBe(0);
    await platform.tenants.drop(second.id);
    expect((await platform.tenants.list()).length).toBe(9);
  }, 120_000);
});
