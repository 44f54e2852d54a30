import { afterAll, describe, expect, it } from 'vitest';
import { createPlatform, type Platform } from '../../src/index.js';
import { adminQuery, databaseExists, dbUrl, dropPlatformDatabases, uniqueName, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
const extraDatabases: string[] = [];
const extraPlatforms: Platform[] = [];

afterAll(async () => {
  await Promise.allSettled(extraPlatforms.map((p) => p.close()));
  for (const db of extraDatabases) await dropPlatformDatabases(db);
});

/** A platform on a main database of the given name (cleaned up after the file). */
function platformOn(database: string): Platform {
  extraDatabases.push(database);
  const platform = createPlatform(env.options({ mainUrl: dbUrl(database) }));
  extraPlatforms.push(platform);
  return platform;
}

async function appliedMigrations(database: string): Promise<string[]> {
  const { rows } = await adminQuery<{ name: string }>('SELECT name FROM tenantdb_migrations ORDER BY name', [], database);
  return rows.map((r) => r.name);
}

describe('platform.init()', () => {
  it('creates the main database when it is missing and migrates it', async () => {
    expect(await databaseExists(env.mainDb)).toBe(false);
    const platform = env.platform();
    await platform.init();
    expect(await databaseExists(env.mainDb)).toBe(true);
    expect(await appliedMigrations(env.mainDb)).toEqual(['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs']);
    expect(await platform.migrations.main.pending()).toEqual([]);
  });

  it('is idempotent, in one platform and across platforms', async () => {
    const platform = env.platform();
    await platform.init();
    await platform.init();
    await env.platform().init();
    expect(await appliedMigrations(env.mainDb)).toEqual(['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs']);
  });

  it('lets services work without init() once the schema exists', async () => {
    const fresh = env.platform();
    expect(await fresh.users.list()).toEqual({ items: [], nextCursor: null });
  });

  it('succeeds in two platforms that call it at once on a database that does not exist yet', async () => {
    const name = uniqueName('tdbt_init');
    const created: string[] = [];
    const noop = (): void => {};
    const logger = { debug: noop, warn: noop, error: noop, info: (_: unknown, msg?: string) => void created.push(msg ?? '') };
    extraDatabases.push(name);
    const [a, b] = [0, 1].map(() => createPlatform(env.options({ mainUrl: dbUrl(name), logger })));
    extraPlatforms.push(a!, b!);
    await Promise.all([a!.init(), b!.init()]);
    expect(created.filter((m) => m === 'created the main database')).toHaveLength(1);
    expect(await appliedMigrations(name)).toEqual(['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs']);
    expect(await a!.migrations.main.pending()).toEqual([]);
  });

  it('quotes the main database name: mixed case and $ work', async () => {
    const name = `Tdbt_Init$${uniqueName('x')}`;
    const platform = platformOn(name);
    await platform.init();
    expect(await databaseExists(name)).toBe(true);
    expect(await appliedMigrations(name)).toEqual(['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs']);
  });

  it('refuses a main database name it cannot trust: VALIDATION, nothing created', async () => {
    const hyphen = uniqueName('tdbt-bad');
    expect(await rejectionCode(platformOn(hyphen).init())).toBe('VALIDATION');
    expect(await databaseExists(hyphen)).toBe(false);
    const long = `tdbt_${'x'.repeat(59)}`; // 64 bytes
    expect(await rejectionCode(platformOn(long).init())).toBe('VALIDATION');
  });

  it('rejects with CLOSED once the platform is closed', async () => {
    const platform = env.platform();
    await platform.close();
    expect(await rejectionCode(platform.init())).toBe('CLOSED');
    expect(await rejectionCode(platform.migrations.main.pending())).toBe('CLOSED');
  });
});
