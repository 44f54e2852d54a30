import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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

/** How long a request whose body an upload gave up on waits for its response before its socket is closed anyway. */
const ANSWER_GRACE_MS = 30_000;

/** How long the socket of such a request stays open, unread, after its response went out. */
const LINGER_MS = 1_000;

/**
 * Closing a socket with unread bytes in its receive buffer makes the kernel reset the connection, and the
 * reset can reach the client before it has read the response sent just before: it then sees ECONNRESET or
 * EPIPE instead of the 400 (a slow machine showed it). Node closes the socket as soon as a `Connection:
 * close` response is flushed (`destroySoon`); for this socket the close comes {@link LINGER_MS} later
 * instead. The response still ends with a FIN, so the client sees it whole at once; nothing more is read.
 */
function lingerBeforeClose(socket: Socket): void {
  const destroySoon = socket.destroySoon;
  socket.destroySoon = function lingering(this: Socket): void {
    socket.destroySoon = destroySoon;
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/**
 * Lets the error response of a request whose body an upload gave up on part way (over
 * `documents.maxBytes`, a store that failed) reach the client. The upload destroys the body it was
 * reading, and destroying an unfinished request destroys its socket: the client would get a connection
 * reset instead of the 400. So, until the response is sent, a destroy of the request only stops reading
 * it: nothing more is read or buffered (the client's writes back up), and the response goes with
 * `Connection: close`, after which the socket closes (see {@link lingerBeforeClose}). Without a response within
 * {@link ANSWER_GRACE_MS}, the request is destroyed after all. A request the client already dropped,
 * that was read to its end, or whose response has begun, is destroyed at once, as before.
 */
function answerBeforeDestroy(request: IncomingMessage, res: ServerResponse): void {
  const destroy = request.destroy;
  let deferred = false;
  const restore = (): void => {
    if (request.destroy === guarded) request.destroy = destroy;
  };
  function guarded(this: IncomingMessage, error?: Error): IncomingMessage {
    // Nothing to wait for: the client is gone, the body was read whole, or the response is under way.
    const gone = request.socket === null || request.socket.destroyed;
    if (request.complete || gone || res.headersSent || res.destroyed) {
      restore();
      return destroy.call(request, error);
    }
    if (!deferred) {
      deferred = true;
      request.unpipe();
      request.pause();
      res.shouldKeepAlive = false;
      lingerBeforeClose(request.socket);
      const timer = setTimeout(() => {
        restore();
        if (!request.destroyed) destroy.call(request, error);
      }, ANSWER_GRACE_MS);
      timer.unref();
      const settle = (): void => {
        clearTimeout(timer);
        restore();
      };
      res.once('finish', settle);
      res.once('close', settle);
    }
    return request;
  }
  request.destroy = guarded;
  res.once('close', restore);
}

/**
 * Opens the tenant scope of a request and calls `next` inside it, so the rest of the request's handling
 * (and anything it awaits) sees `currentTenant()`; the scope ends when the response closes.
 *
 * The scope's `signal` (the default `signal` of its uploads) aborts when the response closes before it
 * was completely sent: the client disconnected, mid-body or while waiting for the answer. An upload
 * streaming the request body then fails and leaves nothing stored. An upload that gives up on the body
 * itself (too large, a store failure) still answers: see {@link answerBeforeDestroy}.
 * @internal
 */
export async function enterRequestScope<Req>(
  platform: TenancyPlatform,
  options: TenancyOptions<Req>,
  req: Req,
  request: IncomingMessage,
  res: ServerResponse,
  next: (ctx: TenantContext) => void,
): Promise<void> {
  answerBeforeDestroy(request, res);
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
