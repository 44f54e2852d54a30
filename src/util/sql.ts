import { TenantDbError } from '../errors.js';

/** PostgreSQL's identifier limit, in bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

const SAFE_DATABASE_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Validates a database name built by the library (lower-case ASCII letters, digits and `_`, at most
 * 63 bytes) and returns it quoted as an identifier. Anything else is VALIDATION: names from users never
 * reach SQL unvalidated.
 */
export function quoteDatabaseName(name: string): string {
  if (!SAFE_DATABASE_NAME.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new TenantDbError('VALIDATION', `unsafe database name ${JSON.stringify(name.slice(0, 80))}`);
  }
  return `"${name}"`;
}

/** Quotes any identifier the PostgreSQL way (double quotes doubled). */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) {
    throw new TenantDbError('VALIDATION', 'empty identifier or NUL in identifier');
  }
  return `"${name.replace(/"/g, '""')}"`;
}
