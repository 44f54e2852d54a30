import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, TenantDbError, User } from '../../src/index.js';
import { tenantDatabaseName } from '../../src/tenants/database-name.js';
import { adminQuery, databaseExists, dbUrl, useTestPlatform } from '../support/env.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let platform: Platform;
let creator: User;

interface Leftover {
  id: string;
  name: string;
  databaseName: string;
}

/** What a process that died half way through `tenants.create` leaves: a row in `status`, maybe a database. */
async function leftover(
  label: string,
  options: { status?: 'provisioning' | 'failed'; withDatabase: boolean; createdBy?: string; server?: string },
): Promise<Leftover> {
  const id = randomUUID();
  const name = `${label} ${id.slice(0, 4)}`;
  const databaseName = tenantDatabaseName(name, id);
  await adminQuery(
    `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at, created_by)
     VALUES ($1, $2, $3, $4, $5, true, now(), now(), $6)`,
    [id, name, databaseName, options.server ?? 'default', options.status ?? 'provisioning', options.createdBy ?? creator.id],
    env.mainDb,
  );
  if (options.withDatabase) {
    // Cloned the way the library does; the template allows no connections, cloning needs none.
    const { rows } = await adminQuery<{ database_name: string }>(
      `SELECT database_name FROM tenant_templates WHERE server = 'default'`,
      [],
      env.mainDb,
    );
    await adminQuery(`CREATE DATABASE "${databaseName}" TEMPLATE "${rows[0]!.database_name}"`);
  }
  return { id, name, databaseName };
}

async function statusOf(id: string): Promise<string | undefined> {
  const { rows } = await adminQuery<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [id], env.mainDb);
  return rows[0]?.status;
}

/** Holds the provisioning lock of a tenant on its own main-database session, as a live creator does. */
async function holdProvisioningLock(id: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: dbUrl(env.mainDb) });
  await client.connect();
  await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`tenantdb:provision:${id}`]);
  return client;
}

beforeAll(async () => {
  platform = await env.initPlatform();
  creator = await createTestUser(platform, 'Cleo', 'Creator');
});

describe('tenants.repair()', () => {
  it('finishes a provisioning tenant whose database exists, removes the rest, leaves a live creator\'s alone', async () => {
    const cloned = await leftover('Cloned', { withDatabase: true });
    const rowOnly = await leftover('Row only', { withDatabase: false });
    const failed = await leftover('Failed', { status: 'failed', withDatabase: true });
    const busy = await leftover('Busy', { withDatabase: false });
    const ready = await platform.tenants.create({ name: 'Already ready' });
    const holder = await holdProvisioningLock(busy.id);
    try {
      const result = await platform.tenants.repair();
      expect(result.finished).toEqual([cloned.id]);
      expect([...result.removed].sort()).toEqual([rowOnly.id, failed.id].sort());

      // Finished: ready, usable, its creator admin.
      expect(await statusOf(cloned.id)).toBe('ready');
      const members = await platform.memberships.listMembers(cloned.id);
      expect(members.map((m) => [m.user.id, m.role])).toEqual([[creator.id, 'admin']]);
      const role = await platform.withTenant(cloned.id, (ctx) => ctx.role, { userId: creator.id });
      expect(role).toBe('admin');

      // Removed: no row, no database.
      expect(await statusOf(rowOnly.id)).toBeUndefined();
      expect(await statusOf(failed.id)).toBeUndefined();
      expect(await databaseExists(failed.databaseName)).toBe(false);

      // Its creator still holds the lock: untouched.
      expect(await statusOf(busy.id)).toBe('provisioning');
      // A ready tenant is never touched.
      expect(await statusOf(ready.id)).toBe('ready');
      expect(await databaseExists(ready.databaseName)).toBe(true);
    } finally {
      await holder.end();
    }

    // The creator died (its session and lock are gone): the next pass removes the row.
    const again = await platform.tenants.repair();
    expect(again).toEqual({ finished: [], removed: [busy.id], failed: [] });
    expect(await statusOf(busy.id)).toBeUndefined();
  });

  it('a withTenant on a half-provisioned tenant is TENANT_NOT_READY until repair finishes it', async () => {
    const cloned = await leftover('Pending', { withDatabase: true });
    await expect(platform.withTenant(cloned.id, () => 1)).rejects.toMatchObject({ code: 'TENANT_NOT_READY' });
    await platform.tenants.repair();
    expect(await platform.withTenant(cloned.id, async (ctx) => (await ctx.query('SELECT 1 AS one')).rows[0]!.one)).toBe(1);
  });

  it('init() of another platform repairs too', async () => {
    const cloned = await leftover('At init', { withDatabase: true });
    const rowOnly = await leftover('At init row', { withDatabase: false });
    const other = env.platform();
    await other.init();
    expect(await statusOf(cloned.id)).toBe('ready');
    expect(await statusOf(rowOnly.id)).toBeUndefined();
    const members = await other.memberships.listMembers(cloned.id);
    expect(members.map((m) => m.role)).toEqual(['admin']);
  });

  it('one row it cannot repair never stops the others, nor init()', async () => {
    // A server since removed from the configuration, and a creator whose account has since been deleted.
    const elsewhere = await leftover('Elsewhere', { withDatabase: false, server: 'retired' });
    const orphan = await leftover('Orphan', { withDatabase: true, createdBy: randomUUID() });
    const cloned = await leftover('Sound', { withDatabase: true });
    const result = await platform.tenants.repair();
    expect([...result.finished].sort()).toEqual([orphan.id, cloned.id].sort());
    expect(await statusOf(orphan.id)).toBe('ready');
    expect(await platform.memberships.listMembers(orphan.id)).toEqual([]);
    expect(await statusOf(cloned.id)).toBe('ready');
    // Reported, and left for a platform that knows its server; init() still succeeds.
    expect(result.failed.map((f) => [f.tenantId, (f.error as TenantDbError).code])).toEqual([[elsewhere.id, 'VALIDATION']]);
    expect(await statusOf(elsewhere.id)).toBe('provisioning');
    await env.platform().init();
    await adminQuery('DELETE FROM tenants WHERE id = $1', [elsewhere.id], env.mainDb);
  });

  it('a repair pass while creates run leaves them alone', async () => {
    const creating = Promise.all(Array.from({ length: 4 }, (_, i) => platform.tenants.create({ name: `Racing ${i}`, createdBy: creator.id })));
    const passes = Promise.all([platform.tenants.repair(), platform.tenants.repair()]);
    const [tenants, results] = await Promise.all([creating, passes]);
    expect(tenants.map((t) => t.status)).toEqual(Array(4).fill('ready'));
    for (const result of results) expect(result.removed.filter((id) => tenants.some((t) => t.id === id))).toEqual([]);
    for (const t of tenants) expect(await databaseExists(t.databaseName)).toBe(true);
  });
});
