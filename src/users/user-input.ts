import { TenantDbError } from '../errors.js';

/** Longest email, in characters (the column is `varchar(255)`). */
export const EMAIL_MAX_LENGTH = 255;
/** Longest first or last name, in characters (the columns are `varchar(100)`). */
export const NAME_MAX_LENGTH = 100;

// Pragmatic, not RFC 5322: one @, no whitespace, a dot between non-empty labels in the domain.
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Checks an email and returns it trimmed (its case kept): at most 255 characters, else VALIDATION. */
export function normalizeEmail(email: unknown): string {
  if (typeof email !== 'string') throw new TenantDbError('VALIDATION', 'email must be a string');
  const trimmed = email.trim();
  if ([...trimmed].length > EMAIL_MAX_LENGTH || !EMAIL.test(trimmed) || CONTROL.test(trimmed)) {
    throw new TenantDbError('VALIDATION', 'email is not a valid address');
  }
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
