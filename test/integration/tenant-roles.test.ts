import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { createPlatform } from '../../src/index.js';
import { decryptSecret } from '../../src/tenants/credentials.js';
import { adminQuery, dbUrl, useTestPlatform } from '../support/env.js';
import { rejectionCode, thrownCode } from '../support/errors.js';

const KEY = randomBytes(32);

describe('tenantRoles: a login role per tenant database', () => {
  const env = useTestPlatform({ tenantRoles: true, credentialsKey: KEY.toString('base64'), tenantSpares: 1, tenantCacheMs: 0 });
  let platform: Platform;
  let a: Tenant;
  let b: Tenant;

  /** The role password the main database keeps for a tenant, decrypted as the platform does. */
  async function passwordOf(t: Tenant): Promise<string> {
    const { rows } = await adminQuery<{ secret: string }>('SELECT secret FROM tenant_credentials WHERE tenant_id = $1', [t.id], env.mainDb);
    return decryptSecret(KEY, t.id, rows[0]!.secret);
  }

  /** Connects as `user` to `database`; the error when refused. */
  async function connectAs(user: string, password: string, database: string): Promise<Error | undefined> {
    const url = new URL(dbUrl(database));
    url.username = user;
    url.password = password;
    const client = new pg.Client({ connectionString: url.toString() });
    try {
      await client.connect();
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      await client.end().catch(() => {});
    }
  }

  beforeAll(async () => {
    platform = await env.initPlatform();
    a = await platform.tenants.create({ name: 'Role A' });
    b = await platform.tenants.create({ name: 'Role B' });
  });

  it("reaches each tenant as that tenant's own role, which has no rights beyond logging in", async () => {
    const user = await platform.withTenant(a, async (ctx) => (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    expect(user).toBe(a.databaseName);
    const { rows } = await adminQuery<Record<string, boolean>>(
      'SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1',
      [a.databaseName],
    );
    expect(rows).toEqual([
      { rolcanlogin: true, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false, rolbypassrls: false },
    ]);
    // The documents API works through it: its tables are the group's to use.
    const doc = await platform.withTenant(a, (ctx) =>
      ctx.documents.upload({ filename: 'r.txt', body: 'as the role', userId: '00000000-0000-4000-8000-000000000001' }),
    );
    expect(doc.filename).toBe('r.txt');
  });

  it('revokes CONNECT from PUBLIC on every tenant database (a spare renamed included)', async () => {
    for (const t of [a, b]) {
      const { rows } = await adminQuery<{ public_connect: boolean; own: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) x
                         WHERE d.datname = $1 AND x.grantee = 0 AND x.privilege_type = 'CONNECT') AS public_connect,
                has_database_privilege($1, $1, 'CONNECT') AS own`,
        [t.databaseName],
      );
      expect(rows[0]).toEqual({ public_connect: false, own: true });
    }
  });

  it("keeps a random password of at least 16 characters, encrypted: tenant A's role cannot enter B's database nor the main one", async () => {
    const password = await passwordOf(a);
    expect(password.length).toBeGreaterThanOrEqual(16);
    const { rows } = await adminQuery<{ secret: string }>('SELECT secret FROM tenant_credentials WHERE tenant_id = $1', [a.id], env.mainDb);
    expect(rows[0]!.secret).not.toContain(password);
    // Bound to its tenant: the same ciphertext does not decrypt as another tenant's.
    expect(thrownCode(() => decryptSecret(KEY, b.id, rows[0]!.secret))).toBe('DATABASE');

    expect(await connectAs(a.databaseName, password, a.databaseName)).toBeUndefined();
    expect(await connectAs(a.databaseName, password, b.databaseName)).toMatchObject({ code: '42501' });
    expect(await connectAs(a.databaseName, password, env.mainDb)).toMatchObject({ code: '42501' });
  });

  it("gives a tenant's SQL no way to the main database", async () => {
    // (ctx.query rejects with the driver's error as it is.)
    await expect(platform.withTenant(a, (ctx) => ctx.query('SELECT * FROM tenants'))).rejects.toMatchObject({ code: '42P01' });
    // No extension reaches other databases: refused (42501), or not even installed on this server.
    const extension = await platform.withTenant(a, (ctx) => ctx.query('CREATE EXTENSION dblink')).catch((err: { code?: string }) => err.code);
    expect(['42501', '58P01', '0A000']).toContain(extension);
    // Nor may it rewrite its migrations' bookkeeping, or create tables of its own.
    await expect(platform.withTenant(a, (ctx) => ctx.query('DELETE FROM tenantdb_migrations'))).rejects.toMatchObject({ code: '42501' });
    await expect(platform.withTenant(a, (ctx) => ctx.query('CREATE TABLE mine (id int)'))).rejects.toMatchObject({ code: '42501' });
  });

  it('rotateCredentials: a new password, the old one refused, the tenant reachable as before', async () => {
    const before = await passwordOf(a);
    await platform.tenants.rotateCredentials(a.id);
    const after = await passwordOf(a);
    expect(after).not.toBe(before);
    expect(await connectAs(a.databaseName, before, a.databaseName)).toMatchObject({ code: '28P01' });
    expect(await connectAs(a.databaseName, after, a.databaseName)).toBeUndefined();
    // A fresh platform (another process) and this one both get in with it.
    const other = await env.initPlatform();
    for (const p of [platform, other]) {
      expect(await p.withTenant(a, async (ctx) => (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u)).toBe(
        a.databaseName,
      );
    }
    expect(await rejectionCode(platform.tenants.rotateCredentials('00000000-0000-4000-8000-000000000000'))).toBe('NOT_FOUND');
  });

  it('drop removes the role with the database', async () => {
    const t = await platform.tenants.create({ name: 'Role dropped' });
    await platform.tenants.drop(t.id);
    const { rows } = await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [t.databaseName]);
    expect(rows).toEqual([]);
  });
});

describe('tenantRoles: a tenant made before the option was on', () => {
  const env = useTestPlatform({ tenantSpares: 0 });

  it('keeps the shared login until rotateCredentials gives it a role', async () => {
    const plain = await env.initPlatform();
    const old = await plain.tenants.create({ name: 'Before roles' });
    await plain.close();
    const platform = await env.initPlatform({ tenantRoles: true, credentialsKey: KEY.toString('hex'), tenantCacheMs: 0 });
    const currentUser = async (): Promise<string> =>
      platform.withTenant(old, async (ctx) => (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    expect(await currentUser()).toBe('postgres');
    await platform.tenants.rotateCredentials(old.id);
    expect(await currentUser()).toBe(old.databaseName);
    // Its tables are usable through the role.
    expect(await platform.withTenant(old, async (ctx) => (await ctx.query('SELECT count(*) FROM documents')).rowCount)).toBe(1);
  });
});

describe('tenantRoles: options', () => {
  const base = { mainUrl: dbUrl('unused'), s3: { bucket: 'unused' } };

  it('needs a credentialsKey of 32 bytes, and never repeats a bad one', () => {
    expect(thrownCode(() => createPlatform({ ...base, tenantRoles: true }))).toBe('VALIDATION');
    for (const bad of ['short', randomBytes(31).toString('hex'), randomBytes(33).toString('base64'), Buffer.alloc(16)]) {
      let message = '';
      try {
        createPlatform({ ...base, tenantRoles: true, credentialsKey: bad });
      } catch (err) {
        expect(err).toMatchObject({ code: 'VALIDATION' });
        message = (err as Error).message;
      }
      expect(message).toMatch(/credentialsKey/);
      if (typeof bad === 'string') expect(message).not.toContain(bad);
    }
    for (const good of [KEY, KEY.toString('hex'), KEY.toString('base64'), KEY.toString('base64url')]) {
      expect(() => createPlatform({ ...base, tenantRoles: true, credentialsKey: good })).not.toThrow();
    }
  });

  it('rotateCredentials without tenantRoles is VALIDATION', async () => {
    const platform = createPlatform(base);
    expect(await rejectionCode(platform.tenants.rotateCredentials('00000000-0000-4000-8000-000000000000'))).toBe('VALIDATION');
    await platform.close();
  });
});
