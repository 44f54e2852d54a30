import { TenantDbError } from '../errors.js';
import { ROLES, type Role } from '../memberships/types.js';
import { isUuid } from '../util/uuid.js';
import type { CapturedTenant, TenantContext } from './types.js';

/** The version of {@link CapturedTenant} this library writes and reads. */
const VERSION = 1;
const KEYS: ReadonlySet<string | symbol> = new Set(['version', 'tenantId', 'userId', 'role']);

const invalid = (message: string, cause?: unknown): TenantDbError =>
  new TenantDbError('VALIDATION', `not a captured tenant scope: ${message}`, cause === undefined ? undefined : { cause });

/**
 * The scope `ctx` as a {@link CapturedTenant}; VALIDATION outside any scope (`ctx` undefined).
 * @internal
 */
export function captureTenant(ctx: TenantContext | undefined): CapturedTenant {
  if (!ctx) {
    throw new TenantDbError('VALIDATION', 'captureTenant needs a tenant scope: call it inside withTenant or a request of the tenancy middleware');
  }
  return {
    version: VERSION,
    tenantId: ctx.tenant.id,
    ...(ctx.userId !== undefined && { userId: ctx.userId }),
    ...(ctx.role !== undefined && { role: ctx.role }),
  };
}

/** An own data property of `value` (never a getter, never inherited), or undefined. */
function own(value: object, key: string): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(value, key);
  if (descriptor && !('value' in descriptor)) throw invalid(`${key} is an accessor`);
  return descriptor?.value;
}

/**
 * Checks a value that claims to be a {@link CapturedTenant} (it may have crossed a queue, a file, another
 * process) and returns a fresh copy of it: a plain object of version 1 with a UUID `tenantId`, a UUID
 * `userId` or none, a role or none, and no other key. Anything else is VALIDATION; the message never
 * repeats the value. Pure: no I/O.
 * @internal
 */
export function parseCapturedTenant(value: unknown): CapturedTenant {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not an object');
  let version: unknown, tenantId: unknown, userId: unknown, role: unknown;
  try {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw invalid('not a plain object');
    if (Reflect.ownKeys(value).some((key) => !KEYS.has(key))) throw invalid('unexpected key');
    [version, tenantId, userId, role] = [own(value, 'version'), own(value, 'tenantId'), own(value, 'userId'), own(value, 'role')];
  } catch (err) {
    // A proxy's trap may throw anything.
    throw err instanceof TenantDbError ? err : invalid('unreadable', err);
  }
  if (version !== VERSION) throw invalid(`version must be ${VERSION}`);
  if (!isUuid(tenantId)) throw invalid('tenantId must be a UUID');
  if (userId !== undefined && !isUuid(userId)) throw invalid('userId must be a UUID when present');
  if (role !== undefined && !(ROLES as readonly unknown[]).includes(role)) throw invalid(`role must be one of ${ROLES.join(', ')} when present`);
  return {
    version: VERSION,
    tenantId: tenantId.toLowerCase(),
    ...(userId !== undefined && { userId: userId.toLowerCase() }),
    ...(role !== undefined && { role: role as Role }),
  };
}
