import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { failedMigrationOf } from '../../src/migrations/sql-migrations.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';
import { useTempFolders } from '../support/temp-folders.js';

const folderWith = useTempFolders('tenantdb-main-mig');
/** The library's own main migrations, which run before the host's. */
const BUILT_IN = ['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs'];

describe('platform.migrations.main', () => {
  const env = useTestPlatform();
  let hostFolder: string;

  beforeAll(async () => {
    // The database exists, empty: migrations.main works on it without init().
    await adminQuery(`CREATE DATABASE "${env.mainDb}"`);
    hostFolder = await folderWith({
      '0001_app_orders.sql': 'CREATE TABLE app_orders (id serial PRIMARY KEY, user_id uuid REFERENCES users (id));',
      '0001_app_orders.down.sql': 'DROP TABLE app_orders;',
      '0002_app_order_notes.sql': "ALTER TABLE app_orders ADD COLUMN note text NOT NULL DEFAULT '';",
      '0002_app_order_notes.down.sql': 'ALTER TABLE app_orders DROP COLUMN note;',
    });
  });

  async function applied(): Promise<string[]> {
    const { rows } = await adminQuery<{ name: string }>('SELECT name FROM tenantdb_migrations ORDER BY applied_at, name', [], env.mainDb);
    return rows.map((r) => r.name);
  }

  it('runs the host migrations after the built-in ones', async () => {
    const platform = env.platform({ mainMigrations: [hostFolder] });
    const pending = await platform.migrations.main.pending();
    expect(pending.map((m) => m.name)).toEqual([...BUILT_IN, '0001_app_orders', '0002_app_order_notes']);
    expect(pending[BUILT_IN.length]!.path).toBe(path.join(hostFolder, '0001_app_orders.sql'));
    expect(await platform.migrations.main.executed()).toEqual([]);
  });

  it('applies each migration once when two platforms migrate the same database at once', async () => {
    const a = env.platform({ mainMigrations: [hostFolder] });
    const b = env.platform({ mainMigrations: [hostFolder] });
    const [fromA, fromB] = await Promise.all([a.migrations.main.up(), b.migrations.main.up()]);
    expect([...fromA, ...fromB].map((m) => m.name).sort()).toEqual(
      [...BUILT_IN, '0001_app_orders', '0002_app_order_notes'].sort(),
    );
    // Applied in order: the host's after the built-in ones (its foreign key needs users).
    expect(await applied()).toEqual([...BUILT_IN, '0001_app_orders', '0002_app_order_notes']);
    expect(await a.migrations.main.pending()).toEqual([]);
    expect((await b.migrations.main.executed()).map((m) => m.name)).toEqual([...BUILT_IN, '0001_app_orders', '0002_app_order_notes']);
  });

  it('down({ to }) reverts host migrations with their .down.sql files', async () => {
    const platform = env.platform({ mainMigrations: [hostFolder] });
    expect((await platform.migrations.main.down()).map((m) => m.name)).toEqual(['0002_app_order_notes']);
    expect((await platform.migrations.main.down({ to: '0001_app_orders' })).map((m) => m.name)).toEqual(['0001_app_orders']);
    expect(await applied()).toEqual(BUILT_IN);
    const { rows } = await adminQuery<{ t: string | null }>("SELECT to_regclass('app_orders') AS t", [], env.mainDb);
    expect(rows[0]!.t).toBeNull();
    expect((await platform.migrations.main.up()).map((m) => m.name)).toEqual(['0001_app_orders', '0002_app_order_notes']);
  });

  it('down({ to: 0 }) reverts the host migrations and 0002, then stops at the irreversible initial one', async () => {
    const platform = env.platform({ mainMigrations: [hostFolder] });
    const err = await rejectionOf(platform.migrations.main.down({ to: 0 }));
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(failedMigrationOf(err)).toBe('0001_initial');
    expect(await applied()).toEqual(['0001_initial']);
    // 0002's down turned the check back: a `dropping` status is refused again.
    const { rows } = await adminQuery<{ def: string }>(
      "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'tenants_status_check'",
      [],
      env.mainDb,
    );
    expect(rows[0]!.def).not.toContain('dropping');
    await platform.migrations.main.up();
  });

  it('reports an edited, already-applied host migration and applies nothing', async () => {
    const edited = await folderWith({
      '0001_app_orders.sql': 'CREATE TABLE app_orders (id bigserial PRIMARY KEY);',
      '0003_app_more.sql': 'CREATE TABLE app_more ();',
    });
    const platform = env.platform({ mainMigrations: [edited] });
    const err = await rejectionOf(platform.migrations.main.up());
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(failedMigrationOf(err)).toBe('0001_app_orders');
    expect(err.message).toContain('0001_app_orders');
    const { rows } = await adminQuery<{ t: string | null }>("SELECT to_regclass('app_more') AS t", [], env.mainDb);
    expect(rows[0]!.t).toBeNull();
  });

  it('a host folder that does not exist is VALIDATION', async () => {
    const platform = env.platform({ mainMigrations: [path.join(os.tmpdir(), 'tenantdb-no-such-folder')] });
    expect((await rejectionOf(platform.migrations.main.pending())).code).toBe('VALIDATION');
  });
});
