import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from './cli-error.js';

/** The two families of migrations, as `migrations create` names them. */
export type MigrationFileFamily = 'tenant' | 'main';

/** The files `createMigrationFiles` wrote. */
export interface CreatedMigrationFiles {
  /** `NNNN_name`, the migration's name as `status` shows it. */
  name: string;
  /** Absolute path of `NNNN_name.sql`. */
  up: string;
  /** Absolute path of `NNNN_name.down.sql`. */
  down: string;
}

/** Options of {@link createMigrationFiles}. */
export interface CreateMigrationFilesOptions {
  /** The folder of the new files, relative to the working directory; created when missing. */
  dir: string;
  /** The migration's name as typed; normalised by {@link migrationName}. */
  name: string;
  family: MigrationFileFamily;
}

/** Up and down files the migration engine loads (`NNNN_name.sql`, `NNNN_name.down.sql`). */
const MIGRATION_FILE = /^(\d+)_[A-Za-z0-9_-]+(?:\.down)?\.sql$/;

/**
 * A migration name as file names take it: lower case, spaces and dashes as `_`, anything but `[a-z0-9_]`
 * dropped. A name with nothing left is a USAGE CliError.
 *
 * @example
 * ```ts
 * migrationName('Add invoices-table'); // 'add_invoices_table'
 * ```
 */
export function migrationName(raw: string): string {
  const name = raw
    .toLowerCase()
    .replace(/[\s-]+/g, '_')
    .replace(/[^a-z0-9_]/g, '')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
  if (name === '') throw usageError(`${JSON.stringify(raw)} leaves no migration name (letters, digits, "_")`);
  return name;
}

/**
 * The number of the next migration among the names of a folder's files: one more than the highest
 * `NNNN` of its migration files, 1 for none; four digits at least.
 *
 * @example
 * ```ts
 * nextMigrationNumber(['0001_a.sql', '0002_b.sql', '0002_b.down.sql', 'notes.md']); // '0003'
 * ```
 */
export function nextMigrationNumber(fileNames: readonly string[]): string {
  let highest = 0;
  for (const file of fileNames) {
    const number = MIGRATION_FILE.exec(file)?.[1];
    if (number !== undefined) highest = Math.max(highest, Number(number));
  }
  return String(highest + 1).padStart(4, '0');
}

function header(family: MigrationFileFamily, name: string): string {
  const where = family === 'tenant' ? 'every tenant database' : 'the main database';
  return (
    `-- ${name}: applied once to ${where} by "tenantdb migrate",\n` +
    `-- after the built-in ${family} migrations and the ones numbered before it.\n`
  );
}

function downHeader(name: string): string {
  return `-- Reverts ${name}: the SQL that undoes ${name}.sql goes here (run by a migration "down").\n`;
}

/**
 * Writes the next numbered `NNNN_name.sql` and an empty-bodied `NNNN_name.down.sql` in `dir` (created
 * when missing). Numbers count within `dir` only: the host's migrations run after the built-in ones.
 * Never overwrites: an existing file is a USAGE CliError and nothing is written.
 *
 * @example
 * ```ts
 * await createMigrationFiles({ dir: 'migrations/tenant', name: 'add invoices', family: 'tenant' });
 * // { name: '0003_add_invoices', up: '/app/migrations/tenant/0003_add_invoices.sql', down: '…/0003_add_invoices.down.sql' }
 * ```
 */
export async function createMigrationFiles(options: CreateMigrationFilesOptions): Promise<CreatedMigrationFiles> {
  const normalised = migrationName(options.name);
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const name = `${nextMigrationNumber(await readdir(dir))}_${normalised}`;
  const up = path.join(dir, `${name}.sql`);
  const down = path.join(dir, `${name}.down.sql`);
  // `wx` refuses an existing file; the down file first so that a refusal leaves no up file without it.
  const refuse = (file: string) => (err: unknown) => {
    throw (err as { code?: unknown }).code === 'EEXIST' ? usageError(`${file} exists; not overwritten`) : err;
  };
  await writeFile(down, downHeader(name), { flag: 'wx' }).catch(refuse(down));
  await writeFile(up, `${header(options.family, name)}\n`, { flag: 'wx' }).catch(async (err: unknown) => {
    await unlink(down).catch(() => {});
    refuse(up)(err);
  });
  return { name, up, down };
}
