import { TenantDbError } from '../errors.js';
import type { TenantLabels } from './types.js';

/** At most this many labels per tenant. */
export const MAX_TENANT_LABELS = 64;
/** A label key: 1 to 63 of `[A-Za-z0-9._/-]`, starting with a letter or digit. */
const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
/** Longest label value, in characters (code points). */
const MAX_VALUE = 255;

function invalid(message: string): TenantDbError {
  return new TenantDbError('VALIDATION', `tenant labels: ${message}`);
}

/**
 * Checks a tenant's labels: a plain object (not an array, not null) of at most 64 entries, each key 1 to 63
 * characters of `[A-Za-z0-9._/-]` starting with a letter or digit, each value a string of 0 to 255
 * characters without control characters (NUL included) or lone surrogates. Returns a copy; VALIDATION
 * otherwise, whose message never repeats a value (nor a key that failed).
 * @internal
 */
export function validateTenantLabels(labels: unknown): TenantLabels {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw invalid('must be an object of strings');
  const proto: unknown = Object.getPrototypeOf(labels);
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(labels).length > 0) {
    throw invalid('must be a plain object of strings');
  }
  const entries = Object.entries(labels);
  if (entries.length > MAX_TENANT_LABELS) throw invalid(`at most ${MAX_TENANT_LABELS} labels`);
  const result: TenantLabels = {};
  for (const [key, value] of entries) {
    if (!KEY.test(key)) throw invalid('keys must be 1 to 63 of A-Z a-z 0-9 . _ / -, starting with a letter or digit');
    if (typeof value !== 'string') throw invalid(`the value of ${key} must be a string`);
    if ([...value].length > MAX_VALUE) throw invalid(`the value of ${key} must be at most ${MAX_VALUE} characters`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) throw invalid(`the value of ${key} must not contain control characters`);
    // JSON of a lone surrogate is refused by jsonb: a VALIDATION here rather than a DATABASE error there.
    if (/\p{Cs}/u.test(value)) throw invalid(`the value of ${key} must be valid UTF-16 (no lone surrogate)`);
    result[key] = value;
  }
  return result;
}
