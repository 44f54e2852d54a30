import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import {
  builtinMigrationsFolder,
  failedMigrationOf,
  loadMigrationFiles,
  migrationFailed,
  migrationSetChecksum,
  type SqlMigrationFile,
} from '../../src/migrations/sql-migrations.js';
import { rejectionCode } from '../support/errors.js';
import { repoRoot as repo } from '../support/spawn.js';
import { useTempFolders } from '../support/temp-folders.js';

const folderWith = useTempFolders('tenantdb-files');

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('migration files', () => {
  it('finds the shipped folders in the package', () => {
    expect(builtinMigrationsFolder('main')).toBe(path.join(repo, 'migrations', 'main'));
    expect(builtinMigrationsFolder('tenant')).toBe(path.join(repo, 'migrations', 'tenant'));
    expect(existsSync(path.join(builtinMigrationsFolder('main'), '0001_initial.sql'))).toBe(true);
    expect(existsSync(path.join(builtinMigrationsFolder('tenant'), '0001_initial.sql'))).toBe(true);
  });

  it('lists the built-in ones first, then each host folder in name order, pairing down files', async () => {
    const first = await folderWith({
      '0010_b.sql': 'select 10;',
      '0002_a.sql': 'select 2;',
      '0002_a.down.sql': 'select -2;',
      'notes.txt': 'ignored',
    });
    const second = await folderWith({ '0001_z.sql': 'select 1;' });
    const files = await loadMigrationFiles('main', [first, second]);
    const builtIn = ['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs'];
    expect(files.map((f) => f.name)).toEqual([...builtIn, '0002_a', '0010_b', '0001_z']);
    expect(files[0]!.path).toBe(path.join(repo, 'migrations', 'main', '0001_initial.sql'));
    expect(files[builtIn.length]).toEqual({
      name: '0002_a',
      path: path.join(first, '0002_a.sql'),
      downPath: path.join(first, '0002_a.down.sql'),
      checksum: sha256('select 2;'),
    });
    expect(files[builtIn.length + 1]!.downPath).toBeUndefined();
  });

  it('ignores line-ending differences in checksums', async () => {
    const lf = await folderWith({ '0002_x.sql': 'select 1;\nselect 2;\n' });
    const crlf = await folderWith({ '0002_x.sql': 'select 1;\r\nselect 2;\r\n' });
    const [a, b] = await Promise.all([loadMigrationFiles('tenant', [lf]), loadMigrationFiles('tenant', [crlf])]);
    expect(a[1]!.checksum).toBe(b[1]!.checksum);
  });

  it('refuses duplicate names, badly named files, orphan down files and missing folders', async () => {
    const a = await folderWith({ '0002_same.sql': 'select 1;' });
    const b = await folderWith({ '0002_same.sql': 'select 2;' });
    expect(await rejectionCode(loadMigrationFiles('main', [a, b]))).toBe('VALIDATION');
    // A host file may not reuse a built-in name either.
    expect(await rejectionCode(loadMigrationFiles('main', [await folderWith({ '0001_initial.sql': 'select 1;' })]))).toBe('VALIDATION');
    expect(await rejectionCode(loadMigrationFiles('main', [await folderWith({ 'create users.sql': 'select 1;' })]))).toBe('VALIDATION');
    expect(await rejectionCode(loadMigrationFiles('main', [await folderWith({ '0002_x.down.sql': 'select 1;' })]))).toBe('VALIDATION');
    expect(await rejectionCode(loadMigrationFiles('main', [path.join(os.tmpdir(), 'tenantdb-no-such-folder')]))).toBe('VALIDATION');
  });

  it('checksums a whole set: any change of name, content or order changes it', () => {
    const f = (name: string, checksum: string): SqlMigrationFile => ({ name, path: `/m/${name}.sql`, checksum });
    const base = migrationSetChecksum([f('0001_a', 'x'), f('0002_b', 'y')]);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(migrationSetChecksum([f('0001_a', 'x'), f('0002_b', 'y')])).toBe(base);
    expect(migrationSetChecksum([f('0001_a', 'x'), f('0002_b', 'z')])).not.toBe(base);
    expect(migrationSetChecksum([f('0001_a', 'x'), f('0002_c', 'y')])).not.toBe(base);
    expect(migrationSetChecksum([f('0002_b', 'y'), f('0001_a', 'x')])).not.toBe(base);
    expect(migrationSetChecksum([f('0001_a', 'x')])).not.toBe(base);
  });

  it('MIGRATION_FAILED errors carry the name of the migration at fault', () => {
    const cause = new Error('boom');
    const err = migrationFailed('0002_b', 'migration 0002_b failed', cause);
    expect(err).toBeInstanceOf(TenantDbError);
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(err.cause).toBe(cause);
    expect(err.migration).toBe('0002_b');
    expect(failedMigrationOf(err)).toBe('0002_b');
    expect(failedMigrationOf(migrationFailed(undefined, 'no connection'))).toBeNull();
    expect(failedMigrationOf(new Error('x'))).toBeNull();
  });
});
