import { TenantDbError } from '../errors.js';

/** Longest email, in characters (the column is `varchar(255)`). */
export const EMAIL_MAX_LENGTH = 255;
/** Longest first or last name, in characters (the columns are `varchar(100)`). */
export const NAME_MAX_LENGTH = 100;

// Pragmatic, not RFC 5322: one @, no whitespace, a dot between non-empty labels in the domain.
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// A lone surrogate, which UTF-8 cannot encode: the driver would store U+FFFD instead of what was given.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks an email and returns it trimmed (its case kept): at most 255 characters, no control character or
 * lone surrogate, else VALIDATION.
 */
export function normalizeEmail(email: unknown): string {
  if (typeof email !== 'string') throw new TenantDbError('VALIDATION', 'email must be a string');
  const trimmed = email.trim();
  // A cheap bound first: 255 characters are at most 510 UTF-16 units.
  if (trimmed.length > 2 * EMAIL_MAX_LENGTH || [...trimmed].length > EMAIL_MAX_LENGTH || !EMAIL.test(trimmed) || CONTROL.test(trimmed) || LONE_SURROGATE.test(trimmed)) {
    throw new TenantDbError('VALIDATION', 'email is not a valid address');
  }
  return trimmed;
}

/**
 * The email to look an account up by (trimmed, compared case-insensitively by the caller), or undefined
 * when no account can have it: a NUL (which PostgreSQL refuses in text: a database error, not "nobody"),
 * another control character, a lone surrogate, more than 255 characters. No query is needed for those.
 */
export function emailLookupKey(email: string): string | undefined {
  const trimmed = email.trim();
  if (trimmed.length > 2 * EMAIL_MAX_LENGTH || CONTROL.test(trimmed) || LONE_SURROGATE.test(trimmed)) return undefined;
  return trimmed;
}

/** Checks a first or last name and returns it trimmed: 1 to 100 characters, no control characters. */
export function normalizeName(name: unknown, field: 'firstName' | 'lastName'): string {
  if (typeof name !== 'string') throw new TenantDbError('VALIDATION', `${field} must be a string`);
  const trimmed = name.trim();
  const length = [...trimmed].length;
  if (length < 1 || length > NAME_MAX_LENGTH) {
    throw new TenantDbError('VALIDATION', `${field} must be 1 to ${NAME_MAX_LENGTH} characters`);
  }
  if (CONTROL.test(trimmed)) throw new TenantDbError('VALIDATION', `${field} must not contain control characters`);
  return trimmed;
}
