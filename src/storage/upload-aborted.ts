import { TenantDbError } from '../errors.js';

/**
 * The error of an upload whose `signal` was aborted: STORAGE (the object was not stored), never
 * `retryable` (the caller asked for it, even when the reason is a timeout), with the signal's reason as
 * `cause`, so that `err.cause === signal.reason` tells a caller's own abort from a failure of the store.
 *
 * @example
 * ```ts
 * if (signal?.aborted) throw uploadAbortedError(signal);
 * ```
 */
export function uploadAbortedError(signal: AbortSignal): TenantDbError {
  return new TenantDbError('STORAGE', 'upload aborted', { cause: signal.reason, retryable: false });
}

/** True when `value` looks like an `AbortSignal` (from this realm or another). */
export function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function' &&
    typeof (value as AbortSignal).removeEventListener === 'function'
  );
}
