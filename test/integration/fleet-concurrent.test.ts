import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetMigrateResult, FleetProgressEvent, Platform, Tenant } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';

const env = useTestPlatform();
let folder: string;
let tenants: Tenant[];

/** How many times each migration was recorded in a tenant database. */
async function bookkeeping(tenant: Tenant): Promise<Record<string, number>> {
  const { rows } = await adminQuery<{ name: string; n: string }>(
    'SELECT name, count(*) AS n FROM tenantdb_migrations GROUP BY name ORDER BY name',
    [],
    tenant.databaseName,
  );
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.n)]));
}

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-fleet-race-'));
  const base = await env.initPlatform();
  tenants = await Promise.all(Array.from({ length: 6 }, (_, i) => base.tenants.create({ name: `Race ${i}` })));
  await base.close();
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('fleet migrations from several processes', () => {
  it('two platforms migrating the fleet at once apply each migration exactly once', async () => {
    // Not idempotent on purpose: a second application would fail. The sleep widens the race.
    await writeFile(path.join(folder, '0100_audit.sql'), 'SELECT pg_sleep(0.05);\nCREATE TABLE audit (id int PRIMARY KEY);\n');
    await writeFile(path.join(folder, '0101_audit_seed.sql'), 'INSERT INTO audit (id) VALUES (1);\n');
    const events: FleetProgressEvent[][] = [[], []];
    const [a, b] = [0, 1].map(() => env.platform({ tenantMigrations: [folder] })) as [Platform, Platform];
    const results = await Promise.all(
      [a, b].map((p, i) => p.migrations.tenants.up({ concurrency: 3, onProgress: (e) => events[i]!.push(e) })),
    );
    for (const result of results) {
      expect(result.failed).toEqual([]);
      expect(result.succeeded).toHaveLength(tenants.length);
    }
    for (const t of tenants) expect(await bookkeeping(t)).toEqual({ '0001_initial': 1, '0100_audit': 1, '0101_audit_seed': 1 });
    // Between them, the two runs applied each migration of each tenant once.
    const applied = events.flat().flatMap((e) => (e.type === 'success' ? e.applied!.map((m) => `${e.tenantId}:${m}`) : []));
    expect(applied.sort()).toEqual(tenants.flatMap((t) => [`${t.id}:0100_audit`, `${t.id}:0101_audit_seed`]).sort());
    for (const t of tenants) {
      const rows = await adminQuery('SELECT id FROM audit', [], t.databaseName);
      expect(rows.rows).toEqual([{ id: 1 }]);
    }
  });

  it('a concurrency above maxConnections is capped by the connection budget and still finishes', async () => {
    await writeFile(path.join(folder, '0102_audit_more.sql'), 'SELECT pg_sleep(0.02);\nINSERT INTO audit (id) VALUES (2);\n');
    const platform = env.platform({ tenantMigrations: [folder], pool: { maxConnections: 2, maxConnectionsPerTenant: 1 } });
    let peak = 0;
    let running = 0;
    let peakRunning = 0;
    const result: FleetMigrateResult = await platform.migrations.tenants.up({
      concurrency: 10,
      onProgress: (e) => {
        peak = Math.max(peak, platform.stats().connections.open);
        running += e.type === 'start' ? 1 : -1;
        peakRunning = Math.max(peakRunning, running);
      },
    });
    expect(result.failed).toEqual([]);
    expect(result.succeeded).toHaveLength(tenants.length);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peakRunning).toBeLessThanOrEqual(2);
    for (const t of tenants) expect((await bookkeeping(t))['0102_audit_more']).toBe(1);
  });
});
