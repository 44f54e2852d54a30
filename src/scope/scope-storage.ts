import { AsyncLocalStorage } from 'node:async_hooks';
import type { TenantContext } from './types.js';

// One store per process, shared by the ESM and the CJS builds (and by every entry point, each bundled on
// its own) when an app loads several, so that `currentTenant()` from any of them sees a scope opened by another.
const STORE_KEY = Symbol.for('@org/tenantdb/scope');
const globals = globalThis as unknown as Record<symbol, AsyncLocalStorage<TenantContext> | undefined>;

/** The store of tenant scopes. @internal */
export const scopeStorage: AsyncLocalStorage<TenantContext> = (globals[STORE_KEY] ??= new AsyncLocalStorage<TenantContext>());

/** `fn` outside any tenant scope: `currentTenant()` is `undefined` in it, whatever scope the caller is in. @internal */
export function outsideTenant<T>(fn: () => T): T {
  return scopeStorage.exit(fn);
}
