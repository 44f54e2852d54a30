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
});

// A registry-wide symbol, so that the ESM and the CJS copies of this class (which are two different
// classes when a process loads both builds) recognise each other's instances.
const BRAND = Symbol.for('@org/tenantdb/TenantDbError');

/**
 * Every failure the library raises. `code` is stable; the driver's or SDK's error, if any, is `cause`.
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

  constructor(code: TenantDbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return 'TenantDbError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/**
 * `err` as a {@link TenantDbError}: itself when it already is one, else DATABASE with `err` as the cause
 * (a connection lost, a server restarted, a statement refused by something the library did not expect).
 * @internal
 */
export function asTenantDbError(err: unknown): TenantDbError {
  if (err instanceof TenantDbError) return err;
  return new TenantDbError('DATABASE', 'the database failed unexpectedly (see cause)', { cause: err });
}

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
