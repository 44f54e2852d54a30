import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { adminQuery, listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { bytesOf } from '../support/streams.js';

describe('storage sweep, tenants.drop and tenants.stats', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const bucket = inject('s3Bucket');
  let platform: Platform;
  let tenant: Tenant;
  const user = randomUUID();
  const tenantPrefix = (id: string): string => `${env.prefix}tenants/${id}/`;

  const keysUnder = (prefix: string): Promise<string[]> => listKeys(s3, bucket, prefix);

  async function putObject(key: string, body = 'orphan'): Promise<string> {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    return key;
  }

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Sweep' });
  });
  afterAll(() => platform.close());

  it('removes an unreferenced object once past the grace period, and keeps referenced ones', async () => {
    const doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'kept.txt', body: 'kept', userId: user }));
    const keptKey = `${tenantPrefix(tenant.id)}files/${doc.fileId}`;
    const orphan = await putObject(`${tenantPrefix(tenant.id)}files/${randomUUID()}`);
    // Not a key the library makes: never touched.
    const foreign = await putObject(`${tenantPrefix(tenant.id)}files/not-a-uuid`);

    expect(await platform.storage.sweep({ tenantId: tenant.id })).toEqual({ objectsDeleted: 0, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await platform.storage.sweep()).toEqual({ objectsDeleted: 0, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await keysUnder(tenantPrefix(tenant.id))).toEqual([keptKey, orphan, foreign].sort());

    expect(await platform.storage.sweep({ tenantId: tenant.id, olderThanMs: 0 })).toEqual({ objectsDeleted: 1, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await keysUnder(tenantPrefix(tenant.id))).toEqual([keptKey, foreign].sort());
    const { body } = await platform.withTenant(tenant, (ctx) => ctx.documents.download(doc.id));
    expect((await bytesOf(body)).toString()).toBe('kept');
  });

  it('removes the objects of a tenant no longer registered, in a sweep of every tenant', async () => {
    const gone = randomUUID();
    const stray = [await putObject(`${tenantPrefix(gone)}files/${randomUUID()}`), await putObject(`${tenantPrefix(gone)}files/${randomUUID()}`)];
    expect(await keysUnder(tenantPrefix(gone))).toEqual(stray.sort());
    await expect(platform.storage.sweep({ tenantId: gone, olderThanMs: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const before = await keysUnder(tenantPrefix(tenant.id));
    expect(await platform.storage.sweep({ olderThanMs: 0 })).toEqual({ objectsDeleted: 2, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await keysUnder(tenantPrefix(gone))).toEqual([]);
    expect(await keysUnder(tenantPrefix(tenant.id))).toEqual(before);
  });

  it('removes what a drop that stopped half way left: a deactivated tenant whose database is gone', async () => {
    const t = await platform.tenants.create({ name: 'Half dropped' });
    await platform.withTenant(t, (ctx) => ctx.documents.upload({ filename: 'left.txt', body: 'left behind', userId: user }));
    // What tenants.drop had done when S3 failed under it: deactivated, database dropped, objects still there.
    await platform.tenants.deactivate(t.id);
    await adminQuery(`DROP DATABASE "${t.databaseName}" WITH (FORCE)`);
    expect(await keysUnder(tenantPrefix(t.id))).toHaveLength(1);
    const others = await keysUnder(tenantPrefix(tenant.id));
    expect(await platform.storage.sweep({ olderThanMs: 0 })).toEqual({ objectsDeleted: 1, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await keysUnder(tenantPrefix(t.id))).toEqual([]);
    expect(await keysUnder(tenantPrefix(tenant.id))).toEqual(others);
    // The drop, retried, completes.
    await platform.tenants.drop(t.id);
    await expect(platform.tenants.get(t.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("leaves an active tenant's objects alone when its database is missing, and still sweeps the others", async () => {
    const t = await platform.tenants.create({ name: 'Missing database' });
    const doc = await platform.withTenant(t, (ctx) => ctx.documents.upload({ filename: 'precious.txt', body: 'precious', userId: user }));
    await adminQuery(`DROP DATABASE "${t.databaseName}" WITH (FORCE)`);
    const orphan = await putObject(`${tenantPrefix(tenant.id)}files/${randomUUID()}`);
    expect(await platform.storage.sweep({ olderThanMs: 0 })).toEqual({ objectsDeleted: 1, uploadsAborted: 0, tenantsDropped: 0 });
    expect(await keysUnder(tenantPrefix(tenant.id))).not.toContain(orphan);
    expect(await keysUnder(tenantPrefix(t.id))).toEqual([`${tenantPrefix(t.id)}files/${doc.fileId}`]);
    await platform.tenants.drop(t.id);
    expect(await keysUnder(tenantPrefix(t.id))).toEqual([]);
  });

  it('refuses bad options with VALIDATION or NOT_FOUND', async () => {
    await expect(platform.storage.sweep({ olderThanMs: -1 })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.storage.sweep({ olderThanMs: Number.NaN })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.storage.sweep({ tenantId: 'not-a-uuid' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('counts documents, files and stored bytes in tenants.stats, after deduplication', async () => {
    const t = await platform.tenants.create({ name: 'Stats' });
    expect(await platform.tenants.stats(t.id)).toMatchObject({ documents: 0, files: 0, storedBytes: 0 });
    await platform.withTenant(t, async (ctx) => {
      await ctx.documents.upload({ filename: 'a.txt', body: '12345', userId: user });
      await ctx.documents.upload({ filename: 'b.txt', body: '12345', userId: user });
      await ctx.documents.upload({ filename: 'c.txt', body: '1234567', userId: user });
    });
    const stats = await platform.tenants.stats(t.id);
    expect(stats).toMatchObject({ documents: 3, files: 2, storedBytes: 12 });
    expect(stats.databaseSizeBytes).toBeGreaterThan(0);
  });

  it('deletes every object under the tenant prefix in tenants.drop, and nothing of other tenants', async () => {
    const t = await platform.tenants.create({ name: 'Dropped' });
    await platform.withTenant(t, async (ctx) => {
      for (let i = 0; i < 3; i++) await ctx.documents.upload({ filename: `d${i}.txt`, body: `drop ${i}`, userId: user });
    });
    await putObject(`${tenantPrefix(t.id)}files/${randomUUID()}`);
    await putObject(`${tenantPrefix(t.id)}other/anything`);
    expect(await keysUnder(tenantPrefix(t.id))).toHaveLength(5);
    const others = await keysUnder(tenantPrefix(tenant.id));
    await platform.tenants.drop(t.id);
    expect(await keysUnder(tenantPrefix(t.id))).toEqual([]);
    expect(await keysUnder(tenantPrefix(tenant.id))).toEqual(others);
    await expect(platform.tenants.get(t.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
