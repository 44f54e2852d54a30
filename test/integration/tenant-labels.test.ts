import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant, TenantLabels } from '../../src/index.js';
import { tenantDatabaseName } from '../../src/tenants/database-name.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
let platform: Platform;

/** A registry row only (no database): enough for update and list, and cheap to make by the dozen. */
async function registryRow(name: string, status = 'ready', labels: TenantLabels = {}): Promise<string> {
  const id = randomUUID();
  await adminQuery(
    `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at, labels)
     VALUES ($1, $2, $3, 'default', $4, $4 <> 'dropping', now(), now(), $5::jsonb)`,
    [id, name, tenantDatabaseName(name, id), status, JSON.stringify(labels)],
    env.mainDb,
  );
  return id;
}

const ids = (tenants: Tenant[]): string[] => tenants.map((t) => t.id).sort();

beforeAll(async () => {
  platform = await env.initPlatform();
});

describe('tenant labels', () => {
  it('are set by create, {} by default, and read back by get, list and withTenant', async () => {
    const labelled = await platform.tenants.create({ name: 'Labelled', labels: { region: 'eu', 'plan/tier': 'gold' } });
    expect(labelled.labels).toEqual({ region: 'eu', 'plan/tier': 'gold' });
    const plain = await platform.tenants.create({ name: 'Plain' });
    expect(plain.labels).toEqual({});
    expect((await platform.tenants.get(labelled.id)).labels).toEqual({ region: 'eu', 'plan/tier': 'gold' });
    expect((await platform.tenants.get(plain.databaseName)).labels).toEqual({});
    const listed = await platform.tenants.list();
    expect(listed.find((t) => t.id === labelled.id)?.labels).toEqual({ region: 'eu', 'plan/tier': 'gold' });
    expect(await platform.withTenant(labelled.id, (ctx) => ctx.tenant.labels)).toEqual({ region: 'eu', 'plan/tier': 'gold' });
  });

  it('bad labels at create → VALIDATION, nothing registered', async () => {
    const before = (await platform.tenants.list({ includeInactive: true })).length;
    for (const labels of [[], { 'bad key': 'v' }, { k: 1 }, { k: 'x'.repeat(256) }, { k: 'a\u0000b' }]) {
      expect(await rejectionCode(platform.tenants.create({ name: 'Bad labels', labels: labels as unknown as TenantLabels }))).toBe('VALIDATION');
    }
    expect(await platform.tenants.list({ includeInactive: true })).toHaveLength(before);
  });
});

describe('tenants.update', () => {
  it('renames and replaces the labels; the database name stays; a scope after it sees the new row', async () => {
    const tenant = await platform.tenants.create({ name: 'Before', labels: { a: '1', b: '2' } });
    // A scope first, so this process holds a cached view of the tenant.
    expect(await platform.withTenant(tenant.id, (ctx) => ctx.tenant.name)).toBe('Before');

    const renamed = await platform.tenants.update(tenant.id, { name: '  After  ' });
    expect(renamed).toMatchObject({ id: tenant.id, name: 'After', databaseName: tenant.databaseName, labels: { a: '1', b: '2' } });
    expect(renamed.updatedAt.getTime()).toBeGreaterThanOrEqual(tenant.updatedAt.getTime());
    expect(await platform.withTenant(tenant.id, (ctx) => ctx.tenant.name)).toBe('After');

    const relabelled = await platform.tenants.update(tenant.id.toUpperCase(), { labels: { c: '3' } });
    expect(relabelled).toMatchObject({ name: 'After', databaseName: tenant.databaseName, labels: { c: '3' } });
    expect(await platform.withTenant(tenant.databaseName, (ctx) => ctx.tenant.labels)).toEqual({ c: '3' });

    const both = await platform.tenants.update(tenant.id, { name: 'Both', labels: {} });
    expect(both).toMatchObject({ name: 'Both', labels: {} });
    expect(await platform.tenants.get(tenant.id)).toEqual(both);
    expect(await platform.withTenant(tenant.id, (ctx) => ctx.tenant)).toEqual(both);
  });

  it('an empty update or bad input → VALIDATION, nothing changed', async () => {
    const id = await registryRow('Untouched', 'ready', { k: 'v' });
    const before = await platform.tenants.get(id);
    const bad: unknown[] = [
      {},
      { name: undefined, labels: undefined },
      null,
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(256) },
      { name: 'a\u0000b' },
      { labels: null },
      { labels: [] },
      { labels: { '': 'v' } },
      { name: 'Fine', labels: { k: 'x'.repeat(256) } },
    ];
    for (const input of bad) {
      expect(await rejectionCode(platform.tenants.update(id, input as never)), JSON.stringify(input)).toBe('VALIDATION');
    }
    expect(await platform.tenants.get(id)).toEqual(before);
  });

  it('an unknown or malformed id → NOT_FOUND; a tenant being dropped → CONFLICT', async () => {
    expect(await rejectionCode(platform.tenants.update(randomUUID(), { name: 'X' }))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.tenants.update('not-an-id', { name: 'X' }))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.tenants.update('a\u0000b', { name: 'X' }))).toBe('NOT_FOUND');
    const dropping = await registryRow('Going', 'dropping');
    expect(await rejectionCode(platform.tenants.update(dropping, { labels: { k: 'v' } }))).toBe('CONFLICT');
    expect((await platform.tenants.get(dropping)).labels).toEqual({});
  });

  // 10× the default 4-wide sizes (tenant migration concurrency, connections per tenant), 4× the main pool's 10.
  it('40 concurrent updates of different tenants all land', async () => {
    const tenants = await Promise.all(Array.from({ length: 40 }, (_, i) => registryRow(`Concurrent ${i}`)));
    const updated = await Promise.all(
      tenants.map((id, i) => platform.tenants.update(id, { name: `Renamed ${i}`, labels: { wave: String(i % 3), n: String(i) } })),
    );
    expect(updated.map((t) => t.id)).toEqual(tenants);
    for (const [i, id] of tenants.entries()) {
      expect(await platform.tenants.get(id)).toMatchObject({ name: `Renamed ${i}`, labels: { wave: String(i % 3), n: String(i) } });
    }
  });
});

describe('tenants.list({ labels })', () => {
  let eu: string;
  let euGold: string;
  let us: string;
  let euInactive: string;

  beforeAll(async () => {
    const run = randomUUID().slice(0, 8);
    eu = await registryRow('EU', 'ready', { run, region: 'eu' });
    euGold = await registryRow('EU gold', 'ready', { run, region: 'eu', plan: 'gold' });
    us = await registryRow('US', 'ready', { run, region: 'us', plan: 'gold' });
    euInactive = await registryRow('EU off', 'ready', { run, region: 'eu' });
    await platform.tenants.deactivate(euInactive);
    labels = { run };
  });
  let labels: TenantLabels;

  it('keeps the tenants that have every given label', async () => {
    expect(ids(await platform.tenants.list({ labels }))).toEqual([eu, euGold, us].sort());
    expect(ids(await platform.tenants.list({ labels: { ...labels, region: 'eu' } }))).toEqual([eu, euGold].sort());
    expect(ids(await platform.tenants.list({ labels: { ...labels, region: 'eu', plan: 'gold' } }))).toEqual([euGold]);
    expect(ids(await platform.tenants.list({ labels: { ...labels, region: 'eu' }, includeInactive: true }))).toEqual(
      [eu, euGold, euInactive].sort(),
    );
  });

  it('no match → []; {} → no filter; values are compared exactly, as strings', async () => {
    expect(await platform.tenants.list({ labels: { ...labels, region: 'mars' } })).toEqual([]);
    expect(await platform.tenants.list({ labels: { ...labels, region: 'EU' } })).toEqual([]);
    expect(await platform.tenants.list({ labels: { ...labels, region: '' } })).toEqual([]);
    expect(await platform.tenants.list({ labels: { nobody: "x'; DROP TABLE tenants; --" } })).toEqual([]);
    expect(ids(await platform.tenants.list({ labels: {} }))).toEqual(ids(await platform.tenants.list()));
  });

  it('bad labels → VALIDATION', async () => {
    expect(await rejectionCode(platform.tenants.list({ labels: { 'a b': 'c' } }))).toBe('VALIDATION');
    expect(await rejectionCode(platform.tenants.list({ labels: [] as never }))).toBe('VALIDATION');
  });
});
