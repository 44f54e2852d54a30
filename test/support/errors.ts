import { expect } from 'vitest';
import { TenantDbError, type TenantDbErrorCode } from '../../src/errors.js';

/** The TenantDbError `promise` rejects with; fails the test if it resolves or rejects with anything else. */
export async function rejectionOf(promise: Promise<unknown>): Promise<TenantDbError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TenantDbError);
  return err as TenantDbError;
}

/** The code of the TenantDbError `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejectionCode(promise: Promise<unknown>): Promise<TenantDbErrorCode> {
  return (await rejectionOf(promise)).code;
}

/** The code of the TenantDbError `fn` throws; fails the test if it returns or throws anything else. */
export function thrownCode(fn: () => unknown): TenantDbErrorCode {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TenantDbError);
  return (err as TenantDbError).code;
}

/** The `code` of the error and of each error in its cause chain (a driver's `28P01`, a socket's `ECONNREFUSED`). */
export function causeCodes(err: unknown): unknown[] {
  const codes: unknown[] = [];
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    codes.push((e as { code?: unknown }).code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}
