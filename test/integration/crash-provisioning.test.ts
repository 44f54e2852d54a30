import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { PlatformOptions, StepName } from '../../src/index.js';
import { crashAt, expectConsistent, outcomeOf } from '../support/crash.js';
import { adminQuery, databaseExists, listKeys, uniqueName, useTestPlatform, useTestS3Client } from '../support/env.js';
import { useTempFolders } from '../support/temp-folders.js';

// A process killed with SIGKILL at each step of provisioning, of a spare's life, of a template build and of a
// drop; after it, a restart's init() must leave every tenant ready (its database whole) or gone.
const BUILT_IN = ['0001_initial'];
const folderWith = useTempFolders('tenantdb-crash');

/** Restarts: a new platform's init(), as a host app's next process does. */
async function restart(env: ReturnType<typeof useTestPlatform>, extra: Partial<PlatformOptions> = {}): Promise<void> {
  const platform = env.platform(extra);
  await platform.init();
  // close() waits for the spares init() tops up in the background.
  await platform.close();
}

describe('killed while provisioning a tenant', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  const tag = uniqueName('crash');

  it.each<[StepName, 'ready' | 'gone']>([
    ['create:locked', 'gone'],
    ['create:registered', 'gone'],
    ['create:cloned', 'ready'],
    ['create:ready', 'ready'],
  ])('at %s: after a restart the tenant is %s', async (at, expected) => {
    await restart(env);
    const message = await crashAt({ options: env.options(), action: 'create', at, name: `${tag} ${at}` });
    await restart(env);
    expect(await outcomeOf(env.mainDb, message)).toBe(expected);
    await expectConsistent(env.mainDb, { migrations: BUILT_IN, namePrefix: `tenant_${tag}` });
  });
});

describe('killed while provisioning a tenant with its own role (tenantRoles)', () => {
  const roles = { tenantRoles: true, credentialsKey: randomBytes(32).toString('hex') };
  const env = useTestPlatform({ tenantSpares: 0, ...roles });
  const tag = uniqueName('crash');
  const currentUser = async (tenantId: string): Promise<string> => {
    const platform = await env.initPlatform();
    try {
      return await platform.withTenant(tenantId, async (ctx) => (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    } finally {
      await platform.close();
    }
  };

  it.each<StepName>(['create:cloned', 'create:role'])('at %s: after a restart the tenant is ready, reached as its role', async (at) => {
    await restart(env);
    const message = await crashAt({ options: env.options(), action: 'create', at, name: `${tag} ${at}` });
    await restart(env);
    expect(await outcomeOf(env.mainDb, message)).toBe('ready');
    expect(await currentUser(message.tenantId!)).toBe(message.databaseName);
    await expectConsistent(env.mainDb, { migrations: BUILT_IN, namePrefix: `tenant_${tag}` });
  });

  it('at credentials:next (a rotation half way): a restart finishes it, and the tenant is reachable', async () => {
    const platform = await env.initPlatform();
    const tenant = await platform.tenants.create({ name: `${tag} rotated` });
    await platform.close();
    await crashAt({ options: env.options(), action: 'rotate', at: 'credentials:next', tenant: tenant.id });
    await restart(env);
    const { rows } = await adminQuery('SELECT 1 FROM tenant_credentials WHERE tenant_id = $1 AND next_secret IS NULL', [tenant.id], env.mainDb);
    expect(rows).toHaveLength(1);
    expect(await currentUser(tenant.id)).toBe(tenant.databaseName);
  });
});

describe('killed in the life of a spare', () => {
  const env = useTestPlatform();
  const tag = uniqueName('crash');
  const spares = async (): Promise<number> =>
    (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM tenant_spares', [], env.mainDb)).rows[0]!.n;

  it('at spare:claimed (its row taken, not yet renamed): the tenant is gone, the spare database too', async () => {
    await restart(env, { tenantSpares: 1 });
    expect(await spares()).toBe(1);
    const message = await crashAt({ options: env.options({ tenantSpares: 1 }), action: 'create', at: 'spare:claimed', name: `${tag} claimed` });
    await restart(env, { tenantSpares: 1 });
    expect(await databaseExists(message.databaseName!)).toBe(false);
    await expectConsistent(env.mainDb, { migrations: BUILT_IN, namePrefix: `tenant_${tag}` });
  });

  it.each<StepName>(['spare:registered', 'spare:cloned'])('at %s (a refill): tenants stay whole and creating one works', async (at) => {
    // One more spare than there are rows: init()'s refill makes one, and dies making it.
    const options = env.options({ tenantSpares: (await spares()) + 1 });
    await crashAt({ options, action: 'init', at });
    await restart(env, { tenantSpares: 1 });
    const platform = await env.initPlatform({ tenantSpares: 0 });
    const tenant = await platform.tenants.create({ name: `${tag} after ${at}` });
    expect(await platform.withTenant(tenant, async (ctx) => (await ctx.query('SELECT 1 AS one')).rows[0])).toEqual({ one: 1 });
    await platform.close();
    await expectConsistent(env.mainDb, { migrations: BUILT_IN, namePrefix: `tenant_${tag}` });
  });
});

describe('killed while building a template', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  const tag = uniqueName('crash');

  it.each<StepName>(['template:created', 'template:migrated', 'template:closed', 'template:registered'])(
    'at %s: a restart builds it whole, and tenants made from it are whole',
    async (at) => {
      // A tenant from the template before, so that tenants at an older migration set are checked too.
      const before = await env.initPlatform();
      await before.tenants.create({ name: `${tag} before ${at}` });
      await before.close();
      // A new migration changes the template's checksum: init() builds a new one, and dies on the way.
      const table = `crash_${at.replace(':', '_')}`;
      const folder = await folderWith({ '0200_crash.sql': `CREATE TABLE ${table} (id int);` });
      const options = { tenantMigrations: [folder] };
      await crashAt({ options: env.options(options), action: 'init', at });
      const platform = await env.initPlatform(options);
      const tenant = await platform.tenants.create({ name: `${tag} after ${at}` });
      const found = await platform.withTenant(tenant, (ctx) => ctx.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]));
      expect(found.rows[0]!.t).toBe(table);
      await platform.close();
      await expectConsistent(env.mainDb, { migrations: [...BUILT_IN, '0200_crash'], namePrefix: `tenant_${tag}` });
      // Every template database of this platform's is registered and complete.
      const { rows } = await adminQuery<{ database_name: string }>('SELECT database_name FROM tenant_templates', [], env.mainDb);
      const owner = rows[0]!.database_name.replace(/_[0-9a-f]{8}$/, '_');
      const { rows: databases } = await adminQuery<{ datname: string; datallowconn: boolean }>(
        'SELECT datname, datallowconn FROM pg_database WHERE starts_with(datname, $1)',
        [owner],
      );
      const registered = new Set(rows.map((r) => r.database_name));
      const states = databases.map((d) => ({ name: d.datname, registered: registered.has(d.datname), open: d.datallowconn }));
      expect(states).toEqual(databases.map((d) => ({ name: d.datname, registered: true, open: false })));
    },
  );
});

describe('killed while dropping a tenant', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  const s3 = useTestS3Client();
  const tag = uniqueName('crash');

  it.each<StepName>(['drop:marked', 'drop:database', 'drop:objects'])('at %s: a restart finishes the drop', async (at) => {
    const platform = await env.initPlatform();
    const tenant = await platform.tenants.create({ name: `${tag} ${at}` });
    await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: 'doomed', userId: randomUUID() }));
    await platform.close();
    await crashAt({ options: env.options(), action: 'drop', at, tenant: tenant.id });
    await restart(env);
    const { rows } = await adminQuery('SELECT 1 FROM tenants WHERE id = $1', [tenant.id], env.mainDb);
    expect(rows).toEqual([]);
    expect(await databaseExists(tenant.databaseName)).toBe(false);
    expect(await listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${tenant.id}/`)).toEqual([]);
  });
});
