import { TenantDbError } from '../errors.js';
import { MAX_IDENTIFIER_BYTES } from '../util/sql.js';
import { isUuid } from '../util/uuid.js';

const PREFIX = 'tenant_';
const ID_HEX = 8;
// "tenant_" + slug + "_" + 8 hex must fit PostgreSQL's 63-byte identifier limit.
const MAX_SLUG = MAX_IDENTIFIER_BYTES - PREFIX.length - 1 - ID_HEX;

/**
 * The slug of a tenant name: its ASCII letters and digits in lower case, every run of anything else one
 * `_`, no `_` at either end, at most 47 characters. Empty for a name with no ASCII letter or digit.
 */
export function tenantSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, MAX_SLUG + 1)
    .replace(/^_+|_+$/g, '')
    .slice(0, MAX_SLUG)
    .replace(/_+$/, '');
}

/**
 * The database name of a tenant: `tenant_<slug>_<first 8 hex of id>`, or `tenant_<8 hex>` when the name
 * has no ASCII letter or digit. Always at most 63 bytes of `[a-z0-9_]`, whatever the name.
 */
export function tenantDatabaseName(name: string, id: string): string {
  if (!isUuid(id)) throw new TenantDbError('VALIDATION', 'tenant id must be a UUID');
  const hex = id.replace(/-/g, '').slice(0, ID_HEX).toLowerCase();
  const slug = tenantSlug(name);
  return slug ? `${PREFIX}${slug}_${hex}` : `${PREFIX}${hex}`;
}

/**
 * Checks a tenant name: a string of 1 to 255 characters after trimming, any script, quotes included, but
 * no control characters and no lone surrogates (which UTF-8 cannot encode: the driver would store U+FFFD
 * instead of what was given). Returns it trimmed.
 */
export function validateTenantName(name: unknown): string {
  if (typeof name !== 'string') throw new TenantDbError('VALIDATION', 'tenant name must be a string');
  const trimmed = name.trim();
  const length = [...trimmed].length;
  if (length < 1 || length > 255) throw new TenantDbError('VALIDATION', 'tenant name must be 1 to 255 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(trimmed)) {
    throw new TenantDbError('VALIDATION', 'tenant name must not contain control characters');
  }
  if (/\p{Cs}/u.test(trimmed)) throw new TenantDbError('VALIDATION', 'tenant name must be valid UTF-16 (no lone surrogate)');
  return trimmed;
}
