import type { ServerResponse } from 'node:http';
import { HTTP_STATUS, TenantDbError } from '../errors.js';
import type { Tenant } from '../tenants/types.js';
import type { TenantContext, WithTenantOptions } from '../scope/types.js';

/** The part of a platform the framework integrations use. */
export interface TenancyPlatform {
  withTenant<T>(tenant: Tenant | string, fn: (ctx: TenantContext) => Promise<T> | T, options?: WithTenantOptions): Promise<T>;
}

/** How a request names its tenant and (optionally) its acting user. */
export interface TenancyOptions<Req> {
  /** The tenant id or database name of the request (or a promise of one); none → 400 VALIDATION. */
  tenant: (req: Req) => string | undefined | null | Promise<string | undefined | null>;
  /**
   * The acting user's id. When given, the user must be an active member of the tenant (else 403
   * FORBIDDEN), and a request with no user is FORBIDDEN too: leaving a route open to anonymous callers
   * is a choice to make by not using `user` there, never by accident.
   */
  user?: (req: Req) => string | undefined | null | Promise<string | undefined | null>;
}

/** The reason of a request's signal when its client went away before the response was complete. */
function clientGone(): Error {
  return Object.assign(new Error('the client disconnected before the response was complete'), { name: 'AbortError' });
}

/**
 * Opens the tenant scope of a request and calls `next` inside it, so the rest of the request's handling
 * (and anything it awaits) sees `currentTenant()`; the scope ends when the response closes.
 *
 * The scope's `signal` (the default `signal` of its uploads) aborts when the response closes before it
 * was completely sent: the client disconnected, mid-body or while waiting for the answer. An upload
 * streaming the request body then fails and leaves nothing stored.
 * @internal
 */
export async function enterRequestScope<Req>(
  platform: TenancyPlatform,
  options: TenancyOptions<Req>,
  req: Req,
  res: ServerResponse,
  next: (ctx: TenantContext) => void,
): Promise<void> {
  const controller = new AbortController();
  // Listened to from the start: a client may go away while the tenant is being looked up.
  const closed = new Promise<void>((resolve) => {
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(clientGone());
      resolve();
    });
  });
  const ref = await options.tenant(req);
  if (typeof ref !== 'string' || ref.length === 0) throw new TenantDbError('VALIDATION', 'the request names no tenant');
  let userId: string | undefined;
  if (options.user) {
    const user = await options.user(req);
    if (typeof user !== 'string' || user.length === 0) throw new TenantDbError('FORBIDDEN', 'the request has no acting user');
    userId = user;
  }
  await platform.withTenant(
    ref,
    (ctx) => {
      next(ctx);
      return closed;
    },
    { userId, signal: controller.signal },
  );
}

/** Validates the options both integrations take. @internal */
export function checkTenancyOptions(platform: unknown, options: unknown): void {
  if (typeof (platform as TenancyPlatform | undefined)?.withTenant !== 'function') {
    throw new TenantDbError('VALIDATION', 'tenancy needs a platform from createPlatform()');
  }
  const o = options as TenancyOptions<unknown> | undefined;
  if (typeof o?.tenant !== 'function') throw new TenantDbError('VALIDATION', 'tenancy needs a tenant(req) function');
  if (o.user !== undefined && typeof o.user !== 'function') throw new TenantDbError('VALIDATION', 'user must be a function');
}

/** The HTTP answer to a {@link TenantDbError}, the same in both integrations. */
export interface ErrorResponse {
  status: number;
  /** `Retry-After` (seconds) for an error worth retrying (`retryable`: UNAVAILABLE, a lost connection). */
  headers: Record<string, string>;
  body: { error: { code: string; message: string; retryable: boolean } };
}

/** Status, headers and body for a {@link TenantDbError}. @internal */
export function errorResponse(err: TenantDbError): ErrorResponse {
  return {
    status: HTTP_STATUS[err.code],
    headers: err.retryable ? { 'retry-after': '1' } : {},
    body: { error: { code: err.code, message: err.message, retryable: err.retryable } },
  };
}
