import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, User } from '../../src/index.js';
import { adminQuery, databaseExists, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let platform: Platform;
let owner: User;

async function tenantRows(): Promise<number> {
  const { rows } = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM tenants', [], env.mainDb);
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  platform = await env.initPlatform();
  owner = await createTestUser(platform, 'Olga', 'Owner');
});

describe('tenants.create: names', () => {
  it.each([
    ['Latin with quotes', `O'Brien "Quoted" & Sons; DROP TABLE users; --`, /^tenant_o_brien_quoted_sons_drop_table_users_[0-9a-f]{8}$/],
    ['accents and Cyrillic', 'Café Ünïcode Привет 42', /^tenant_caf_n_code_42_[0-9a-f]{8}$/],
    ['CJK only', '日本語の会社', /^tenant_[0-9a-f]{8}$/],
    ['emoji only', '🚀🚀', /^tenant_[0-9a-f]{8}$/],
    ['backslashes and dollar quotes', 'a\\b $$x$$ `c`', /^tenant_a_b_x_c_[0-9a-f]{8}$/],
  ])('%s: stored unchanged, database name safe', async (_label, name, shape) => {
    const tenant = await platform.tenants.create({ name });
    expect(tenant.name).toBe(name);
    expect(tenant.databaseName).toMatch(shape);
    expect(tenant.databaseName.endsWith(tenant.id.replace(/-/g, '').slice(0, 8))).toBe(true);
    expect(tenant).toMatchObject({ server: 'default', isActive: true, status: 'ready', createdBy: null });
    expect(await databaseExists(tenant.databaseName)).toBe(true);
    expect((await platform.tenants.get(tenant.id)).name).toBe(name);
  });

  it('cuts the slug so the whole database name fits 63 bytes', async () => {
    const tenant = await platform.tenants.create({ name: `${'Long name '.repeat(25)}end` });
    expect(Buffer.byteLength(tenant.databaseName)).toBe(63);
    const slug = 'long_name_'.repeat(5).slice(0, 47);
    expect(tenant.databaseName).toBe(`tenant_${slug}_${tenant.id.slice(0, 8)}`);
    expect(await databaseExists(tenant.databaseName)).toBe(true);
  });

  it('accepts 255 characters of any script (astral ones count once)', async () => {
    const name = '😀'.repeat(255);
    const tenant = await platform.tenants.create({ name });
    expect(tenant.name).toBe(name);
    expect(tenant.databaseName).toMatch(/^tenant_[0-9a-f]{8}$/);
  });

  it.each([
    ['empty', ''],
    ['only spaces', '   '],
    ['256 characters', 'x'.repeat(256)],
    ['a NUL', 'a\u0000b'],
    ['a newline', 'a\nb'],
    ['a DEL', 'a\u007fb'],
    ['not a string', 42 as unknown as string],
  ])('%s → VALIDATION, nothing created', async (_label, name) => {
    const before = await tenantRows();
    expect(await rejectionCode(platform.tenants.create({ name }))).toBe('VALIDATION');
    expect(await tenantRows()).toBe(before);
  });

  it.each([['eu9'], ['constructor'], ['__proto__'], ['toString'], [42 as unknown as string]])(
    'an unknown server (%s) → VALIDATION, nothing created',
    async (server) => {
      const before = await tenantRows();
      expect(await rejectionCode(platform.tenants.create({ name: 'Nowhere', server }))).toBe('VALIDATION');
      expect(await tenantRows()).toBe(before);
    },
  );
});

describe('tenants.create: the creator', () => {
  it('becomes the admin of the new tenant', async () => {
    const tenant = await platform.tenants.create({ name: 'Owned', createdBy: owner.id });
    expect(tenant.createdBy).toBe(owner.id);
    const members = await platform.memberships.listMembers(tenant.id);
    expect(members.map((m) => [m.user.id, m.role])).toEqual([[owner.id, 'admin']]);
    const role = await platform.withTenant(tenant, (ctx) => ctx.role, { userId: owner.id });
    expect(role).toBe('admin');
  });

  it.each([
    ['an unknown user id', randomUUID()],
    ['not a user id at all', 'somebody'],
  ])('%s → NOT_FOUND, and no row nor database is left', async (_label, createdBy) => {
    const tag = `ghost_${randomUUID().slice(0, 8)}`;
    const before = await tenantRows();
    expect(await rejectionCode(platform.tenants.create({ name: tag, createdBy }))).toBe('NOT_FOUND');
    expect(await tenantRows()).toBe(before);
    const { rowCount } = await adminQuery('SELECT 1 FROM pg_database WHERE datname LIKE $1', [`tenant_${tag}_%`]);
    expect(rowCount).toBe(0);
  });
});

describe('tenants.create: in parallel', () => {
  it('ten parallel creates all succeed, each with its own ready database', async () => {
    const tenants = await Promise.all(
      Array.from({ length: 10 }, (_, i) => platform.tenants.create({ name: `Parallel ${i}`, createdBy: owner.id })),
    );
    expect(new Set(tenants.map((t) => t.id)).size).toBe(10);
    expect(new Set(tenants.map((t) => t.databaseName)).size).toBe(10);
    const names = tenants.map((t) => t.databaseName);
    const { rows } = await adminQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
    expect(rows.map((r) => r.datname).sort()).toEqual([...names].sort());
    const registry = await adminQuery<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM tenants WHERE id = ANY($1) GROUP BY status',
      [tenants.map((t) => t.id)],
      env.mainDb,
    );
    expect(registry.rows).toEqual([{ status: 'ready', n: '10' }]);
    // Each is usable and has the tenant schema.
    const tables = await Promise.all(
      tenants.map((t) => platform.withTenant(t, async (ctx) => (await ctx.query("SELECT to_regclass('documents') AS t")).rows[0]!.t)),
    );
    expect(tables).toEqual(Array(10).fill('documents'));
  });
});
