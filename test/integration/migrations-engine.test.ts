import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/logger.js';
import {
  clientConnector,
  createSqlUmzug,
  failedMigrationOf,
  loadMigrationFiles,
  type Connector,
  type SqlMigrationFile,
} from '../../src/migrations/sql-migrations.js';
import { adminQuery, dbUrl, dropPlatformDatabases, uniqueName } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';
import { useTempFolders } from '../support/temp-folders.js';

const databases: string[] = [];
const folderWith = useTempFolders('tenantdb-mig');

afterAll(async () => {
  for (const db of databases) await dropPlatformDatabases(db);
});

async function scratchDatabase(): Promise<string> {
  const name = uniqueName('tdbt_mig');
  databases.push(name);
  await adminQuery(`CREATE DATABASE "${name}"`);
  return name;
}

/** Only the files of `dir` (not the built-in ones), as the engine would see them. */
async function filesOf(dir: string): Promise<SqlMigrationFile[]> {
  return (await loadMigrationFiles('main', [dir])).filter((f) => f.path.startsWith(dir));
}

function engine(db: string, files: SqlMigrationFile[], connect: Connector = clientConnector(dbUrl(db))) {
  return createSqlUmzug({ connect, files, family: 'main', logger: silentLogger });
}

async function bookkeeping(db: string): Promise<Array<{ name: string; checksum: string; applied_at: Date }>> {
  const { rows } = await adminQuery<{ name: string; checksum: string; applied_at: Date }>(
    'SELECT name, checksum, applied_at FROM tenantdb_migrations ORDER BY name',
    [],
    db,
  );
  return rows;
}

async function tableExists(db: string, table: string): Promise<boolean> {
  const { rows } = await adminQuery<{ t: string | null }>('SELECT to_regclass($1) AS t', [table], db);
  return rows[0]!.t !== null;
}

let db: string;
beforeEach(async () => {
  db = await scratchDatabase();
});

describe('the SQL migration engine', () => {
  it('applies pending migrations in name order, each with its bookkeeping row and checksum', async () => {
    const dir = await folderWith({
      '0002_second.sql': 'INSERT INTO log (step) VALUES (2);',
      '0001_first.sql': 'CREATE TABLE log (step int); INSERT INTO log (step) VALUES (1);',
      'README.md': 'not a migration',
    });
    const files = await filesOf(dir);
    const umzug = engine(db, files);

    expect((await umzug.pending()).map((m) => m.name)).toEqual(['0001_first', '0002_second']);
    // Read commands do not create the bookkeeping table.
    expect(await tableExists(db, 'tenantdb_migrations')).toBe(false);

    const applied = await umzug.up();
    expect(applied.map((m) => m.name)).toEqual(['0001_first', '0002_second']);
    expect(applied[0]!.path).toBe(path.join(dir, '0001_first.sql'));
    const rows = await bookkeeping(db);
    expect(rows.map((r) => [r.name, r.checksum])).toEqual(files.map((f) => [f.name, f.checksum]));
    expect(rows[0]!.applied_at).toBeInstanceOf(Date);
    const { rows: log } = await adminQuery<{ step: number }>('SELECT step FROM log ORDER BY step', [], db);
    expect(log.map((r) => r.step)).toEqual([1, 2]);

    expect(await umzug.pending()).toEqual([]);
    expect((await umzug.executed()).map((m) => m.name)).toEqual(['0001_first', '0002_second']);
    expect(await umzug.up()).toEqual([]);
  });

  it('up({ to }) stops at the named migration; an unknown name is VALIDATION', async () => {
    const files = await filesOf(
      await folderWith({ '0001_a.sql': 'CREATE TABLE a ();', '0002_b.sql': 'CREATE TABLE b ();', '0003_c.sql': 'CREATE TABLE c ();' }),
    );
    const umzug = engine(db, files);
    expect((await umzug.up({ to: '0002_b' })).map((m) => m.name)).toEqual(['0001_a', '0002_b']);
    expect((await umzug.pending()).map((m) => m.name)).toEqual(['0003_c']);
    expect((await rejectionOf(umzug.up({ to: '0009_nope' }))).code).toBe('VALIDATION');
    expect((await rejectionOf(umzug.down({ to: '0009_nope' }))).code).toBe('VALIDATION');
  });

  it('a failing migration leaves neither its changes nor its bookkeeping row, and names itself', async () => {
    const files = await filesOf(
      await folderWith({
        '0001_ok.sql': 'CREATE TABLE ok ();',
        '0002_bad.sql': 'CREATE TABLE half_done (); SELECT 1 / 0;',
        '0003_later.sql': 'CREATE TABLE later ();',
      }),
    );
    const err = await rejectionOf(engine(db, files).up());
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(failedMigrationOf(err)).toBe('0002_bad');
    expect((err.cause as { code?: string }).code).toBe('22012'); // division_by_zero, from PostgreSQL
    expect(await tableExists(db, 'ok')).toBe(true);
    expect(await tableExists(db, 'half_done')).toBe(false);
    expect(await tableExists(db, 'later')).toBe(false);
    expect((await bookkeeping(db)).map((r) => r.name)).toEqual(['0001_ok']);
    expect((await engine(db, files).pending()).map((m) => m.name)).toEqual(['0002_bad', '0003_later']);
    // The lock was released: the next run on another connection does not wait.
    await adminQuery('SELECT 1', [], db);
    const { rows } = await adminQuery<{ n: string }>(
      "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
      [db],
    );
    expect(Number(rows[0]!.n)).toBe(0);
  });

  it('reports an applied migration whose file changed, and runs nothing', async () => {
    const dir = await folderWith({ '0001_first.sql': 'CREATE TABLE runs (n int); INSERT INTO runs VALUES (1);' });
    await engine(db, await filesOf(dir)).up();

    await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE runs (n int); INSERT INTO runs VALUES (2);');
    await writeFile(path.join(dir, '0002_next.sql'), 'CREATE TABLE next ();');
    const err = await rejectionOf(engine(db, await filesOf(dir)).up());
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(failedMigrationOf(err)).toBe('0001_first');
    const { rows } = await adminQuery<{ n: number }>('SELECT n FROM runs', [], db);
    expect(rows).toEqual([{ n: 1 }]);
    expect(await tableExists(db, 'next')).toBe(false);
    expect((await rejectionOf(engine(db, await filesOf(dir)).down())).code).toBe('MIGRATION_FAILED');
  });

  it('tolerates an applied migration whose file is gone, and applies the new ones', async () => {
    const dir = await folderWith({ '0001_a.sql': 'CREATE TABLE a ();', '0002_b.sql': 'CREATE TABLE b ();' });
    await engine(db, await filesOf(dir)).up();
    await unlink(path.join(dir, '0002_b.sql'));
    await writeFile(path.join(dir, '0003_c.sql'), 'CREATE TABLE c ();');
    const umzug = engine(db, await filesOf(dir));
    expect((await umzug.up()).map((m) => m.name)).toEqual(['0003_c']);
    expect((await umzug.executed()).map((m) => m.name)).toEqual(['0001_a', '0003_c']);
    expect((await bookkeeping(db)).map((r) => r.name)).toEqual(['0001_a', '0002_b', '0003_c']);
  });

  it('down() reverts the last migration and down({ to: 0 }) all of them, with their .down.sql files', async () => {
    const files = await filesOf(
      await folderWith({
        '0001_a.sql': 'CREATE TABLE a ();',
        '0001_a.down.sql': 'DROP TABLE a;',
        '0002_b.sql': 'CREATE TABLE b ();',
        '0002_b.down.sql': 'DROP TABLE b;',
        '0003_c.sql': 'CREATE TABLE c ();',
        '0003_c.down.sql': 'DROP TABLE c;',
      }),
    );
    const umzug = engine(db, files);
    await umzug.up();
    expect((await umzug.down()).map((m) => m.name)).toEqual(['0003_c']);
    expect(await tableExists(db, 'c')).toBe(false);
    expect((await umzug.down({ to: 0 })).map((m) => m.name)).toEqual(['0002_b', '0001_a']);
    expect(await tableExists(db, 'a')).toBe(false);
    expect(await tableExists(db, 'b')).toBe(false);
    expect(await bookkeeping(db)).toEqual([]);
    expect((await umzug.pending()).map((m) => m.name)).toEqual(['0001_a', '0002_b', '0003_c']);
    // And up again: reverted migrations are pending like new ones.
    expect((await umzug.up()).map((m) => m.name)).toEqual(['0001_a', '0002_b', '0003_c']);
  });

  it('a migration without a down file cannot be reverted: MIGRATION_FAILED, nothing changes', async () => {
    const files = await filesOf(await folderWith({ '0001_a.sql': 'CREATE TABLE a ();' }));
    const umzug = engine(db, files);
    await umzug.up();
    const err = await rejectionOf(umzug.down());
    expect(err.code).toBe('MIGRATION_FAILED');
    expect(failedMigrationOf(err)).toBe('0001_a');
    expect(await tableExists(db, 'a')).toBe(true);
    expect((await bookkeeping(db)).map((r) => r.name)).toEqual(['0001_a']);
  });

  it('two migrators of one database at once apply each migration exactly once', async () => {
    const files = await filesOf(
      await folderWith({
        '0001_runs.sql': 'CREATE TABLE runs (migration text);',
        // Slow enough that, without the lock, the second migrator would start it too.
        '0002_slow.sql': "INSERT INTO runs VALUES ('0002'); SELECT pg_sleep(0.3);",
        '0003_more.sql': "INSERT INTO runs VALUES ('0003');",
      }),
    );
    const [a, b] = await Promise.all([engine(db, files).up(), engine(db, files).up()]);
    const applied = [...a, ...b].map((m) => m.name).sort();
    expect(applied).toEqual(['0001_runs', '0002_slow', '0003_more']);
    const { rows } = await adminQuery<{ migration: string }>('SELECT migration FROM runs ORDER BY migration', [], db);
    expect(rows.map((r) => r.migration)).toEqual(['0002', '0003']);
    expect((await bookkeeping(db)).map((r) => r.name)).toEqual(['0001_runs', '0002_slow', '0003_more']);
  });

  it('uses one connection per command and releases it, keeping it when healthy', async () => {
    const files = await filesOf(await folderWith({ '0001_a.sql': 'CREATE TABLE a ();', '0002_bad.sql': 'SELECT 1 / 0;' }));
    const pool = new pg.Pool({ connectionString: dbUrl(db), max: 1 });
    const releases: boolean[] = [];
    const connect: Connector = async () => {
      const client = await pool.connect();
      return {
        client,
        release: (destroy) => {
          releases.push(destroy === true);
          client.release(destroy);
        },
      };
    };
    try {
      const umzug = engine(db, files, connect);
      await umzug.pending();
      await umzug.up({ to: '0001_a' });
      expect(releases).toEqual([false, false]);
      expect((await rejectionOf(umzug.up())).code).toBe('MIGRATION_FAILED');
      expect(releases).toEqual([false, false, false]);
      // The pooled connection came back without the advisory lock: another session can take it at once.
      const { rows } = await adminQuery<{ ok: boolean }>(
        "SELECT pg_try_advisory_lock(hashtextextended('tenantdb:migrations:main', 0)) AS ok",
        [],
        db,
      );
      expect(rows[0]!.ok).toBe(true);
    } finally {
      await pool.end();
    }
  });

  it('a database it cannot reach is MIGRATION_FAILED with the driver error as cause', async () => {
    const files = await filesOf(await folderWith({ '0001_a.sql': 'CREATE TABLE a ();' }));
    const err = await rejectionOf(engine(db, files, clientConnector(dbUrl(uniqueName('tdbt_missing')))).up());
    expect(err.code).toBe('MIGRATION_FAILED');
    expect((err.cause as { code?: string }).code).toBe('3D000');
    expect(failedMigrationOf(err)).toBeNull();
  });
});
