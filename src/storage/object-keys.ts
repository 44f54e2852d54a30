import { TenantDbError } from '../errors.js';
import { isUuid } from '../util/uuid.js';

function uuid(value: string, what: string): string {
  if (!isUuid(value)) throw new TenantDbError('VALIDATION', `${what} must be a UUID`);
  // PostgreSQL prints UUIDs in lower case: keys built from either spelling must be the same key.
  return value.toLowerCase();
}

/**
 * The key prefix under which every tenant's objects live: `<prefix>tenants/`.
 * The sweep lists it to find objects of every tenant.
 */
export function tenantsPrefix(prefix: string): string {
  return `${prefix}tenants/`;
}

/**
 * The key prefix of one tenant's objects: `<prefix>tenants/<tenant id>/`. VALIDATION unless
 * `tenantId` is a UUID, so no caller-supplied text can widen the prefix (`tenants.drop` deletes it).
 */
export function tenantPrefix(prefix: string, tenantId: string): string {
  return `${tenantsPrefix(prefix)}${uuid(tenantId, 'tenant id')}/`;
}

/** The key prefix of one tenant's file objects: `<prefix>tenants/<tenant id>/files/`. */
export function tenantFilesPrefix(prefix: string, tenantId: string): string {
  return `${tenantPrefix(prefix, tenantId)}files/`;
}

/**
 * The object key of a stored file: `<prefix>tenants/<tenant id>/files/<file id>`. Both ids must be
 * UUIDs (VALIDATION otherwise): keys are never derived from filenames.
 *
 * @example
 * ```ts
 * fileObjectKey('app1/', tenant.id, file.id) // 'app1/tenants/6f1c…/files/0b7e…'
 * ```
 */
export function fileObjectKey(prefix: string, tenantId: string, fileId: string): string {
  return `${tenantFilesPrefix(prefix, tenantId)}${uuid(fileId, 'file id')}`;
}

/**
 * The tenant and file ids of a key built by {@link fileObjectKey} with the same `prefix`, or null
 * for any other key (the sweep leaves keys it does not recognise alone).
 */
export function parseFileObjectKey(prefix: string, key: string): { tenantId: string; fileId: string } | null {
  const base = tenantsPrefix(prefix);
  if (!key.startsWith(base)) return null;
  const parts = key.slice(base.length).split('/');
  if (parts.length !== 3 || parts[1] !== 'files') return null;
  const [tenantId, , fileId] = parts as [string, string, string];
  if (!isUuid(tenantId) || !isUuid(fileId)) return null;
  return { tenantId: tenantId.toLowerCase(), fileId: fileId.toLowerCase() };
}
