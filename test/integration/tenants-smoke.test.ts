import { describe, expect, it } from 'vitest';
import { currentTenant } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { createTestUser } from '../support/users.js';

describe('tenants: create → withTenant → upload → drop', () => {
  const env = useTestPlatform();

  it('provisions a tenant from the template and runs code inside it', async () => {
    const platform = await env.initPlatform();
    const user = await createTestUser(platform, 'Ada', 'L');
    const tenant = await platform.tenants.create({ name: 'Acme "Corp"', createdBy: user.id });
    expect(tenant.status).toBe('ready');
    expect(tenant.databaseName).toMatch(/^tenant_acme_corp_[0-9a-f]{8}$/);
    const members = await platform.memberships.listMembers(tenant.id);
    expect(members.map((m) => m.role)).toEqual(['admin']);

    const tables = await platform.withTenant(tenant, async (ctx) => {
      expect(currentTenant()).toBe(ctx);
      const { rows } = await ctx.query<{ t: string }>(
        "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      );
      return rows.map((r) => r.t);
    }, { userId: user.id });
    expect(tables).toEqual(['documents', 'files', 'tenantdb_migrations']);
    expect(currentTenant()).toBeUndefined();

    const doc = await platform.withTenant(tenant.id, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: 'hello' }), { userId: user.id });
    expect(doc).toMatchObject({ filename: 'a.txt', sizeBytes: 5, mimeType: 'text/plain', deduplicated: false });
    const stats = await platform.tenants.stats(tenant.id);
    expect(stats).toMatchObject({ documents: 1, files: 1, storedBytes: 5 });

    await platform.tenants.drop(tenant.id);
    const left = await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [tenant.databaseName]);
    expect(left.rowCount).toBe(0);
    await expect(platform.tenants.get(tenant.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
