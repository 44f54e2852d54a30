import { randomUUID } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Document, Platform, Tenant, TenantContext } from '../../src/index.js';
import { useTestPlatform, useTestS3Client } from '../support/env.js';
import { bytesOf } from '../support/streams.js';

describe('documents: list pages, rename, delete', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  let platform: Platform;
  let tenant: Tenant;
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);

  async function objectExists(key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: inject('s3Bucket'), Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw err;
    }
  }

  async function keyOf(ctx: TenantContext, fileId: string): Promise<string | undefined> {
    const { rows } = await ctx.query<{ s3_path: string }>('SELECT s3_path FROM files WHERE id = $1', [fileId]);
    return rows[0]?.s3_path;
  }

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Manage' });
  });
  afterAll(() => platform.close());

  it('pages through five documents two at a time with no repeat and no skip, filtered by user', async () => {
    const alice = randomUUID();
    const bob = randomUUID();
    await trusted(async (ctx) => {
      const uploaded: Document[] = [];
      for (let i = 0; i < 5; i++) {
        uploaded.push(await ctx.documents.upload({ filename: `page-${i}.txt`, body: `page ${i}`, userId: i % 2 ? bob : alice }));
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { items: Document[]; nextCursor: string | null } = await ctx.documents.list({ limit: 2, cursor });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((d) => d.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual(uploaded.map((d) => d.id));

      const bobs = await ctx.documents.list({ userId: bob });
      expect(bobs.items.map((d) => d.id)).toEqual([uploaded[1]!.id, uploaded[3]!.id]);
      expect(bobs.nextCursor).toBeNull();
      const alicesFirst = await ctx.documents.list({ userId: alice, limit: 2 });
      const alicesRest = await ctx.documents.list({ userId: alice, limit: 2, cursor: alicesFirst.nextCursor });
      expect([...alicesFirst.items, ...alicesRest.items].map((d) => d.filename)).toEqual(['page-0.txt', 'page-2.txt', 'page-4.txt']);
      expect(alicesRest.nextCursor).toBeNull();

      for (const cursor of ['garbage', Buffer.from('["x","y"]').toString('base64url'), '!!']) {
        await expect(ctx.documents.list({ cursor })).rejects.toMatchObject({ code: 'VALIDATION' });
      }
      await expect(ctx.documents.list({ limit: 0 })).rejects.toMatchObject({ code: 'VALIDATION' });
    });
  });

  it('renames, refusing a name the user already has (also in its NFD spelling) with CONFLICT', async () => {
    const user = randomUUID();
    await trusted(async (ctx) => {
      const nfc = await ctx.documents.upload({ filename: 'caf\u00e9.txt', body: 'nfc', userId: user });
      // The NFD spelling of the same name is the same name.
      await expect(ctx.documents.upload({ filename: 'cafe\u0301.txt', body: 'nfd', userId: user })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      const other = await ctx.documents.upload({ filename: 'other.txt', body: 'other', userId: user });
      await expect(ctx.documents.rename(other.id, 'cafe\u0301.txt')).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(ctx.documents.rename(other.id, 'caf\u00e9.txt')).rejects.toMatchObject({ code: 'CONFLICT' });

      const renamed = await ctx.documents.rename(nfc.id, 'Cre\u0300me.txt');
      expect(renamed).toMatchObject({ id: nfc.id, filename: 'Cr\u00e8me.txt', fileId: nfc.fileId });
      expect(renamed.updatedAt.getTime()).toBeGreaterThanOrEqual(nfc.updatedAt.getTime());
      // The old name is free again; the same name for another user is no conflict.
      expect((await ctx.documents.rename(other.id, 'caf\u00e9.txt')).filename).toBe('caf\u00e9.txt');
      await ctx.documents.upload({ filename: 'caf\u00e9.txt', body: 'nfc', userId: randomUUID() });
      await expect(ctx.documents.rename(other.id, '../x')).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(ctx.documents.rename(randomUUID(), 'x.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  it('deletes the file row and its object with the last document that references them, not before', async () => {
    const user = randomUUID();
    await trusted(async (ctx) => {
      const content = `shared ${randomUUID()}`;
      const first = await ctx.documents.upload({ filename: 'one.txt', body: content, userId: user });
      const second = await ctx.documents.upload({ filename: 'two.txt', body: content, userId: user });
      expect(second.fileId).toBe(first.fileId);
      const key = await keyOf(ctx, first.fileId);
      expect(key).toBe(`${env.prefix}tenants/${tenant.id}/files/${first.fileId}`);

      await ctx.documents.delete(first.id);
      await expect(ctx.documents.get(first.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await keyOf(ctx, first.fileId)).toBe(key);
      expect(await objectExists(key!)).toBe(true);
      const { body } = await ctx.documents.download(second.id);
      expect((await bytesOf(body)).toString()).toBe(content);

      await ctx.documents.delete(second.id);
      expect(await keyOf(ctx, first.fileId)).toBeUndefined();
      expect(await objectExists(key!)).toBe(false);
      await expect(ctx.documents.delete(second.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ctx.documents.delete('not-a-uuid')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });
});
