import { execFile } from 'node:child_process';
import { TenantDbError } from '../errors.js';

/** The major version a `--version` line names (`pg_dump (PostgreSQL) 15.20 (Debian …)` → 15), or undefined. */
export function majorOf(versionLine: string): number | undefined {
  const match = /\)\s+(\d+)(?:\.\d+)?/.exec(versionLine) ?? /\b(\d+)\.\d+/.exec(versionLine);
  return match ? Number(match[1]) : undefined;
}

/** Runs a program to its end; rejects with its stderr (never its environment, which holds the password). */
function run(program: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${program} failed: ${(stderr || err.message).trim().slice(0, 2000)}`));
      else resolve(stdout);
    });
  });
}

/**
 * True when `pg_dump` and `pg_restore` are installed (on the PATH) and of the major version of every given
 * server (`server_version_num / 10000`); else a move rebuilds the schema from the catalogs.
 * @internal
 */
export async function dumpToolsMatch(serverMajors: number[]): Promise<boolean> {
  try {
    const [dump, restore] = await Promise.all([run('pg_dump', ['--version']), run('pg_restore', ['--version'])]);
    const major = majorOf(dump);
    return major !== undefined && majorOf(restore) === major && serverMajors.every((m) => m === major);
  } catch {
    return false;
  }
}

/**
 * The libpq environment of a connection URL: the URL without its password as `dbname`, the password in
 * PGPASSWORD. A command line is visible to every user of the host (`ps`): the password leaves it whether the
 * URL has it as userinfo or as a `password` parameter (which wins, as it does for pg).
 */
function connection(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const password = u.searchParams.get('password') ?? decodeURIComponent(u.password);
  u.password = '';
  u.searchParams.delete('password');
  // The URL says where: the host process's PG* variables (PGHOST, PGDATABASE, …) must not redirect the tools.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...(password && { PGPASSWORD: password }) };
  return { dbname: u.toString(), env };
}

/**
 * Dumps the schema of the database at `url` (no data, owners, privileges, publications nor subscriptions)
 * into `file`, in pg_dump's custom format.
 * @internal
 */
export async function dumpSchema(url: string, file: string): Promise<void> {
  const { dbname, env } = connection(url);
  await run(
    'pg_dump',
    ['--schema-only', '--format=custom', '--no-owner', '--no-privileges', '--no-publications', '--no-subscriptions', `--file=${file}`, `--dbname=${dbname}`],
    env,
  ).catch((err: unknown) => {
    throw new TenantDbError('DATABASE', 'pg_dump could not dump the tenant schema', { cause: err });
  });
}

/**
 * Restores one section of a schema dump into the database at `url`, in one transaction, stopping at the
 * first error: `pre-data` (types, functions, tables, sequences) before the rows, `post-data` (keys, indexes,
 * triggers, foreign keys, rules) after them.
 * @internal
 */
export async function restoreSection(url: string, file: string, section: 'pre-data' | 'post-data'): Promise<void> {
  const { dbname, env } = connection(url);
  await run(
    'pg_restore',
    [`--section=${section}`, '--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', `--dbname=${dbname}`, file],
    env,
  ).catch((err: unknown) => {
    throw new TenantDbError('DATABASE', `pg_restore could not restore the tenant schema (${section})`, { cause: err });
  });
}
