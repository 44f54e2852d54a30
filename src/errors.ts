/**
 * The stable error codes of `@org/tenantdb`. Match on `error.code`, never on the message.
 */
export const ERROR_CODES = [
  'VALIDATION',
  'INVALID_CREDENTIALS',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'TENANT_INACTIVE',
  'TENANT_NOT_READY',
  'MIGRATION_FAILED',
  'STORAGE',
  'CLOSED',
  'DATABASE',
  'UNAVAILABLE',
] as const;

/** One of {@link ERROR_CODES}. */
export type TenantDbErrorCode = (typeof ERROR_CODES)[number];

/** The HTTP status each code maps to in the framework integrations. */
export const HTTP_STATUS: Readonly<Record<TenantDbErrorCode, number>> = Object.freeze({
  VALIDATION: 400,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TENANT_INACTIVE: 423,
  TENANT_NOT_READY: 503,
  MIGRATION_FAILED: 500,
  STORAGE: 502,
  CLOSED: 500,
  DATABASE: 503,
  UNAVAILABLE: 503,
});

// A registry-wide symbol, so that the ESM and the CJS copies of this class (which are two different
// classes when a process loads both builds) recognise each other's instances.
const BRAND = Symbol.for('@org/tenantdb/TenantDbError');

/** Options of the {@link TenantDbError} constructor. */
export interface TenantDbErrorOptions {
  /** The driver's or SDK's error behind this one. */
  cause?: unknown;
  /** Whether the same call may succeed if tried again later. Default: see {@link TenantDbError.retryable}. */
  retryable?: boolean;
}

// SQLSTATEs that say the connection or the server went away, or a timeout fired: trying again may work.
const TRANSIENT_SQLSTATE = /^(08|53300|57P0[123]|57014|25P03|40001|40P01)/;
// Node's socket errors of a lost or refused connection.
const TRANSIENT_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);
// What pg and pg-pool say, without a code, when a connection ends or a connect times out.
const TRANSIENT_MESSAGE = /Connection terminated|timeout expired|timeout exceeded|connection timeout|Client has encountered a connection error/i;

/**
 * True when `err` (or an error in its `cause` chain) is a lost connection or a timeout: a pg error of
 * SQLSTATE class 08, a server shutting down (57P01–57P03), a statement or idle-in-transaction timeout
 * (57014, 25P03), too many connections (53300), a serialization failure or deadlock (40001, 40P01); a
 * socket error (ECONNRESET, ECONNREFUSED, …); an AWS SDK error the SDK marks retryable, a timeout or a 5xx.
 * @internal
 */
export function isTransientError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const { code, message, name, $retryable, $metadata } = e as {
      code?: unknown;
      message?: unknown;
      name?: unknown;
      $retryable?: unknown;
      $metadata?: { httpStatusCode?: unknown };
    };
    if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_ERRNO.has(code))) return true;
    if (typeof message === 'string' && TRANSIENT_MESSAGE.test(message)) return true;
    if ($retryable !== undefined && $retryable !== null) return true;
    if (name === 'TimeoutError' || name === 'RequestTimeout' || name === 'SlowDown') return true;
    const status = $metadata?.httpStatusCode;
    if (typeof status === 'number' && status >= 500) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Every failure the library raises. `code` is stable; the driver's or SDK's error, if any, is `cause`;
 * `retryable` says whether trying the same call again later may succeed.
 *
 * `instanceof TenantDbError` holds across the ESM and CommonJS builds.
 *
 * @example
 * ```ts
 * try { await platform.users.authenticate(email, password); }
 * catch (err) { if (err instanceof TenantDbError && err.code === 'INVALID_CREDENTIALS') … }
 * ```
 */
export class TenantDbError extends Error {
  /** The stable code, one of {@link ERROR_CODES}. */
  readonly code: TenantDbErrorCode;
  /**
   * True when the same call may succeed later: always for UNAVAILABLE; for DATABASE and STORAGE when the
   * cause is a lost connection or a timeout; otherwise false.
   */
  readonly retryable: boolean;

  constructor(code: TenantDbErrorCode, message: string, options?: TenantDbErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable =
      options?.retryable ??
      (code === 'UNAVAILABLE' || ((code === 'DATABASE' || code === 'STORAGE') && isTransientError(options?.cause)));
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return 'TenantDbError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Errors that mean a bug in the code that threw them, never a failure of a database. */
function isProgrammingError(err: unknown): boolean {
  return (
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError ||
    err instanceof EvalError ||
    err instanceof URIError ||
    (err instanceof Error && err.name === 'AssertionError')
  );
}

/** True when `err` says a server could not be reached (refused, reset, timed out): worth another server. */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof TenantDbError) return err.code === 'UNAVAILABLE' || ((err.code === 'DATABASE' || err.code === 'TENANT_NOT_READY') && isTransientError(err.cause));
  return isTransientError(err);
}

/**
 * `err` as a {@link TenantDbError}: itself when it already is one, else DATABASE with `err` as the cause
 * (a connection lost, a server restarted, a statement refused by something the library did not expect).
 * A bug (a `TypeError`, `RangeError`, …) is returned as it is: it is not a database failure. A wait for a
 * free main-database connection that timed out is UNAVAILABLE.
 * @internal
 */
export function asTenantDbError(err: unknown): TenantDbError | Error {
  if (err instanceof TenantDbError || isProgrammingError(err)) return err as Error;
  // pg-pool gave up waiting for a free connection of the main pool (`acquireTimeoutMs`): retry later.
  if (err instanceof Error && err.message === POOL_WAIT_TIMEOUT) {
    return new TenantDbError('UNAVAILABLE', 'no main-database connection became free in time (pool.acquireTimeoutMs)', { cause: err });
  }
  return new TenantDbError('DATABASE', 'the database failed unexpectedly (see cause)', { cause: err });
}

/** What pg-pool's `connect()` rejects with once `connectionTimeoutMillis` passed without a free client. */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

/**
 * The same object, with every method that returns a promise rejecting only with {@link TenantDbError}s
 * (see {@link asTenantDbError}). For the services whose every error is the library's own.
 * @internal
 */
export function withTenantDbErrors<T extends object>(service: T): T {
  return new Proxy(service, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (err) {
          throw asTenantDbError(err);
        }
        return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(asTenantDbError(err))) : result;
      };
    },
  });
}

/** True when `value` is a {@link TenantDbError}, optionally with the given code. */
export function isTenantDbError(value: unknown, code?: TenantDbErrorCode): value is TenantDbError {
  return value instanceof TenantDbError && (code === undefined || value.code === code);
}
