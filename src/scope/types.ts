import type { DocumentsService } from '../documents/types.js';
import type { Role } from '../memberships/types.js';
import type { Queryable } from '../pools/types.js';
import type { Tenant } from '../tenants/types.js';

export type { Queryable } from '../pools/types.js';

/** The scope `withTenant` runs `fn` in; also what `currentTenant()` returns inside it. */
export interface TenantContext extends Queryable {
  readonly tenant: Tenant;
  /** The acting user's role; undefined in a trusted (server-code) scope. */
  readonly role: Role | undefined;
  /** The acting user's id, when `withTenant` was given one. */
  readonly userId: string | undefined;
  /** Runs `fn` in a transaction on one connection: commit on return, rollback on throw. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** The tenant's documents. */
  readonly documents: DocumentsService;
  /**
   * The scope's `signal` (`withTenant(…, { signal })`), the default `signal` of its uploads; in the Express
   * and Fastify integrations it aborts when the client disconnects before the response is complete.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options of `withTenant`. */
export interface WithTenantOptions {
  /** The acting user: must be active and a member of the tenant (else FORBIDDEN). */
  userId?: string;
  /**
   * Cancels the scope's uploads: `ctx.documents.upload` uses it when its input has no `signal` of its
   * own (see `UploadInput.signal`). Not passed on to scopes opened inside this one. Default: none.
   *
   * @example
   * ```ts
   * await platform.withTenant(tenantId, (ctx) => ctx.documents.upload({ filename, body: req }), { userId, signal: AbortSignal.timeout(60_000) });
   * ```
   */
  signal?: AbortSignal;
}

/**
 * A tenant scope as a plain, JSON-serialisable value, from `platform.captureTenant()`: what background work
 * (a job, a message) carries to enter the same scope later with `platform.runInTenant(captured, fn)`,
 * in this process or another one. Holds ids only, never a secret.
 *
 * @example
 * ```ts
 * const captured = platform.captureTenant();   // { version: 1, tenantId: '…', userId: '…', role: 'user' }
 * await queue.send(JSON.stringify({ captured, payload }));
 * ```
 */
export interface CapturedTenant {
  /** The shape's version, so that it can evolve: 1. A value of another version is VALIDATION. */
  readonly version: 1;
  /** The tenant's id. */
  readonly tenantId: string;
  /** The acting user's id, when the scope had one (`withTenant(…, { userId })`); absent in a trusted scope. */
  readonly userId?: string;
  /**
   * The user's role when the scope was captured, for information (logs, routing) only: `runInTenant`
   * reads the user's role again and the scope gets the role they have then.
   */
  readonly role?: Role;
}
