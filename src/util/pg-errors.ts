import { TenantDbError } from '../errors.js';

/** The SQLSTATE of a pg error, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The constraint a pg error names, if any. */
export function constraintOf(err: unknown): string | undefined {
  const c = (err as { constraint?: unknown } | null)?.constraint;
  return typeof c === 'string' ? c : undefined;
}

/** SQLSTATEs the library reacts to. */
export const PG = {
  UNIQUE_VIOLATION: '23505',
  FOREIGN_KEY_VIOLATION: '23503',
  INVALID_CATALOG_NAME: '3D000',
  DUPLICATE_DATABASE: '42P04',
  OBJECT_IN_USE: '55006',
  PROTOCOL_VIOLATION: '08P01',
  DUPLICATE_OBJECT: '42710',
  INSUFFICIENT_PRIVILEGE: '42501',
  OBJECT_NOT_IN_PREREQUISITE_STATE: '55000',
} as const;

/** `err` itself, then the errors of its `cause` chain. */
function* causeChain(err: unknown): Generator<unknown> {
  for (let e = err, depth = 0; e !== null && e !== undefined && depth < 5; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/**
 * True when a connection failed because its database does not exist: SQLSTATE 3D000 from PostgreSQL, or
 * 08P01 with PostgreSQL's words from a pooler (PgBouncer reports the server's refusal under 08P01).
 */
export function isMissingDatabase(err: unknown): boolean {
  for (const e of causeChain(err)) {
    const state = sqlState(e);
    if (state === PG.INVALID_CATALOG_NAME) return true;
    const message = (e as { message?: unknown }).message;
    if (state === PG.PROTOCOL_VIOLATION && typeof message === 'string' && /database ".*" does not exist|no such database/i.test(message)) {
      return true;
    }
  }
  return false;
}

/**
 * True when a connection to a tenant database was refused because the database is closed to connections
 * (55000: `ALLOW_CONNECTIONS false`, as a move does to the database it leaves) or gone (3D000): the tenant
 * may live on another server now.
 */
export function isClosedOrMissingDatabase(err: unknown): boolean {
  for (const e of causeChain(err)) {
    const state = sqlState(e);
    if (state === PG.OBJECT_NOT_IN_PREREQUISITE_STATE) return true;
  }
  return isMissingDatabase(err);
}

/** True when a pooler refused a startup parameter it does not know (PgBouncer: `unsupported startup parameter`). */
export function isRefusedStartupParameter(err: unknown): boolean {
  const message = (err as { message?: unknown } | null)?.message;
  return sqlState(err) === PG.PROTOCOL_VIOLATION && typeof message === 'string' && /unsupported startup parameter/i.test(message);
}

/**
 * A connection attempt's failure as the library reports it: UNAVAILABLE (retry later) when the server could
 * not be reached, timed out, or refused for now; DATABASE when it refused for good (bad password, no such
 * role); `err` itself when it already is a {@link TenantDbError}.
 */
export function connectFailure(err: unknown, what: string): TenantDbError {
  if (err instanceof TenantDbError) return err;
  const state = sqlState(err);
  // 28xxx: authentication refused; 42xxx: e.g. no such role. Trying again will not help.
  if (state !== undefined && /^(28|42)/.test(state)) {
    return new TenantDbError('DATABASE', `the server refused the connection to ${what}`, { cause: err, retryable: false });
  }
  return new TenantDbError('UNAVAILABLE', `cannot connect to ${what}`, { cause: err });
}

/** True when the server ended the session (FATAL 57P01–57P03): `pg_terminate_backend`, a shutdown, a crash restart. */
export function isSessionEndedByServer(err: unknown): boolean {
  const state = sqlState(err);
  return (state === '57P01' || state === '57P02' || state === '57P03') && (err as { severity?: unknown }).severity === 'FATAL';
}

/**
 * True when `sql` is one statement: no `;` but trailing ones. Conservative: a `;` inside a string literal
 * counts as a second statement.
 */
export function isSingleStatement(sql: unknown): boolean {
  if (typeof sql !== 'string') return false;
  const i = sql.indexOf(';');
  return i === -1 || /^[\s;]*$/.test(sql.slice(i));
}
