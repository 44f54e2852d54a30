import type pg from 'pg';
import { LRUCache } from 'lru-cache';
import { TenantDbError, asTenantDbError } from '../errors.js';
import type { DocumentsService } from '../documents/types.js';
import { ROLES, type Role } from '../memberships/types.js';
import type { PlatformContext } from '../core/platform-context.js';
import { isAbortSignal } from '../storage/upload-aborted.js';
import { isUuid } from '../util/uuid.js';
import { isClosedOrMissingDatabase, isSessionEndedByServer } from '../util/pg-errors.js';
import type { Tenant } from '../tenants/types.js';
import type { Queryable, TenantContext, WithTenantOptions } from './types.js';
import type { PoolKey } from '../pools/types.js';
import { scopeStorage as storage } from './scope-storage.js';
import type { Operation } from '../telemetry/telemetry.js';

/**
 * The tenant scope the caller runs in: inside `withTenant(tenant, fn)` (also across any `await`), the
 * same `ctx` that `fn` received; outside any scope, `undefined`.
 *
 * @example
 * ```ts
 * async function audit(message: string) {
 *   const ctx = currentTenant();
 *   if (ctx) await ctx.query('INSERT INTO audit (message) VALUES ($1)', [message]);
 * }
 * ```
 */
export function currentTenant(): TenantContext | undefined {
  return storage.getStore();
}


/** What scopes need of the pool manager. */
export interface ScopePools {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(key: PoolKey, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  transaction<T>(key: PoolKey, fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/** What scopes need of the tenant registry. */
export interface ScopeTenants {
  find(idOrDatabaseName: string): Promise<Tenant | undefined>;
  poolKey(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): PoolKey;
  /** Whether a move of the tenant is under way, in any process. */
  isMoving(tenantId: string): Promise<boolean>;
}

/**
 * Where a scope goes on when its tenant's database refused it (see TenantScopes.relocate); with `onlyIfMoving`,
 * only while a move of the tenant is under way (else `err` is thrown).
 */
type Relocate = (tenant: Tenant, key: PoolKey, err: unknown, onlyIfMoving: boolean) => Promise<PoolKey>;

/** How many times one call of a scope goes again after its tenant's database refused it. */
const MAX_RELOCATIONS = 3;

/** A wait for a move's switch (see TenantScopes.block). */
interface MoveWait {
  done: Promise<void>;
  open(): void;
}

class TenantContextImpl implements TenantContext {
  readonly tenant: Tenant;
  readonly role: Role | undefined;
  readonly userId: string | undefined;
  readonly signal: AbortSignal | undefined;
  #key: PoolKey;
  readonly #pools: ScopePools;
  readonly #relocate: Relocate;
  readonly #documentsFactory: (ctx: TenantContext) => DocumentsService;
  #documents: DocumentsService | undefined;

  constructor(
    tenant: Tenant,
    role: Role | undefined,
    userId: string | undefined,
    key: PoolKey,
    pools: ScopePools,
    documents: (ctx: TenantContext) => DocumentsService,
    signal: AbortSignal | undefined,
    relocate: Relocate,
  ) {
    this.tenant = tenant;
    this.role = role;
    this.userId = userId;
    this.signal = signal;
    this.#key = key;
    this.#pools = pools;
    this.#documentsFactory = documents;
    this.#relocate = relocate;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    const run = (): Promise<pg.QueryResult<R>> => this.#pools.query<R>(this.#key, sql, params);
    return run().catch((err: unknown) => this.#again(err, run, 0, true));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const run = (): Promise<T> => this.#pools.transaction(this.#key, fn);
    return run().catch((err: unknown) => this.#again(err, run, 0, false));
  }

  /**
   * A connect refused because the tenant's database is closed or gone (a move blocked or dropped it; nothing
   * ran): the scope reads the registry again and goes on where the tenant is now, a few times at most. So
   * does a single query whose session a move ended under it (the server aborted it: it did not commit).
   */
  async #again<T>(err: unknown, run: () => Promise<T>, attempt: number, single: boolean): Promise<T> {
    if (attempt >= MAX_RELOCATIONS) throw err;
    const refused = err instanceof TenantDbError && isClosedOrMissingDatabase(err);
    if (!refused && !(single && isSessionEndedByServer(err))) throw err;
    this.#key = await this.#relocate(this.tenant, this.#key, err, !refused);
    return run().catch((next: unknown) => this.#again(next, run, attempt + 1, single));
  }

  get documents(): DocumentsService {
    this.#documents ??= this.#documentsFactory(this);
    return this.#documents;
  }
}

/**
 * `withTenant`: resolves and checks the tenant (cached for `cacheMs`, forgotten at once when this
 * process changes it), checks the acting user's membership (never cached), and runs `fn` in the scope.
 * @internal
 */
export class TenantScopes {
  readonly #ctx: PlatformContext;
  readonly #tenants: ScopeTenants;
  readonly #pools: ScopePools;
  readonly #documents: (ctx: TenantContext) => DocumentsService;
  readonly #cache: LRUCache<string, Tenant> | undefined;
  readonly #moveWaitMs: number;
  /** Tenants whose move blocked writes: new scopes wait for the switch (see {@link block}). */
  readonly #moving = new Map<string, MoveWait>();
  /** Scopes running, by tenant id: what a move's block lets finish. */
  readonly #running = new Map<string, number>();
  readonly #relocateFn: Relocate = (tenant, key, err, onlyIfMoving) => this.#relocate(tenant, key, err, onlyIfMoving);
  /** The pool key of each tenant object seen (cached ones are reused): computed once, not per scope. */
  readonly #keys = new WeakMap<Tenant, PoolKey>();
  /** Bumped by every change of a tenant made in this process. */
  #changes = 0;

  constructor(deps: {
    ctx: PlatformContext;
    tenants: ScopeTenants;
    pools: ScopePools;
    documents: (ctx: TenantContext) => DocumentsService;
    cacheMs: number;
    moveWaitMs: number;
  }) {
    this.#ctx = deps.ctx;
    this.#tenants = deps.tenants;
    this.#pools = deps.pools;
    this.#documents = deps.documents;
    this.#cache = deps.cacheMs > 0 ? new LRUCache<string, Tenant>({ max: 10_000, ttl: deps.cacheMs }) : undefined;
    this.#moveWaitMs = deps.moveWaitMs;
  }

  /**
   * A move blocks the tenant's writes: new scopes of it wait (up to `pool.moveWaitMs`) until {@link unblock};
   * resolves once the scopes already running finished, or after `drainMs` (the move then ends their sessions).
   */
  async block(tenantId: string, drainMs: number): Promise<void> {
    if (!this.#moving.has(tenantId)) {
      let open = (): void => {};
      const done = new Promise<void>((resolve) => (open = resolve));
      this.#moving.set(tenantId, { done, open });
    }
    const deadline = Date.now() + drainMs;
    while ((this.#running.get(tenantId) ?? 0) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /** The move switched or was undone: the waiting scopes go on, reading the tenant's row again. */
  unblock(tenantId: string): void {
    const wait = this.#moving.get(tenantId);
    this.#moving.delete(tenantId);
    this.forget(tenantId);
    wait?.open();
  }

  /** Waits for a move's switch, up to `deadline`; UNAVAILABLE after it. */
  async #waitForMove(wait: MoveWait, deadline: number, cause?: unknown): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TenantDbError('UNAVAILABLE', 'the tenant is mid-move: its writes wait for the switch; try again', { cause })),
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      await Promise.race([wait.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The pool key a scope goes on with after its tenant's database refused a connection (`err`): where the
   * registry puts the tenant now, once a move under way has switched (waiting for it up to `pool.moveWaitMs`,
   * then UNAVAILABLE). With no move under way, the same key once more (or, `onlyIfMoving`, `err`); a tenant
   * gone rethrows `err`.
   */
  async #relocate(tenant: Tenant, key: PoolKey, err: unknown, onlyIfMoving: boolean): Promise<PoolKey> {
    const deadline = Date.now() + this.#moveWaitMs;
    if (onlyIfMoving && !this.#moving.has(tenant.id) && !(await this.#tenants.isMoving(tenant.id))) throw err;
    for (;;) {
      const wait = this.#moving.get(tenant.id);
      if (wait) await this.#waitForMove(wait, deadline, err);
      this.forget(tenant.id);
      const fresh = await this.#tenants.find(tenant.id);
      if (!fresh || fresh.status !== 'ready') throw err;
      const next = this.#tenants.poolKey(fresh);
      if (next.server !== key.server || next.database !== key.database || !(await this.#tenants.isMoving(tenant.id))) return next;
      if (Date.now() >= deadline) {
        throw new TenantDbError('UNAVAILABLE', 'the tenant is mid-move: its writes wait for the switch; try again', { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Forgets a tenant (its row changed in this process). */
  forget(id: string): void {
    this.#changes++;
    if (!this.#cache) return;
    for (const [key, tenant] of this.#cache.entries()) if (tenant.id === id) this.#cache.delete(key);
  }

  async #resolve(ref: Tenant | string): Promise<Tenant> {
    const key = typeof ref === 'string' ? ref : ref?.id;
    if (typeof key !== 'string' || key.length === 0) {
      throw new TenantDbError('VALIDATION', 'withTenant needs a tenant, a tenant id or a database name');
    }
    const cached = this.#cache?.get(key);
    const changesBefore = this.#changes;
    if (cached) return cached;
    const tenant = await this.#tenants.find(key);
    if (!tenant) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    // A change made while the row was being read may not be in it: use it this once, but do not keep it.
    if (changesBefore === this.#changes) this.#cache?.set(key, tenant);
    return tenant;
  }

  async #role(tenantId: string, userId: string): Promise<Role> {
    const { rows } = isUuid(userId)
      ? await this.#ctx.main.query<{ role: string | null; is_active: boolean }>(
          `SELECT a.role, u.is_active FROM users u
             LEFT JOIN user_tenant_associations a ON a.user_id = u.id AND a.tenant_id = $2
            WHERE u.id = $1`,
          [userId, tenantId],
        )
      : { rows: [] };
    const row = rows[0];
    if (!row || !row.is_active || !row.role || !(ROLES as readonly string[]).includes(row.role)) {
      throw new TenantDbError('FORBIDDEN', 'the user is not an active member of this tenant');
    }
    return row.role as Role;
  }

  withTenant<T>(ref: Tenant | string, fn: (ctx: TenantContext) => Promise<T> | T, options: WithTenantOptions = {}): Promise<T> {
    const telemetry = this.#ctx.telemetry;
    // Nothing to record (no SDK, no subscriber): the plain path, nothing built.
    if (telemetry === undefined || !telemetry.live('withTenant')) return this.#withTenant(ref, fn, options, undefined);
    return telemetry.run('withTenant', {}, (op) => this.#withTenant(ref, fn, options, op));
  }

  #withTenant<T>(ref: Tenant | string, fn: (ctx: TenantContext) => Promise<T> | T, options: WithTenantOptions, op: Operation | undefined): Promise<T> {
    const { signal } = options;
    // A user id in any case is the same user: the scope keeps it as PostgreSQL prints it (documents compare it).
    const userId = isUuid(options.userId) ? options.userId.toLowerCase() : options.userId;
    try {
      this.#ctx.assertOpen();
      if (typeof fn !== 'function') throw new TenantDbError('VALIDATION', 'withTenant needs a function');
      if (signal !== undefined && !isAbortSignal(signal)) throw new TenantDbError('VALIDATION', 'signal must be an AbortSignal');
    } catch (err) {
      return Promise.reject(err);
    }
    // The warm path: a tenant read moments ago, entered by trusted server code. No await before `fn`.
    if (userId === undefined && this.#cache) {
      const cached = this.#cache.get(typeof ref === 'string' ? ref : ref?.id);
      if (cached?.status === 'ready' && cached.isActive && !this.#moving.has(cached.id)) return this.#run(cached, undefined, undefined, signal, fn, op);
    }
    return this.#enter(ref, fn, userId, signal, op);
  }

  async #enter<T>(
    ref: Tenant | string,
    fn: (ctx: TenantContext) => Promise<T> | T,
    userId: string | undefined,
    signal: AbortSignal | undefined,
    op: Operation | undefined,
  ): Promise<T> {
    let tenant: Tenant;
    let role: Role | undefined;
    try {
      tenant = await this.#resolve(ref);
      op?.set({ tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server });
      const wait = this.#moving.get(tenant.id);
      if (wait) {
        // Mid-move, writes blocked: after the switch the row names the new server.
        await this.#waitForMove(wait, Date.now() + this.#moveWaitMs);
        tenant = await this.#resolve(ref);
      }
      // Inactive first: a tenant being dropped is inactive, and no longer on its way to ready.
      if (!tenant.isActive) throw new TenantDbError('TENANT_INACTIVE', 'the tenant is deactivated');
      if (tenant.status !== 'ready') throw new TenantDbError('TENANT_NOT_READY', 'the tenant database is not ready');
      role = userId === undefined ? undefined : await this.#role(tenant.id, userId);
    } catch (err) {
      // The registry lookups are the library's own: a main database that fails them is DATABASE.
      throw asTenantDbError(err);
    }
    return this.#run(tenant, role, userId, signal, fn, op);
  }

  /** `fn` in the tenant's scope; always a promise, also when `fn` throws or returns a plain value. */
  #run<T>(
    tenant: Tenant,
    role: Role | undefined,
    userId: string | undefined,
    signal: AbortSignal | undefined,
    fn: (ctx: TenantContext) => Promise<T> | T,
    op: Operation | undefined,
  ): Promise<T> {
    op?.set({ tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server });
    let key = this.#keys.get(tenant);
    if (!key) {
      key = this.#tenants.poolKey(tenant);
      this.#keys.set(tenant, key);
    }
    const scope = new TenantContextImpl(tenant, role, userId, key, this.#pools, this.#documents, signal, this.#relocateFn);
    // Counted while it runs: a move's block lets the running scopes finish before it ends their sessions.
    const id = tenant.id;
    this.#running.set(id, (this.#running.get(id) ?? 0) + 1);
    const finished = (): void => {
      const left = this.#running.get(id)! - 1;
      if (left === 0) this.#running.delete(id);
      else this.#running.set(id, left);
    };
    try {
      const running = Promise.resolve(storage.run(scope, () => fn(scope)));
      running.then(finished, finished);
      return running;
    } catch (err) {
      finished();
      return Promise.reject(err);
    }
  }
}
