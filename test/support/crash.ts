import path from 'node:path';
import { expect } from 'vitest';
import type { FleetMigrateOptions, PlatformOptions, StepMessage, StepName } from '../../src/index.js';
import { adminQuery, databaseExists, uniqueName } from './env.js';
import { runProcess } from './spawn.js';

const CHILD = path.join(import.meta.dirname, 'crash-child.mjs');

/** What a crash child is told to do, and where to die. */
export interface Crash {
  options: PlatformOptions;
  action: 'init' | 'create' | 'fleet' | 'drop' | 'rotate' | 'move';
  at: StepName;
  /** Die at the nth time the step is published (default 1). */
  nth?: number;
  /** Count only steps on databases whose name starts so. */
  databasePrefix?: string;
  /** The name of the tenant `create` makes. */
  name?: string;
  /** The tenant `drop` drops, `rotate` rotates the credentials of, or `move` moves. */
  tenant?: string;
  /** The server `move` moves the tenant to. */
  to?: string;
  /** The options of the `fleet` run, without callbacks (default `{ concurrency: 1 }`). */
  fleet?: Omit<FleetMigrateOptions, 'onProgress' | 'onWave'>;
}

/**
 * Runs a child process that does `action` and kills itself with SIGKILL at the step, then waits until the
 * server has ended its sessions (their advisory locks released, as after any crash). Returns the step's message.
 */
export async function crashAt(crash: Crash): Promise<StepMessage> {
  const app = uniqueName('crash');
  const run = await runProcess(process.execPath, [CHILD], {
    ...process.env,
    PGAPPNAME: app,
    CRASH_OPTIONS: JSON.stringify(crash.options),
    CRASH_ACTION: crash.action,
    CRASH_AT: crash.at,
    CRASH_NTH: String(crash.nth ?? 1),
    CRASH_DATABASE_PREFIX: crash.databasePrefix ?? '',
    CRASH_NAME: crash.name ?? `${crash.at} crash`,
    CRASH_TENANT: crash.tenant ?? '',
    CRASH_TO: crash.to ?? '',
    ...(crash.fleet && { CRASH_FLEET: JSON.stringify(crash.fleet) }),
  });
  // Killed (no exit code), after printing the step it died at.
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBeNull();
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  const message = JSON.parse(line) as StepMessage;
  expect(message.step).toBe(crash.at);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app]);
    if (rows[0]!.n === 0) break;
    if (Date.now() > deadline) throw new Error(`the sessions of the killed process ${app} are still open`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return message;
}

/**
 * What a restart must leave: every tenant of the main database ready, its database there, its migrations a
 * prefix of `migrations` (each applied whole: a table of `tables` exists exactly when its migration is
 * recorded), and no tenant database named with `namePrefix` that no row registers.
 */
export async function expectConsistent(
  mainDb: string,
  options: { migrations: string[]; tables?: Record<string, string>; namePrefix: string },
): Promise<void> {
  const { rows } = await adminQuery<{ id: string; status: string; database_name: string }>(
    'SELECT id, status, database_name FROM tenants ORDER BY created_at',
    [],
    mainDb,
  );
  for (const row of rows) {
    expect(row.status, row.database_name).toBe('ready');
    expect(await databaseExists(row.database_name), row.database_name).toBe(true);
    const executed = (
      await adminQuery<{ name: string }>('SELECT name FROM tenantdb_migrations ORDER BY name', [], row.database_name)
    ).rows.map((r) => r.name);
    expect(options.migrations.slice(0, executed.length), row.database_name).toEqual(executed);
    for (const [migration, table] of Object.entries(options.tables ?? {})) {
      const found = await adminQuery<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table], row.database_name);
      expect(found.rows[0]!.t !== null, `${row.database_name}: ${table}`).toBe(executed.includes(migration));
    }
  }
  const registered = new Set(rows.map((r) => r.database_name));
  const { rows: databases } = await adminQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
    options.namePrefix,
  ]);
  expect(databases.map((d) => d.datname).filter((name) => !registered.has(name))).toEqual([]);
}

/** The tenant a step was on is either ready or gone whole (no row, no database). */
export async function outcomeOf(mainDb: string, message: StepMessage): Promise<'ready' | 'gone'> {
  const { rows } = await adminQuery<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [message.tenantId], mainDb);
  if (rows[0]) {
    expect(rows[0].status).toBe('ready');
    return 'ready';
  }
  expect(await databaseExists(message.databaseName!)).toBe(false);
  return 'gone';
}
