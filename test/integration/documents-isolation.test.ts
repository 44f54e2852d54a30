import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';

describe('documents: tenants are isolated', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  let platform: Platform;
  let a: Tenant;
  let b: Tenant;

  const keysUnder = (prefix: string): Promise<string[]> => listKeys(s3, inject('s3Bucket'), prefix);

  beforeAll(async () => {
    platform = await env.initPlatform();
    [a, b] = await Promise.all([platform.tenants.create({ name: 'Tenant A' }), platform.tenants.create({ name: 'Tenant B' })]);
  });
  afterAll(() => platform.close());

  it('stores the same bytes once per tenant, each under its own prefix, never deduplicated across tenants', async () => {
    const content = randomBytes(4096);
    const user = randomUUID();
    const docA = await platform.withTenant(a, (ctx) => ctx.documents.upload({ filename: 'same.bin', body: content, userId: user }));
    const docB = await platform.withTenant(b, (ctx) => ctx.documents.upload({ filename: 'same.bin', body: content, userId: user }));
    expect(docA.deduplicated).toBe(false);
    expect(docB.deduplicated).toBe(false);
    expect(docB.md5).toBe(docA.md5);
    expect(docB.fileId).not.toBe(docA.fileId);
    expect(await keysUnder(`${env.prefix}tenants/${a.id}/`)).toEqual([`${env.prefix}tenants/${a.id}/files/${docA.fileId}`]);
    expect(await keysUnder(`${env.prefix}tenants/${b.id}/`)).toEqual([`${env.prefix}tenants/${b.id}/files/${docB.fileId}`]);
  });

  it("is NOT_FOUND for another tenant's document id, whatever the call", async () => {
    const user = randomUUID();
    const docA = await platform.withTenant(a, (ctx) => ctx.documents.upload({ filename: 'secret.txt', body: 'secret of A', userId: user }));
    await platform.withTenant(b, async (ctx) => {
      await expect(ctx.documents.get(docA.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ctx.documents.download(docA.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ctx.documents.url(docA.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ctx.documents.rename(docA.id, 'stolen.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ctx.documents.delete(docA.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect((await ctx.documents.list({ userId: user })).items).toEqual([]);
    });
    // Untouched in its own tenant.
    const still = await platform.withTenant(a, (ctx) => ctx.documents.get(docA.id));
    expect(still).toEqual(docA);
  });
});
