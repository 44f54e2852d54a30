import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { freePort } from '../../scripts/dev-servers.js';
import { databaseExists, listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { rejectionCode, rejectionOf } from '../support/errors.js';

// A drop that stops half way, with S3 down: its database is gone, its objects and its row are not. A second
// platform on the same main database, whose S3 endpoint has nothing listening, is the one that fails.
describe('tenants.drop with S3 down', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  let platform: Platform;
  let broken: Platform;

  const objectKeys = (t: Tenant): Promise<string[]> => listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${t.id}/`);

  /** A tenant with one stored document, whose drop by `broken` stopped after its database went. */
  async function halfDropped(name: string): Promise<Tenant> {
    const tenant = await platform.tenants.create({ name });
    await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'kept.txt', body: `bytes of ${name}`, userId: randomUUID() }));
    expect(await objectKeys(tenant)).toHaveLength(1);
    const error = await rejectionOf(broken.tenants.drop(tenant.id));
    expect(error).toMatchObject({ code: 'STORAGE' });
    expect(await databaseExists(tenant.databaseName)).toBe(false);
    return tenant;
  }

  beforeAll(async () => {
    platform = await env.initPlatform({ tenantCacheMs: 0 });
    const dead = `http://127.0.0.1:${await freePort()}`;
    broken = env.platform({ tenantCacheMs: 0, s3: { ...env.options().s3, endpoint: dead } });
  });
  afterAll(async () => {
    await broken.close();
  });

  it('leaves the tenant marked dropping: it cannot be entered, activated, listed or migrated', async () => {
    const tenant = await halfDropped('Stopped');
    expect(await platform.tenants.get(tenant.id)).toMatchObject({ status: 'dropping', isActive: false });
    expect(await rejectionCode(platform.withTenant(tenant.id, () => 1))).toBe('TENANT_INACTIVE');
    expect(await rejectionCode(platform.tenants.activate(tenant.id))).toBe('CONFLICT');
    expect(await platform.tenants.get(tenant.id)).toMatchObject({ status: 'dropping', isActive: false });
    expect((await platform.tenants.list()).map((t) => t.id)).not.toContain(tenant.id);
    expect(await rejectionCode(platform.tenants.stats(tenant.id))).toBe('TENANT_NOT_READY');
    const run = await platform.migrations.tenants.up();
    expect(run.skipped).toContain(tenant.id);
    expect(run.failed).toEqual([]);
    // Deactivating it again is harmless, and leaves it dropping.
    expect(await platform.tenants.deactivate(tenant.id)).toMatchObject({ status: 'dropping', isActive: false });
  });

  it('is finished by a later drop', async () => {
    const tenant = await halfDropped('Dropped again');
    await platform.tenants.drop(tenant.id);
    expect(await objectKeys(tenant)).toEqual([]);
    expect(await rejectionCode(platform.tenants.get(tenant.id))).toBe('NOT_FOUND');
  });

  it('is finished by the storage sweep, whatever the grace period', async () => {
    const tenant = await halfDropped('Swept');
    const other = await platform.tenants.create({ name: 'Bystander' });
    await platform.withTenant(other, (ctx) => ctx.documents.upload({ filename: 'stays.txt', body: 'stays', userId: randomUUID() }));
    const result = await platform.storage.sweep({ tenantId: tenant.id, olderThanMs: 3_600_000 });
    expect(result).toMatchObject({ tenantsDropped: 1, objectsDeleted: 1 });
    expect(await objectKeys(tenant)).toEqual([]);
    expect(await rejectionCode(platform.tenants.get(tenant.id))).toBe('NOT_FOUND');
    // A sweep of every tenant leaves a ready tenant's referenced objects alone.
    await platform.storage.sweep({ olderThanMs: 0 });
    expect(await objectKeys(other)).toHaveLength(1);
  });

  it('is finished by init() (its repair pass), and a failing pass leaves it for the next', async () => {
    const tenant = await halfDropped('Repaired');
    // The broken platform's own repair fails again on S3, and says so without failing init().
    const failed = await broken.tenants.repair();
    expect(failed.failed.map((f) => f.tenantId)).toContain(tenant.id);
    expect(await platform.tenants.get(tenant.id)).toMatchObject({ status: 'dropping' });

    const fresh = env.platform();
    await fresh.init();
    expect(await objectKeys(tenant)).toEqual([]);
    expect(await rejectionCode(fresh.tenants.get(tenant.id))).toBe('NOT_FOUND');
  });
});
