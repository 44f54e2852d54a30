import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Platform, Tenant, User } from '../../src/index.js';
import { tenantDatabaseName } from '../../src/tenants/database-name.js';
import { adminQuery, databaseExists, dbUrl, listKeys, testS3Client, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let platform: Platform;
let admin: User;

/** A registry row in `status` with no database, as a create still at work (or one that failed) shows it. */
async function unfinished(status: 'provisioning' | 'failed'): Promise<string> {
  const id = randomUUID();
  await adminQuery(
    `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at)
     VALUES ($1, $2, $3, 'default', $4, true, now(), now())`,
    [id, `Unfinished ${status}`, tenantDatabaseName(`Unfinished ${status}`, id), status],
    env.mainDb,
  );
  return id;
}

async function objectKeys(tenantId: string): Promise<string[]> {
  const s3 = testS3Client();
  try {
    return await listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${tenantId}/`);
  } finally {
    s3.destroy();
  }
}

const select1 = (ctx: { query(sql: string): Promise<pg.QueryResult> }): Promise<unknown> =>
  ctx.query('SELECT 1 AS one').then((r) => r.rows[0]!.one);

beforeAll(async () => {
  platform = await env.initPlatform();
  admin = await createTestUser(platform, 'Ann', 'Admin');
});

describe('tenants.get and list', () => {
  let acme: Tenant;
  let globex: Tenant;

  beforeAll(async () => {
    acme = await platform.tenants.create({ name: 'Acme', createdBy: admin.id });
    globex = await platform.tenants.create({ name: 'Globex' });
  });

  it('gets by id (either case) and by database name', async () => {
    expect(await platform.tenants.get(acme.id)).toEqual(acme);
    expect(await platform.tenants.get(acme.id.toUpperCase())).toEqual(acme);
    expect(await platform.tenants.get(acme.databaseName)).toEqual(acme);
  });

  it.each([
    ['an unknown id', randomUUID()],
    ['an unknown database name', 'tenant_nobody_12345678'],
    ['an empty string', ''],
    ['SQL', "x' OR '1'='1"],
  ])('%s → NOT_FOUND', async (_label, ref) => {
    expect(await rejectionCode(platform.tenants.get(ref))).toBe('NOT_FOUND');
  });

  it('lists active tenants, and inactive ones only when asked', async () => {
    const other = await platform.tenants.create({ name: 'Initech' });
    await platform.tenants.deactivate(other.id);
    const active = (await platform.tenants.list()).map((t) => t.id);
    expect(active).toEqual(expect.arrayContaining([acme.id, globex.id]));
    expect(active).not.toContain(other.id);
    const all = await platform.tenants.list({ includeInactive: true });
    expect(all.map((t) => t.id)).toEqual(expect.arrayContaining([acme.id, globex.id, other.id]));
    expect(all.find((t) => t.id === other.id)?.isActive).toBe(false);
  });
});

describe('deactivate and activate', () => {
  it('deactivate → TENANT_INACTIVE at once (with or without a user); activate → usable again, data kept', async () => {
    const tenant = await platform.tenants.create({ name: 'Sleepy', createdBy: admin.id });
    await platform.withTenant(tenant, (ctx) => ctx.query('CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)'));
    // A scope just before, so a cached view of the tenant exists.
    expect(await platform.withTenant(tenant.id, select1)).toBe(1);

    const off = await platform.tenants.deactivate(tenant.id);
    expect(off.isActive).toBe(false);
    expect(await rejectionCode(platform.withTenant(tenant.id, select1))).toBe('TENANT_INACTIVE');
    expect(await rejectionCode(platform.withTenant(tenant.databaseName, select1))).toBe('TENANT_INACTIVE');
    expect(await rejectionCode(platform.withTenant(tenant, select1, { userId: admin.id }))).toBe('TENANT_INACTIVE');

    const on = await platform.tenants.activate(tenant.id);
    expect(on.isActive).toBe(true);
    const kept = await platform.withTenant(tenant.id, async (ctx) => (await ctx.query('SELECT v FROM kept')).rows[0]!.v, {
      userId: admin.id,
    });
    expect(kept).toBe(7);
  });

  it.each([['deactivate'], ['activate']] as const)('%s of an unknown tenant → NOT_FOUND', async (op) => {
    expect(await rejectionCode(platform.tenants[op](randomUUID()))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.tenants[op]('not-an-id'))).toBe('NOT_FOUND');
  });
});

describe('withTenant on tenants that cannot be entered', () => {
  it.each([['provisioning'], ['failed']] as const)('a %s tenant → TENANT_NOT_READY (stats too)', async (status) => {
    const id = await unfinished(status);
    expect(await rejectionCode(platform.withTenant(id, select1))).toBe('TENANT_NOT_READY');
    expect(await rejectionCode(platform.tenants.stats(id))).toBe('TENANT_NOT_READY');
  });

  it('an unknown tenant → NOT_FOUND', async () => {
    expect(await rejectionCode(platform.withTenant(randomUUID(), select1))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.withTenant('tenant_nobody_12345678', select1))).toBe('NOT_FOUND');
  });
});

describe('tenants.stats', () => {
  it('counts documents, distinct files and their bytes', async () => {
    const tenant = await platform.tenants.create({ name: 'Counted', createdBy: admin.id });
    const empty = await platform.tenants.stats(tenant.id);
    expect(empty).toMatchObject({ documents: 0, files: 0, storedBytes: 0 });
    expect(empty.databaseSizeBytes).toBeGreaterThan(0);

    await platform.withTenant(
      tenant,
      async (ctx) => {
        await ctx.documents.upload({ filename: 'a.txt', body: 'same bytes' });
        await ctx.documents.upload({ filename: 'b.txt', body: 'same bytes' });
        await ctx.documents.upload({ filename: 'c.txt', body: 'other' });
      },
      { userId: admin.id },
    );
    const stats = await platform.tenants.stats(tenant.id);
    expect(stats).toMatchObject({ documents: 3, files: 2, storedBytes: 'same bytes'.length + 'other'.length });
    expect(await rejectionCode(platform.tenants.stats(randomUUID()))).toBe('NOT_FOUND');
  });
});

describe('tenants.drop', () => {
  it('ends the pool, drops the database under an open session, deletes objects, row and memberships', async () => {
    const tenant = await platform.tenants.create({ name: 'Doomed', createdBy: admin.id });
    const neighbour = await platform.tenants.create({ name: 'Neighbour', createdBy: admin.id });
    const upload = (t: Tenant) =>
      platform.withTenant(t, (ctx) => ctx.documents.upload({ filename: 'keep.txt', body: 'hello' }), { userId: admin.id });
    await upload(tenant);
    await upload(neighbour);
    expect((await objectKeys(tenant.id)).length).toBe(1);
    const poolsBefore = platform.stats().pools.open;

    // Somebody else (psql, a report) is connected to the tenant database.
    const session = new pg.Client({ connectionString: dbUrl(tenant.databaseName) });
    const sessionError = new Promise<Error>((resolve) => session.on('error', resolve));
    await session.connect();

    await platform.tenants.drop(tenant.id);

    expect(await sessionError).toBeInstanceOf(Error);
    expect(platform.stats().pools.open).toBe(poolsBefore - 1);
    expect(await databaseExists(tenant.databaseName)).toBe(false);
    expect(await objectKeys(tenant.id)).toEqual([]);
    expect(await rejectionCode(platform.tenants.get(tenant.id))).toBe('NOT_FOUND');
    const memberships = await adminQuery('SELECT 1 FROM user_tenant_associations WHERE tenant_id = $1', [tenant.id], env.mainDb);
    expect(memberships.rowCount).toBe(0);
    expect(await rejectionCode(platform.withTenant(tenant.id, select1))).toBe('NOT_FOUND');
    expect((await platform.memberships.listTenants(admin.id)).map((m) => m.tenant.id)).not.toContain(tenant.id);
    await session.end().catch(() => {});

    // The neighbour is untouched.
    expect((await objectKeys(neighbour.id)).length).toBe(1);
    expect(await platform.withTenant(neighbour, select1)).toBe(1);
    expect(await rejectionCode(platform.tenants.drop(tenant.id))).toBe('NOT_FOUND');
  });

  it('finishes a drop whose database is already gone', async () => {
    const tenant = await platform.tenants.create({ name: 'Half dropped' });
    await adminQuery(`DROP DATABASE "${tenant.databaseName}" WITH (FORCE)`);
    await platform.tenants.drop(tenant.id);
    expect(await rejectionCode(platform.tenants.get(tenant.id))).toBe('NOT_FOUND');
  });

  it('drops by database name too', async () => {
    const tenant = await platform.tenants.create({ name: 'By name' });
    await platform.tenants.drop(tenant.databaseName);
    expect(await databaseExists(tenant.databaseName)).toBe(false);
  });
});
