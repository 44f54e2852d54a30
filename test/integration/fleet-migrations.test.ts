import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetProgressEvent, Platform, Tenant, TenantDbError } from '../../src/index.js';
import { tenantDatabaseName } from '../../src/tenants/database-name.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
let folder: string;
let base: Platform;
let hosted: Platform;
let tenants: Tenant[];
let provisioningId: string;

async function appliedIn(tenant: Tenant): Promise<string[]> {
  const { rows } = await adminQuery<{ name: string }>('SELECT name FROM tenantdb_migrations ORDER BY name', [], tenant.databaseName);
  return rows.map((r) => r.name);
}

async function templateName(): Promise<string> {
  const { rows } = await adminQuery<{ database_name: string }>(
    "SELECT database_name FROM tenant_templates WHERE server = 'default' ORDER BY updated_at DESC LIMIT 1",
    [],
    env.mainDb,
  );
  return rows[0]!.database_name;
}

const ids = (list: readonly { id: string }[]): string[] => list.map((t) => t.id).sort();

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-fleet-'));
  base = await env.initPlatform();
  tenants = await Promise.all([0, 1, 2, 3].map((i) => base.tenants.create({ name: `Fleet ${i}` })));
  // An inactive tenant is migrated like the others: it must be current when it comes back.
  await base.tenants.deactivate(tenants[1]!.id);
  // Tenant 2 already has the table the host migration creates: the migration fails there.
  await base.withTenant(tenants[2]!, (ctx) => ctx.query('CREATE TABLE notes (id int)'));
  // A tenant still being provisioned by some process.
  provisioningId = randomUUID();
  await adminQuery(
    `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at)
     VALUES ($1, 'Provisioning', $2, 'default', 'provisioning', true, now(), now())`,
    [provisioningId, tenantDatabaseName('Provisioning', provisioningId)],
    env.mainDb,
  );
  await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);\n');
  // A later deploy of the host app, with its own tenant migration; it has not run init().
  hosted = env.platform({ tenantMigrations: [folder] });
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('migrations.tenants.up', () => {
  it('reaches every tenant but the broken one, which fails alone; skips the provisioning one; refreshes the template', async () => {
    const before = await templateName();
    const events: FleetProgressEvent[] = [];
    const result = await hosted.migrations.tenants.up({ onProgress: (e) => events.push(e) });

    const [t0, t1, t2, t3] = tenants as [Tenant, Tenant, Tenant, Tenant];
    expect(result.total).toBe(5);
    expect([...result.succeeded].sort()).toEqual(ids([t0, t1, t3]));
    expect(result.skipped).toEqual([provisioningId]);
    expect(result.failed).toHaveLength(1);
    const failure = result.failed[0]!;
    expect(failure.tenantId).toBe(t2.id);
    expect(failure.migration).toBe('0100_notes');
    expect((failure.error as TenantDbError).code).toBe('MIGRATION_FAILED');
    expect((failure.error.cause as { code?: string }).code).toBe('42P07'); // duplicate_table

    for (const t of [t0, t1, t3]) expect(await appliedIn(t)).toEqual(['0001_initial', '0100_notes']);
    expect(await appliedIn(t2)).toEqual(['0001_initial']);

    // Progress: one start and one outcome per ready tenant, a skip for the other; done counts up to total.
    for (const t of [t0, t1, t2, t3]) {
      expect(events.filter((e) => e.tenantId === t.id).map((e) => e.type)).toEqual(['start', t === t2 ? 'failure' : 'success']);
    }
    expect(events.filter((e) => e.tenantId === provisioningId).map((e) => e.type)).toEqual(['skip']);
    expect(events.every((e) => e.total === 5)).toBe(true);
    const outcomes = events.filter((e) => e.type !== 'start');
    expect(outcomes.map((e) => e.done)).toEqual([1, 2, 3, 4, 5]);
    for (const e of events.filter((e) => e.type === 'success')) expect(e.applied).toEqual(['0100_notes']);
    const failed = events.find((e) => e.type === 'failure')!;
    expect(failed.databaseName).toBe(t2.databaseName);
    expect((failed.error as TenantDbError).code).toBe('MIGRATION_FAILED');

    // The template new tenants are cloned from now has the host migration.
    const after = await templateName();
    expect(after).not.toBe(before);
    const fresh = await hosted.tenants.create({ name: 'Born after' });
    expect(await appliedIn(fresh)).toEqual(['0001_initial', '0100_notes']);
    tenants.push(fresh);
  });

  it('status() shows executed and pending per provisioned tenant', async () => {
    const status = await hosted.migrations.tenants.status();
    expect(ids(status.map((s) => ({ id: s.tenantId })))).toEqual(ids(tenants));
    for (const row of status) {
      const t = tenants.find((x) => x.id === row.tenantId)!;
      expect(row.databaseName).toBe(t.databaseName);
      if (t === tenants[2]) expect(row).toMatchObject({ executed: ['0001_initial'], pending: ['0100_notes'] });
      else expect(row).toMatchObject({ executed: ['0001_initial', '0100_notes'], pending: [] });
    }
  });

  it('a rerun after the fix finishes what failed and applies nothing twice', async () => {
    const t2 = tenants[2]!;
    await base.withTenant(t2, (ctx) => ctx.query('DROP TABLE notes'));
    const events: FleetProgressEvent[] = [];
    const result = await hosted.migrations.tenants.up({ onProgress: (e) => events.push(e) });
    expect(result.failed).toEqual([]);
    expect([...result.succeeded].sort()).toEqual(ids(tenants));
    expect(result.skipped).toEqual([provisioningId]);
    const applied = Object.fromEntries(events.filter((e) => e.type === 'success').map((e) => [e.tenantId, e.applied]));
    for (const t of tenants) expect(applied[t.id]).toEqual(t === t2 ? ['0100_notes'] : []);
    expect(await appliedIn(t2)).toEqual(['0001_initial', '0100_notes']);
  });

  it('tenants: [...] migrates only those (ids or database names); an unknown one is a NOT_FOUND failure', async () => {
    const [t0, , , t3] = tenants as [Tenant, Tenant, Tenant, Tenant];
    const events: FleetProgressEvent[] = [];
    const result = await hosted.migrations.tenants.up({
      tenants: [t0.id, t3.databaseName, 'tenant_nobody_12345678'],
      onProgress: (e) => events.push(e),
    });
    expect(result.total).toBe(3);
    expect([...result.succeeded].sort()).toEqual(ids([t0, t3]));
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]).toMatchObject({ tenantId: 'tenant_nobody_12345678', migration: null });
    expect((result.failed[0]!.error as TenantDbError).code).toBe('NOT_FOUND');
    expect(new Set(events.map((e) => e.tenantId))).toEqual(new Set([t0.id, t3.id, 'tenant_nobody_12345678']));
  });

  it('bad options → VALIDATION', async () => {
    expect(await rejectionCode(hosted.migrations.tenants.up({ concurrency: 0 }))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.up({ concurrency: 1.5 }))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.up({ tenants: 'all' as never }))).toBe('VALIDATION');
  });

  it('a throwing onProgress stops nothing', async () => {
    const result = await hosted.migrations.tenants.up({
      onProgress: () => {
        throw new Error('progress bar crashed');
      },
    });
    expect(result.failed).toEqual([]);
    expect(result.succeeded).toHaveLength(tenants.length);
  });
});

describe('migrations.tenant(t)', () => {
  it('is the Umzug of one tenant database: executed() lists the built-ins and the host\'s', async () => {
    const t0 = tenants[0]!;
    for (const ref of [t0, t0.id, t0.databaseName]) {
      const umzug = await hosted.migrations.tenant(ref);
      expect((await umzug.executed()).map((m) => m.name)).toEqual(['0001_initial', '0100_notes']);
      expect(await umzug.pending()).toEqual([]);
    }
    // Without the host folder, a platform knows only the built-ins.
    const builtins = await base.migrations.tenant(t0);
    expect((await builtins.pending()).map((m) => m.name)).toEqual([]);
    expect((await builtins.executed()).map((m) => m.name)).toContain('0001_initial');
    expect(await rejectionCode(hosted.migrations.tenant(randomUUID()))).toBe('NOT_FOUND');
  });
});
