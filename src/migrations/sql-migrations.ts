import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { MigrationError, Umzug, type MigrateDownOptions, type MigrateUpOptions, type MigrationMeta, type RunnableMigration } from 'umzug';
import type { Connector } from '../connections/timed-client.js';

export { clientConnector, type Connector } from '../connections/timed-client.js';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { sqlState } from '../util/pg-errors.js';
import { step, type StepMessage } from '../util/steps.js';

/** The two families of migrations: the main database's and every tenant database's. */
export type MigrationFamily = 'main' | 'tenant';

/** One migration file as the engine sees it. */
export interface SqlMigrationFile {
  /** The file name without `.sql`, e.g. `0001_initial`. Unique across all folders of a family. */
  name: string;
  /** Absolute path of the up file. */
  path: string;
  /** Absolute path of the `NNNN_name.down.sql` file, when there is one. */
  downPath?: string;
  /** SHA-256 (hex) of the up file, line endings normalised to `\n`. */
  checksum: string;
}


/** What each migration function and the bookkeeping see: the command's one connection. */
export interface SqlMigrationContext {
  /** The connection of the running command (throws outside a command). */
  readonly client: pg.ClientBase;
  readonly family: MigrationFamily;
}

/** A MIGRATION_FAILED error; `migration` names the migration at fault, when one is. */
export type MigrationFailedError = TenantDbError & { readonly migration?: string };

/** The bookkeeping table every migrated database holds. */
export const MIGRATIONS_TABLE = 'tenantdb_migrations';

const PACKAGE_NAME = '@org/tenantdb';
const UP_FILE = /^(\d+_[A-Za-z0-9_-]+)\.sql$/;
const DOWN_FILE = /^(\d+_[A-Za-z0-9_-]+)\.down\.sql$/;

let packageRoot: string | undefined;

/** The folder of the installed package: the first ancestor of this module with our package.json. */
function findPackageRoot(): string {
  if (packageRoot) return packageRoot;
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) {
          packageRoot = dir;
          return dir;
        }
      } catch {
        // An unreadable or foreign manifest on the way up: keep climbing.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new TenantDbError('MIGRATION_FAILED', `cannot find the ${PACKAGE_NAME} package folder above ${start}`);
    }
    dir = parent;
  }
}

/**
 * The shipped folder of a family (`migrations/main` or `migrations/tenant`), found relative to the
 * installed package, so it works from the sources, from `dist` (ESM and CJS) and from an npm install.
 */
export function builtinMigrationsFolder(family: MigrationFamily): string {
  return path.join(findPackageRoot(), 'migrations', family);
}

function checksumOf(sql: string): string {
  // Normalised so that a checkout with CRLF line endings does not look like an edited migration.
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex');
}

async function readFolder(folder: string): Promise<SqlMigrationFile[]> {
  let entries: string[];
  try {
    entries = await readdir(folder);
  } catch (err) {
    throw new TenantDbError('VALIDATION', `cannot read the migrations folder ${folder}`, { cause: err });
  }
  const ups = new Map<string, string>();
  const downs = new Map<string, string>();
  for (const entry of entries) {
    if (!entry.endsWith('.sql')) continue;
    const down = DOWN_FILE.exec(entry);
    const up = down ? null : UP_FILE.exec(entry);
    if (down) downs.set(down[1]!, path.join(folder, entry));
    else if (up) ups.set(up[1]!, path.join(folder, entry));
    else throw new TenantDbError('VALIDATION', `migration file ${path.join(folder, entry)} is not named NNNN_name.sql`);
  }
  for (const name of downs.keys()) {
    if (!ups.has(name)) throw new TenantDbError('VALIDATION', `down migration ${downs.get(name)} has no up file`);
  }
  // Plain code-unit order: the same on every machine, whatever its locale.
  const names = [...ups.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    names.map(async (name) => {
      const file = ups.get(name)!;
      const downPath = downs.get(name);
      return { name, path: file, ...(downPath ? { downPath } : {}), checksum: checksumOf(await readFile(file, 'utf8')) };
    }),
  );
}

/**
 * The migrations of a family: the built-in folder first, then each of the host's folders in the order
 * given, each folder's files in name order. Files are `NNNN_name.sql` with an optional
 * `NNNN_name.down.sql`; other `.sql` names, a down file without an up file, a missing folder and a
 * name found in two folders are VALIDATION.
 */
export async function loadMigrationFiles(family: MigrationFamily, extraFolders: string[]): Promise<SqlMigrationFile[]> {
  const folders = [builtinMigrationsFolder(family), ...extraFolders.map((f) => path.resolve(f))];
  const files: SqlMigrationFile[] = [];
  const seen = new Map<string, string>();
  for (const folder of folders) {
    for (const file of await readFolder(folder)) {
      const other = seen.get(file.name);
      if (other) throw new TenantDbError('VALIDATION', `migration ${file.name} is both ${other} and ${file.path}`);
      seen.set(file.name, file.path);
      files.push(file);
    }
  }
  return files;
}

/** A checksum of a whole migration set (names and checksums, in order): equal sets, equal checksums. */
export function migrationSetChecksum(files: SqlMigrationFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.name}\t${file.checksum}\n`);
  return hash.digest('hex');
}

/** A MIGRATION_FAILED error carrying the name of the migration at fault. */
export function migrationFailed(migration: string | undefined, message: string, cause?: unknown): MigrationFailedError {
  const error = new TenantDbError('MIGRATION_FAILED', message, cause === undefined ? undefined : { cause });
  if (migration !== undefined) Object.defineProperty(error, 'migration', { value: migration, enumerable: true });
  return error as MigrationFailedError;
}

/** The migration a MIGRATION_FAILED error names, or null. */
export function failedMigrationOf(error: unknown): string | null {
  const name = (error as { migration?: unknown } | null)?.migration;
  return typeof name === 'string' ? name : null;
}

/** What {@link createSqlUmzug} takes. */
export interface SqlUmzugOptions {
  connect: Connector;
  files: SqlMigrationFile[];
  family: MigrationFamily;
  logger: Logger;
  /** The fleet run the commands are part of: recorded as `run_id` with each migration applied. */
  runId?: string;
}

/**
 * The migrations of `database` that fleet run `runId` applied (the `run_id` of their bookkeeping rows), in
 * order; none when the table or the column is not there.
 */
export async function migrationsAppliedBy(client: pg.ClientBase, runId: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT name FROM ${MIGRATIONS_TABLE}
      WHERE EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $2 AND column_name = 'run_id'
                    AND table_schema = current_schema())
        AND run_id::text = $1 ORDER BY name`,
    [runId, MIGRATIONS_TABLE],
  ).catch((err: unknown) => {
    if (sqlState(err) === '42P01' || sqlState(err) === '42703') return { rows: [] };
    throw err;
  });
  return rows.map((r) => r.name);
}

/** The connection state of one command. */
class CommandSession implements SqlMigrationContext {
  readonly family: MigrationFamily;
  #client: pg.ClientBase | undefined;
  /** Set when the connection can no longer be trusted (a failed ROLLBACK or unlock, an 'error' event). */
  broken = false;
  /** Whether the bookkeeping table exists (read commands do not create it). */
  hasTable = false;
  /** The family's advisory lock key: each migration's transaction takes it first. */
  readonly lockKey: string;
  /** Migrations of this command that another migrator applied (or reverted) first: not reported as run. */
  readonly skipped = new Set<string>();
  /** The fleet run the command is part of: its id goes into each bookkeeping row `up` writes. */
  readonly runId: string | null;

  constructor(family: MigrationFamily, runId: string | null) {
    this.family = family;
    this.runId = runId;
    this.lockKey = `tenantdb:migrations:${family}`;
  }

  get client(): pg.ClientBase {
    if (!this.#client) throw new TenantDbError('MIGRATION_FAILED', 'no migration command is running');
    return this.#client;
  }

  attach(client: pg.ClientBase | undefined): void {
    this.#client = client;
  }
}

const WRITE_COMMANDS = new Set(['up', 'down']);

/**
 * Umzug over SQL files, on one connection per command, with the bookkeeping in the database itself
 * (`tenantdb_migrations`), each migration committed together with its bookkeeping row, an advisory
 * lock around `up` and `down`, and checksums that catch edited, already-applied files.
 * @internal
 */
export class SqlUmzug extends Umzug<SqlMigrationContext> {
  readonly #connect: Connector;
  readonly #files: SqlMigrationFile[];
  readonly #family: MigrationFamily;
  readonly #logger: Logger;

  constructor(options: SqlUmzugOptions) {
    const { connect, files, family, logger } = options;
    const runId = options.runId ?? null;
    const migrations = files.map((file): RunnableMigration<SqlMigrationContext> => ({
      name: file.name,
      path: file.path,
      up: ({ context }) => applyUp(context as CommandSession, file),
      down: ({ context }) => applyDown(context as CommandSession, file),
    }));
    super({
      migrations,
      context: () => new CommandSession(family, runId),
      // Each migration writes its own bookkeeping row in its transaction; umzug's separate call has nothing left to do.
      storage: {
        logMigration: async () => {},
        unlogMigration: async () => {},
        executed: async ({ context }) => executedNames(context as CommandSession),
      },
      logger: {
        debug: (m) => logger.debug({ ...m, family }, 'migrations'),
        info: (m) => logger.info({ ...m, family }, `migration ${String(m.event ?? '')}`.trim()),
        warn: (m) => logger.warn({ ...m, family }, 'migrations'),
        error: (m) => logger.error({ ...m, family }, 'migrations'),
      },
    });
    this.#connect = connect;
    this.#files = files;
    this.#family = family;
    this.#logger = logger;
  }

  /** Applies pending migrations (all by default, or up to and including `to`). */
  override async up(options: MigrateUpOptions = {}): Promise<MigrationMeta[]> {
    this.#assertKnown(options.to, options.migrations);
    return super.up(options);
  }

  /** Reverts the last migration, or down to and including `to` (`0`: all of them). */
  override async down(options: MigrateDownOptions = {}): Promise<MigrationMeta[]> {
    this.#assertKnown(options.to === 0 ? undefined : options.to, options.migrations);
    return super.down(options);
  }

  #assertKnown(to: string | undefined, names: string[] | undefined): void {
    for (const name of [...(to === undefined ? [] : [to]), ...(names ?? [])]) {
      if (!this.#files.some((f) => f.name === name)) {
        throw new TenantDbError('VALIDATION', `no ${this.#family} migration named ${JSON.stringify(name)}`);
      }
    }
  }

  protected override async runCommand<T>(
    command: string,
    cb: (params: { context: SqlMigrationContext }) => Promise<T>,
  ): Promise<T> {
    try {
      return await super.runCommand(command, async ({ context }) => this.#withConnection(command, context as CommandSession, cb));
    } catch (err) {
      // umzug wraps what a migration throws; ours is already the error to report.
      const inner = err instanceof MigrationError ? err.cause : err;
      if (inner instanceof TenantDbError) throw inner;
      throw migrationFailed(undefined, `${this.#family} migrations: ${command} failed`, inner);
    }
  }

  async #withConnection<T>(
    command: string,
    session: CommandSession,
    cb: (params: { context: SqlMigrationContext }) => Promise<T>,
  ): Promise<T> {
    let lease: Awaited<ReturnType<Connector>>;
    try {
      lease = await this.#connect();
    } catch (err) {
      // An unreachable or hung server is the caller's to retry, like any connection the platform opens.
      if (err instanceof TenantDbError && err.code === 'UNAVAILABLE') throw err;
      throw migrationFailed(undefined, `${this.#family} migrations: cannot connect to the database`, err);
    }
    const { client } = lease;
    const onError = (): void => {
      session.broken = true;
    };
    client.on('error', onError);
    session.attach(client);
    try {
      if (WRITE_COMMANDS.has(command)) {
        // No session-level lock: behind a transaction-mode pooler it would not hold. The table is created,
        // and each migration applied, in a transaction that takes the family's advisory lock first.
        await lockedTransaction(session, async () => {
          // run_id (the fleet run that applied a migration, for revert) came after the table: added when missing.
          await client.query(
            `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
               name text PRIMARY KEY,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now(),
               run_id uuid
             );
             ALTER TABLE ${MIGRATIONS_TABLE} ADD COLUMN IF NOT EXISTS run_id uuid`,
          );
        }).catch((err: unknown) => {
          throw migrationFailed(undefined, `${this.#family} migrations: cannot create ${MIGRATIONS_TABLE}`, err);
        });
        session.hasTable = true;
        await this.#verify(client, command);
      } else {
        const { rows } = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [MIGRATIONS_TABLE]);
        session.hasTable = rows[0]?.t != null;
      }
      const result = await cb({ context: session });
      // umzug lists what it meant to run; a migration another migrator ran first was not run here.
      if (Array.isArray(result) && session.skipped.size > 0) {
        return result.filter((m: { name?: unknown }) => typeof m.name !== 'string' || !session.skipped.has(m.name)) as T;
      }
      return result;
    } catch (err) {
      // An error with no SQLSTATE may be the connection's own (reset, timeout): do not reuse it.
      const inner = err instanceof MigrationError ? err.cause : err;
      if (!(inner instanceof TenantDbError) && sqlState(inner) === undefined) session.broken = true;
      throw err;
    } finally {
      client.off('error', onError);
      session.attach(undefined);
      await Promise.resolve(lease.release(session.broken)).catch((err: unknown) => {
        this.#logger.warn({ err, family: this.#family }, 'releasing the migration connection failed');
      });
    }
  }

  /** Every applied migration must still match its file: an edited one is reported, never re-run. */
  async #verify(client: pg.ClientBase, command: string): Promise<void> {
    const { rows } = await client.query<{ name: string; checksum: string }>(
      `SELECT name, checksum FROM ${MIGRATIONS_TABLE} ORDER BY name`,
    );
    const byName = new Map(this.#files.map((f) => [f.name, f]));
    for (const row of rows) {
      const file = byName.get(row.name);
      if (!file) {
        if (command === 'up') {
          this.#logger.warn({ family: this.#family, migration: row.name }, 'an applied migration has no file any more');
        }
        continue;
      }
      if (file.checksum !== row.checksum) {
        throw migrationFailed(row.name, `migration ${row.name} (${file.path}) was changed after it was applied`);
      }
    }
  }
}

async function executedNames(session: CommandSession): Promise<string[]> {
  if (!session.hasTable) return [];
  const { rows } = await session.client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`);
  return rows.map((r) => r.name);
}

/**
 * `fn` in a transaction that first takes the family's transaction-level advisory lock (a concurrent
 * migrator of the same database waits for it), with no statement or idle timeout: a migration may take
 * long, whatever the connection's settings. Only `SET LOCAL`, so nothing outlives the transaction on a
 * pooled connection.
 */
async function lockedTransaction<T>(session: CommandSession, fn: () => Promise<T>): Promise<T> {
  const client = session.client;
  await client.query('BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [session.lockKey]);
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      session.broken = true;
    });
    throw err;
  }
}

/**
 * Runs `sql` and the bookkeeping statement in one locked transaction: both or neither. Under the lock, a
 * migration another migrator applied (`up`) or reverted (`down`) meanwhile is skipped, so each runs once.
 */
async function inTransaction(
  session: CommandSession,
  name: string,
  what: 'up' | 'down',
  sql: string,
  bookkeeping: [string, unknown[]],
): Promise<void> {
  const client = session.client;
  await lockedTransaction(session, async () => {
    const { rowCount } = await client.query(`SELECT 1 FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [name]);
    if ((rowCount === 1) === (what === 'up')) {
      session.skipped.add(name);
      return;
    }
    await client.query(sql);
    await client.query(bookkeeping[0], bookkeeping[1]);
    step('migration:applied', stepDetail(session, name));
  }).catch((err: unknown) => {
    throw migrationFailed(name, `migration ${name} failed (${what})`, err);
  });
  if (!session.skipped.has(name)) step('migration:committed', stepDetail(session, name));
}

/** What a `migration:*` step names: the migration, its family and its database. */
function stepDetail(session: CommandSession, migration: string): Omit<StepMessage, 'step'> {
  const databaseName = (session.client as { database?: unknown }).database;
  return { migration, family: session.family, ...(typeof databaseName === 'string' && { databaseName }) };
}

async function readMigration(name: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw migrationFailed(name, `cannot read migration file ${file}`, err);
  }
}

async function applyUp(session: CommandSession, file: SqlMigrationFile): Promise<void> {
  const sql = await readMigration(file.name, file.path);
  if (checksumOf(sql) !== file.checksum) {
    throw migrationFailed(file.name, `migration file ${file.path} changed while migrating`);
  }
  await inTransaction(session, file.name, 'up', sql, [
    `INSERT INTO ${MIGRATIONS_TABLE} (name, checksum, run_id) VALUES ($1, $2, $3)`,
    [file.name, file.checksum, session.runId],
  ]);
}

async function applyDown(session: CommandSession, file: SqlMigrationFile): Promise<void> {
  if (!file.downPath) {
    throw migrationFailed(file.name, `migration ${file.name} cannot be reverted: it has no .down.sql file`);
  }
  const sql = await readMigration(file.name, file.downPath);
  await inTransaction(session, file.name, 'down', sql, [`DELETE FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [file.name]]);
}

/**
 * An Umzug instance over SQL migration files, running each command (`up`, `down`, `pending`,
 * `executed`) on one connection from `connect`:
 * - the bookkeeping table `tenantdb_migrations (name, checksum, applied_at)` is created if missing;
 * - each migration commits together with its bookkeeping row, or neither does;
 * - each migration's transaction takes the family's advisory lock and skips a migration another migrator
 *   applied meanwhile, so concurrent migrators of one database apply each migration exactly once; no
 *   session state is used, so this holds behind a transaction-mode pooler (PgBouncer) too;
 * - before `up` or `down`, an applied migration whose file changed is MIGRATION_FAILED (never re-run);
 * - a migration that throws is MIGRATION_FAILED with `migration` (its name) and the pg error as `cause`.
 *
 * SQL files must not contain their own `BEGIN`/`COMMIT` nor statements that cannot run in a transaction
 * (`CREATE INDEX CONCURRENTLY`).
 *
 * @example
 * ```ts
 * const umzug = createSqlUmzug({ connect: clientConnector(url), files: await loadMigrationFiles('tenant', []), family: 'tenant', logger });
 * await umzug.up();
 * ```
 */
export function createSqlUmzug(options: SqlUmzugOptions): SqlUmzug {
  return new SqlUmzug(options);
}
