import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant, TenantContext, User } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { createTestUser } from '../support/users.js';

describe('documents: roles', () => {
  const env = useTestPlatform();
  let platform: Platform;
  let tenant: Tenant;
  let admin: User;
  let user: User;
  let other: User;
  let viewer: User;
  const as = <T>(who: User, fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn, { userId: who.id });

  beforeAll(async () => {
    platform = await env.initPlatform();
    const make = (name: string): Promise<User> => createTestUser(platform, name, 'Role');
    [admin, user, other, viewer] = await Promise.all([make('admin'), make('user'), make('other'), make('viewer')]);
    tenant = await platform.tenants.create({ name: 'Roles', createdBy: admin.id });
    await platform.memberships.add(tenant.id, user.id, 'user');
    await platform.memberships.add(tenant.id, other.id, 'user');
    await platform.memberships.add(tenant.id, viewer.id, 'viewer');
  });
  afterAll(() => platform.close());

  it('lets a viewer read but not upload, rename or delete', async () => {
    const doc = await as(user, (ctx) => ctx.documents.upload({ filename: 'for-viewer.txt', body: 'read me' }));
    await as(viewer, async (ctx) => {
      expect(ctx.role).toBe('viewer');
      expect(await ctx.documents.get(doc.id)).toEqual(doc);
      expect((await ctx.documents.list({})).items.map((d) => d.id)).toContain(doc.id);
      const { body } = await ctx.documents.download(doc.id);
      body.destroy();
      expect(await ctx.documents.url(doc.id)).toMatch(/^http/);
      await expect(ctx.documents.upload({ filename: 'v.txt', body: 'x' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(ctx.documents.upload({ filename: 'v.txt', body: 'x', userId: viewer.id })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(ctx.documents.rename(doc.id, 'renamed.txt')).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(ctx.documents.delete(doc.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    });
    expect(await as(user, (ctx) => ctx.documents.get(doc.id))).toEqual(doc);
    const rows = await platform.withTenant(tenant, (ctx) => ctx.query("SELECT 1 FROM documents WHERE filename = 'v.txt'"));
    expect(rows.rowCount).toBe(0);
  });

  it("lets a user upload and rename or delete their own documents, not someone else's", async () => {
    const mine = await as(user, (ctx) => ctx.documents.upload({ filename: 'mine.txt', body: 'mine' }));
    expect(mine).toMatchObject({ userId: user.id, createdBy: user.id });
    const theirs = await as(other, (ctx) => ctx.documents.upload({ filename: 'theirs.txt', body: 'theirs' }));
    await as(user, async (ctx) => {
      expect((await ctx.documents.rename(mine.id, 'mine-renamed.txt')).filename).toBe('mine-renamed.txt');
      await expect(ctx.documents.rename(theirs.id, 'grabbed.txt')).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(ctx.documents.delete(theirs.id)).rejects.toMatchObject({ code: 'FORBIDDEN' });
      // Nor upload in someone else's name.
      await expect(ctx.documents.upload({ filename: 'forged.txt', body: 'x', userId: other.id })).rejects.toMatchObject({
        code: 'FORBIDDEN',
      });
      // Reading others' documents is allowed.
      expect((await ctx.documents.get(theirs.id)).filename).toBe('theirs.txt');
      await ctx.documents.delete(mine.id);
      await expect(ctx.documents.get(mine.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
    expect(await as(other, (ctx) => ctx.documents.get(theirs.id))).toEqual(theirs);
  });

  it("lets an admin do all of it on anyone's documents", async () => {
    const theirs = await as(other, (ctx) => ctx.documents.upload({ filename: 'admin-target.txt', body: 'target' }));
    await as(admin, async (ctx) => {
      expect(ctx.role).toBe('admin');
      const renamed = await ctx.documents.rename(theirs.id, 'by-admin.txt');
      expect(renamed).toMatchObject({ filename: 'by-admin.txt', userId: other.id });
      const onBehalf = await ctx.documents.upload({ filename: 'for-other.txt', body: 'for other', userId: other.id });
      expect(onBehalf).toMatchObject({ userId: other.id, createdBy: admin.id });
      await ctx.documents.delete(theirs.id);
      await ctx.documents.delete(onBehalf.id);
      await expect(ctx.documents.get(theirs.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  it('needs a userId for an upload in a trusted scope', async () => {
    await platform.withTenant(tenant, async (ctx) => {
      expect(ctx.role).toBeUndefined();
      await expect(ctx.documents.upload({ filename: 'trusted.txt', body: 'x' })).rejects.toMatchObject({ code: 'VALIDATION' });
      const doc = await ctx.documents.upload({ filename: 'trusted.txt', body: 'x', userId: user.id });
      expect(doc).toMatchObject({ userId: user.id, createdBy: user.id });
    });
  });
});
