import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { TenantDbError } from '../errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { connectFailure, isMissingDatabase, isRefusedStartupParameter, isSingleStatement } from '../util/pg-errors.js';
import { ConnectionBudget, type SlotSource } from './connection-budget.js';
import { chooseEvictions } from './eviction.js';
import { FrequencySketch } from './frequency-sketch.js';
import { inBoth, SharedBudget } from './shared-budget.js';
import { lend, lendForOneQuery, RELEASED, type Lease } from './lease.js';
import { answersSoFar, endedBeforeAnswering } from './pg-internals.js';
import { drainPools, TenantPool, type ServerSettings, type TenantPoolSettings } from './tenant-pool.js';
import type {
  BudgetStats,
  PoolKey,
  PooledClient,
  PoolManagerStats,
  Queryable,
  SharedBudgetSettings,
  TenantPoolManagerExtras,
  TenantPoolManagerOptions,
} from './types.js';

export type {
  BudgetStats,
  ConnectionStats,
  PoolKey,
  PooledClient,
  PoolManagerStats,
  PoolStats,
  Queryable,
  SharedBudgetControl,
  SharedBudgetSettings,
  SharedBudgetStats,
  TenantPoolManagerExtras,
  TenantPoolManagerOptions,
} from './types.js';

/**
 * The tenant pool manager: `pg.Pool`s, one per tenant database, inside a hard connection budget that is
 * also the cache of idle connections.
 *
 * - Each pool opens at most `maxConnectionsPerTenant` connections, and all pools of one tenant server
 *   (the keys' `serverName`), evicted ones included, at most `maxConnections`, at every instant: one budget
 *   per server, as PostgreSQL's `max_connections` is. A pool left without connections is dropped.
 * - Callers that find their server's budget full wait in FIFO order, and the least valuable idle
 *   connections of that server are closed for them (see chooseEvictions: the databases asked for least
 *   often lately, by a frequency sketch, then the least recently used). After `acquireTimeoutMs` a waiter
 *   gets UNAVAILABLE. A server that hangs holds only its own budget: other servers' callers never wait for it.
 * - With `maxTenantPools`, at most that many pools are kept; the least recently used is evicted and
 *   drains: its checked-out clients finish their work, then it ends.
 * - Pools idle for `idleMs` are closed. No timer of the manager keeps the process alive.
 * - Every pool and every lent client has an `'error'` listener: a killed backend or a restarted server
 *   is logged, never crashes the host, and the next call reconnects.
 * - Clients go back clean: one left inside a transaction is rolled back, or destroyed if that fails.
 *
 * @example
 * ```ts
 * const pools = new TenantPoolManager(options.pool, logger);
 * const { rows } = await pools.query({ server: 'postgres://u:p@db1:5432', database: 'tenant_acme_1a2b3c4d' }, 'select 1');
 * await pools.close();
 * ```
 */
export class TenantPoolManager {
  readonly #options: Required<Omit<TenantPoolManagerOptions, 'statementTimeoutMs' | 'maxTenantPools'>> & {
    statementTimeoutMs: number | undefined;
    maxTenantPools: number | undefined;
  };
  /** How often each tenant database was asked for lately: what an eviction keeps (see #reclaim). */
  readonly #frequency: FrequencySketch;
  readonly #logger: Logger;
  readonly #servers = new Map<string, ServerSettings>();
  /** `BEGIN` with the settings of every transaction, one round trip: for servers that take startup parameters, and for those that do not. */
  readonly #begin: { startup: string; local: string };
  readonly #drainTimeoutMs: number;
  /** One budget per tenant server, by name (see budgetName), created on first use. */
  readonly #budgets = new Map<string, ServerBudget>();
  /** What every pool is told, but its server and its budget (see #budgetOf). */
  readonly #poolSettings: Omit<TenantPoolSettings, 'server' | 'budget' | 'slots' | 'budgetWanted' | 'returned'>;
  readonly #shared: SharedBudgetSettings | undefined;
  readonly #onBudgetWait: TenantPoolManagerExtras['onBudgetWait'];
  readonly #cache: LRUCache<string, TenantPool>;
  /** Pools out of the cache whose connections are not all closed yet. */
  readonly #draining = new Set<TenantPool>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: TenantPoolManagerOptions, logger: Logger = silentLogger, extras: TenantPoolManagerExtras = {}) {
    this.#options = {
      ...options,
      maxTenantPools: options.maxTenantPools,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      statementTimeoutMs: options.statementTimeoutMs,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs ?? 60_000,
    };
    const idle = this.#options.idleInTransactionTimeoutMs;
    const statement = this.#options.statementTimeoutMs;
    // SET LOCAL only: a plain SET would outlive the transaction on a pooled server connection and reach other clients.
    const startup = `BEGIN${idle > 0 ? `; SET LOCAL idle_in_transaction_session_timeout = ${idle}` : ''}`;
    this.#begin = { startup, local: `${startup}${statement === undefined ? '' : `; SET LOCAL statement_timeout = ${statement}`}` };
    this.#logger = logger;
    this.#drainTimeoutMs = extras.drainTimeoutMs ?? 10_000;
    this.#shared = extras.sharedBudget;
    this.#onBudgetWait = extras.onBudgetWait;
    this.#frequency = new FrequencySketch(options.maxConnections);
    this.#poolSettings = {
      max: options.maxConnectionsPerTenant,
      idleMs: options.idleMs,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      statementTimeoutMs: statement,
      logger,
      // A pool left without connections holds no budget: drop it, so the budget alone bounds the pools.
      emptied: (pool) => this.#forgetIfEmpty(pool),
      closed: (pool) => this.#draining.delete(pool),
    };
    this.#cache = new LRUCache<string, TenantPool>({
      // Without maxTenantPools the budget bounds the pools: one without connections is dropped (see
      // #forgetIfEmpty), so the cache holds about as many pools as the budget has connections.
      max: options.maxTenantPools ?? Math.max(1_000, options.maxConnections * 10),
      // Synchronous by contract: start the drain here, await it in close().
      dispose: (pool, _id, reason) => {
        if (reason === 'evict') this.#evictions++;
        this.#draining.add(pool);
        pool.retire();
      },
    });
  }

  /**
   * Lends a client of the tenant database, inside the budget. FIFO wait when the budget is full; after
   * `acquireTimeoutMs` → UNAVAILABLE, never exceeding the budget. A database that does not exist →
   * NOT_FOUND; a server that cannot be reached (or a connect timeout) → UNAVAILABLE; after `close()` → CLOSED.
   */
  async acquire(key: PoolKey): Promise<PooledClient> {
    const lease = await this.#lease(key);
    return {
      client: lease.client,
      release: (err) => {
        void lease.finish(err);
      },
    };
  }

  /**
   * acquire → fn(client) → release in finally. The client always goes back clean: if `fn` left it
   * inside a transaction (or an aborted one) it is rolled back, or destroyed if that fails; a client
   * that emitted `'error'` is destroyed. Errors of `fn` (e.g. the caller's SQL) pass through untouched.
   */
  withClient<T>(key: PoolKey, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withLease(key, (lease) => fn(lease.client));
  }

  /**
   * One query on a pooled client (withClient shorthand). Behind a pooler that refuses startup parameters,
   * with `statementTimeoutMs` set, the query runs in a transaction of its own that carries the timeout.
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(key: PoolKey, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.#query<R>(key, sql, params, 0);
  }

  /** {@link query}, on its `attempt`th connection (see #mayRetry). */
  #query<R extends pg.QueryResultRow>(key: PoolKey, sql: string, params: unknown[] | undefined, attempt: number): Promise<pg.QueryResult<R>> {
    if (!this.#closed) {
      const pool = this.#poolFor(key);
      if (pool.idle > 0 && !(pool.server.local && this.#options.statementTimeoutMs !== undefined)) {
        return this.#queryIdle<R>(pool, sql, params, attempt);
      }
    }
    let retry = false;
    return this.#withLease(key, (lease) => {
      const before = answersSoFar(lease.client);
      const running =
        lease.local && this.#options.statementTimeoutMs !== undefined
          ? this.#inTransaction(lease, (tx) => tx.query<R>(sql, params))
          : lease.client.query<R>(sql, params);
      return running.catch((err: unknown) => {
        retry = this.#mayRetry(err, lease.client, before, sql, params, attempt);
        throw err;
      });
    }).catch((err: unknown) => {
      if (!retry) throw err;
      return this.#query<R>(key, sql, params, attempt + 1);
    });
  }

  /**
   * True when a query that failed on `client` may go again on another connection: the server had ended the
   * session before it answered anything to it (a backend terminated while idle in the pool, whose FATAL had
   * not reached us yet), so it never ran. Only a single statement with parameters (the extended protocol,
   * whose Parse the server answers before running anything), a few times at most: each try drops one dead
   * idle connection. A statement the server had begun to answer (parsed, running) fails as it did.
   */
  #mayRetry(err: unknown, client: pg.ClientBase, answersBefore: number | undefined, sql: string, params: unknown[] | undefined, attempt: number): boolean {
    if (attempt >= this.#options.maxConnectionsPerTenant || this.#closed) return false;
    if (!Array.isArray(params) || params.length === 0 || !isSingleStatement(sql)) return false;
    if (!endedBeforeAnswering(err, client, answersBefore)) return false;
    this.#logger.debug({ err: (err as Error).message }, 'a pooled tenant connection had been ended by the server; the query goes on another');
    return true;
  }

  /**
   * `fn` in a transaction on one pooled client: committed when `fn` returns, rolled back when it throws
   * (`fn`'s error passes untouched). The transaction carries `idleInTransactionTimeoutMs` (and, behind a
   * pooler, `statementTimeoutMs`) with `SET LOCAL`, in the same round trip as its `BEGIN`.
   */
  transaction<T>(key: PoolKey, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#transaction(key, fn, 0);
  }

  /**
   * {@link transaction} on its `attempt`th connection: a BEGIN that finds the session already ended by the
   * server (a backend terminated while idle in the pool) goes again on another one; `fn` has not run yet.
   */
  async #transaction<T>(key: PoolKey, fn: (tx: Queryable) => Promise<T>, attempt: number): Promise<T> {
    const lease = await this.#lease(key);
    const before = answersSoFar(lease.client);
    try {
      await lease.client.query(lease.local ? this.#begin.local : this.#begin.startup);
    } catch (err) {
      await lease.finish();
      const retry = attempt < this.#options.maxConnectionsPerTenant && !this.#closed && endedBeforeAnswering(err, lease.client, before);
      if (!retry) throw err;
      return this.#transaction(key, fn, attempt + 1);
    }
    return this.#finishing(lease, () => this.#inTransaction(lease, fn, true));
  }

  /**
   * The hot path of a warm tenant: an idle client, one query. Callbacks all the way (pg-pool's connect,
   * pg's query) and one promise, so that a query costs about what `pg.Pool.query` costs.
   */
  #queryIdle<R extends pg.QueryResultRow>(
    pool: TenantPool,
    sql: string,
    params: unknown[] | undefined,
    attempt: number,
  ): Promise<pg.QueryResult<R>> {
    pool.pending++;
    this.#askedFor(pool);
    this.#hits++;
    return new Promise((resolve, reject) => {
      pool.pool.connect((connectErr, client) => {
        pool.settledConnect();
        if (connectErr || !client) {
          this.#forgetIfEmpty(pool);
          reject(this.#connectError(connectErr, pool));
          return;
        }
        pool.leases++;
        const giveBack = lendForOneQuery(pool.owner, client);
        const before = answersSoFar(client);
        client.query<R>(sql, params as unknown[], (queryErr, result) => {
          const finished = giveBack();
          const settle = (): void => {
            if (!queryErr) resolve(result);
            else if (this.#mayRetry(queryErr, client, before, sql, params, attempt)) this.#query<R>(pool.key, sql, params, attempt + 1).then(resolve, reject);
            else reject(queryErr);
          };
          if (finished === RELEASED) settle();
          else void finished.then(settle);
        });
      });
    });
  }

  /** A lease of the key's pool, for `fn` (see #finishing). */
  async #withLease<T>(key: PoolKey, fn: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = await this.#lease(key);
    return this.#finishing(lease, fn);
  }

  /** fn(lease) → finish, also when `fn` throws; a clean client is back without an extra turn. */
  async #finishing<T>(lease: Lease, fn: (lease: Lease) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await fn(lease);
    } catch (err) {
      await lease.finish();
      throw err;
    }
    const finished = lease.finish();
    if (finished !== RELEASED) await finished;
    return result;
  }

  async #inTransaction<T>(lease: Lease, fn: (tx: Queryable) => Promise<T>, begun = false): Promise<T> {
    const { client } = lease;
    if (!begun) await client.query(lease.local ? this.#begin.local : this.#begin.startup);
    let result: T;
    try {
      result = await fn({ query: (sql, params) => client.query(sql, params) });
    } catch (err) {
      // fn's error is the one to report. A rollback that fails too (the connection died) is dropped: the
      // lease then finds the client not idle, or failed, and destroys it rather than reuse it.
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
    await client.query('COMMIT');
    return result;
  }

  /**
   * Ends the pool of one database now (used before DROP DATABASE): waits for its checked-out clients up
   * to `drainTimeoutMs`, then destroys their connections. A later acquire opens a fresh pool.
   */
  async endPool(key: PoolKey): Promise<void> {
    const id = cacheKey(key);
    this.#cache.delete(id);
    const pools = [...this.#draining].filter((pool) => pool.id === id);
    for (const pool of pools) pool.endNow(new TenantDbError('UNAVAILABLE', `the pool of ${pool.label} was ended`));
    await drainPools(pools, this.#drainTimeoutMs, this.#logger);
  }

  /** Pool and connection counters (sync), in total and per server budget. */
  stats(): PoolManagerStats {
    const servers: Record<string, BudgetStats> = {};
    let open = 0;
    let max = 0;
    for (const [name, { budget, shared }] of this.#budgets) {
      servers[name] = { open: budget.inUse, max: budget.max, waiting: budget.waiting + (shared?.waiting ?? 0) };
      if (shared) servers[name].shared = { held: shared.held, max: shared.max };
      open += budget.inUse;
      max += budget.max;
    }
    return {
      pools: {
        open: this.#cache.size + this.#draining.size,
        max: this.#options.maxTenantPools ?? Math.max(this.#options.maxConnections, max),
        hits: this.#hits,
        misses: this.#misses,
        evictions: this.#evictions,
      },
      connections: { open, max },
      servers,
    };
  }

  /**
   * Ends every pool (evicted ones still draining too) and waits until their connections are closed;
   * clients still lent out after `drainTimeoutMs` are destroyed. Idempotent; later acquires → CLOSED.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as {@link TenantPoolManager.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
    for (const { budget, shared } of this.#budgets.values()) {
      budget.close();
      shared?.stop();
    }
    this.#cache.clear();
    const pools = [...this.#draining];
    for (const pool of pools) pool.endNow(new TenantDbError('CLOSED', 'the tenant pool manager was closed'));
    await drainPools(pools, this.#drainTimeoutMs, this.#logger);
    // Last: ending a control connection gives back every slot it still held.
    await Promise.all([...this.#budgets.values()].map(({ shared }) => shared?.close()));
  }

  async #lease(key: PoolKey): Promise<Lease> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new TenantDbError('CLOSED', 'the tenant pool manager was closed');
      const pool = this.#poolFor(key);
      try {
        const client = await this.#connect(pool);
        pool.leases++;
        return lend(pool.owner, client);
      } catch (err) {
        // A pooler that refuses startup parameters (PgBouncer: 08P01): connect without them from now on,
        // and send the settings with each transaction instead. The failed pool may be gone: look again.
        if (attempt > 0 || !isRefusedStartupParameter(err) || pool.server.local) throw this.#connectError(err, pool);
        pool.server.local = true;
        this.#logger.info({ db: pool.label }, 'the server refuses startup parameters (a pooler?): timeouts go with each transaction');
      }
    }
  }

  /** The cached pool of `key`, created on a miss. Synchronous, so parallel first calls share one pool. */
  #poolFor(key: PoolKey): TenantPool {
    const id = cacheKey(key);
    const cached = this.#cache.get(id);
    if (cached) return cached;
    let server = this.#servers.get(key.server);
    if (!server) {
      server = { local: false };
      this.#servers.set(key.server, server);
    }
    const pool = new TenantPool(id, key, { ...this.#budgetOf(key).poolSettings, server });
    this.#cache.set(id, pool);
    return pool;
  }

  /** The budget of the key's server, created on first use with what its pools are told. */
  #budgetOf(key: PoolKey): ServerBudget {
    const name = budgetName(key);
    const existing = this.#budgets.get(name);
    if (existing) return existing;
    const onBudgetWait = this.#onBudgetWait;
    const budget = new ConnectionBudget(this.#options.maxConnections, {
      timeoutMs: this.#options.acquireTimeoutMs,
      onWait: () => this.#scheduleReclaim(created),
      onWaited: onBudgetWait && ((ms, err, failed) => onBudgetWait(name, ms, err, failed, 'local')),
    });
    const sharedSettings = this.#shared;
    const control = sharedSettings?.control(name);
    const shared =
      sharedSettings &&
      control &&
      new SharedBudget({
        ...control,
        max: sharedSettings.maxConnections,
        timeoutMs: this.#options.acquireTimeoutMs,
        logger: this.#logger,
        onWait: () => this.#scheduleReclaim(created),
        onShortfall: () => this.#shed(created),
        // Connections already closing free slots anyway.
        onOthersWaiting: (count) => {
          if (!this.#closed) this.#closeIdle(created, count - (shared?.closing ?? 0));
        },
      });
    const slots: SlotSource = shared ? inBoth(budget, shared, onBudgetWait && ((ms, err, failed) => onBudgetWait(name, ms, err, failed, 'shared'))) : budget;
    const created: ServerBudget = {
      name,
      budget,
      shared,
      reclaimScheduled: false,
      poolSettings: {
        ...this.#poolSettings,
        budget,
        slots,
        budgetWanted: () => this.#budgetWanted(created),
        returned: (client, destroy) => {
          this.#giveBack(created, client, destroy);
          this.#scheduleSweep();
        },
      },
    };
    this.#budgets.set(name, created);
    return created;
  }

  /** Notes a request for `pool`'s database: what eviction weighs (recency, and frequency in the sketch). */
  #askedFor(pool: TenantPool): void {
    pool.lastUsed = Date.now();
    this.#frequency.increment(pool.hash);
  }

  /** A client of `pool`, counted as a hit (served on a connection already open) or a miss (one opens for it). */
  #connect(pool: TenantPool): Promise<pg.PoolClient> {
    this.#askedFor(pool);
    const forget = (err: Error): never => {
      this.#forgetIfEmpty(pool);
      throw err;
    };
    if (pool.idle > 0) {
      this.#hits++;
      return pool.connectIdle().catch(forget);
    }
    // A busy pool at its bound serves this caller on a connection given back: a hit, after a wait.
    if (pool.pool.totalCount < this.#options.maxConnectionsPerTenant) this.#misses++;
    else this.#hits++;
    return pool.connectWithin(this.#options.acquireTimeoutMs).catch(forget);
  }

  /** Returns a client to its pool, or destroys it; a client given back while its budget has waiters is closed for them. */
  #giveBack(server: ServerBudget, client: pg.PoolClient, destroy: Error | boolean): void {
    client.release(destroy === false ? undefined : destroy);
    // Someone waits for a slot: the least valuable idle connection of that server goes (this one, if it is that).
    if (this.#budgetWanted(server)) this.#scheduleReclaim(server);
  }

  /** True when callers wait for a connection slot of the server that no closing connection will free. */
  #budgetWanted(server: ServerBudget): boolean {
    return this.#reclaimNeed(server) > 0;
  }

  /**
   * Slots of the server's budget wanted by waiters beyond those that closing connections will free; with a
   * shared budget, the larger of its own and the shared one's (one closing connection frees a slot of each).
   */
  #reclaimNeed({ budget, shared }: ServerBudget): number {
    const local = budget.waiting - budget.closing;
    return shared ? Math.max(local, shared.wanting - shared.closing) : local;
  }

  #connectError(err: unknown, pool: TenantPool): TenantDbError {
    if (err instanceof TenantDbError) return err;
    if (this.#closed) return new TenantDbError('CLOSED', 'the tenant pool manager was closed', { cause: err });
    if (isMissingDatabase(err)) {
      return new TenantDbError('NOT_FOUND', `tenant database ${pool.label} does not exist`, { cause: err });
    }
    return connectFailure(err, `tenant database ${pool.label}`);
  }

  /** A pool that holds nothing (its connection failed, or its last one closed) is dropped from the cache. */
  #forgetIfEmpty(pool: TenantPool): void {
    if (!pool.empty) return;
    if (this.#cache.peek(pool.id) === pool) this.#cache.delete(pool.id);
  }

  #scheduleReclaim(server: ServerBudget): void {
    if (server.reclaimScheduled) return;
    server.reclaimScheduled = true;
    // Deferred: the budget calls us from inside pg-pool's connect path.
    process.nextTick(() => {
      server.reclaimScheduled = false;
      this.#reclaim(server);
    });
  }

  /**
   * Someone waits for a slot of the server's budget: close the least valuable idle connections of that
   * server (closing another server's frees nothing for this waiter).
   */
  #reclaim(server: ServerBudget): void {
    const need = this.#reclaimNeed(server);
    if (need <= 0 || this.#closed) return;
    this.#closeIdle(server, need);
  }

  /**
   * The control connection of the server's shared budget was lost and not every slot could be taken again:
   * close as many connections, idle ones first, then lent ones (their query fails), so that the processes
   * together stay within the shared budget.
   */
  #shed(server: ServerBudget): void {
    let need = server.shared?.shortfall ?? 0;
    if (need <= 0 || this.#closed) return;
    const idle = this.#closeIdle(server, need);
    need -= idle;
    let busy = 0;
    for (const pool of [...this.#cache.values(), ...this.#draining]) {
      if (need <= 0) break;
      if (pool.budget !== server.budget) continue;
      const closed = pool.forceCloseOpen(need);
      busy += closed;
      need -= closed;
    }
    this.#logger.warn({ server: server.shared?.label, idle, busy }, 'closed tenant connections whose shared-budget slot was lost');
  }

  /** Closes up to `need` idle connections of the server, the least valuable first; returns how many. */
  #closeIdle(server: ServerBudget, need: number): number {
    let closed = 0;
    // The least valuable idle connections go first (see chooseEvictions): the frequency sketch knows
    // which databases were asked for least often lately.
    const candidates = [...this.#cache.values()].filter((pool) => pool.budget === server.budget).map((pool) => ({
      pool,
      idle: pool.idle,
      frequency: this.#frequency.frequency(pool.hash),
      lastUsed: pool.lastUsed,
    }));
    for (const [{ pool }, count] of chooseEvictions(candidates, need)) {
      if (count === pool.idle && pool.unused) {
        // Wholly idle: evict the pool, which closes its idle connections.
        this.#evictions += count;
        closed += count;
        this.#cache.delete(pool.id);
      } else {
        const some = pool.closeIdle(count);
        this.#evictions += some;
        closed += some;
      }
    }
    return closed;
  }

  #scheduleSweep(): void {
    if (this.#sweepTimer || this.#closed) return;
    this.#sweepAt(this.#options.idleMs);
  }

  #sweepAt(delayMs: number): void {
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweep();
    }, delayMs);
    this.#sweepTimer.unref();
  }

  /** Closes pools nobody used for idleMs; re-arms for the next one due. */
  #sweep(): void {
    if (this.#closed) return;
    const now = Date.now();
    let next = Infinity;
    for (const pool of [...this.#cache.values()]) {
      if (pool.leases > 0 || pool.pending > 0) continue; // re-armed when given back
      const due = pool.lastUsed + this.#options.idleMs;
      if (due <= now) {
        this.#logger.debug({ db: pool.label }, 'closing idle tenant pool');
        this.#cache.delete(pool.id);
      } else {
        next = Math.min(next, due);
      }
    }
    if (next !== Infinity) this.#sweepAt(Math.max(1, next - now));
  }
}

/** A tenant server's connection budget, and what the pools counted against it are told. */
interface ServerBudget {
  readonly name: string;
  readonly budget: ConnectionBudget;
  /** With `sharedBudget`: this process's share of the budget every process shares on the server. */
  readonly shared: SharedBudget | undefined;
  readonly poolSettings: Omit<TenantPoolSettings, 'server'>;
  reclaimScheduled: boolean;
}

/** The name of the budget a key's connections count against: its server's name, else its server URL. */
function budgetName(key: PoolKey): string {
  return key.serverName ?? key.server;
}

/**
 * The cache key of a tenant database (and of the role it is reached as: a new password is a new pool).
 * NUL can appear in neither a URL nor a database name.
 */
function cacheKey(key: PoolKey): string {
  const base = `${key.server}\u0000${key.database}`;
  if (!key.role) return base;
  let id = roleKeys.get(key);
  if (id === undefined) {
    id = `${base}\u0000${key.role.user}\u0000${createHash('sha256').update(key.role.password).digest('base64url')}`;
    roleKeys.set(key, id);
  }
  return id;
}

/** The cache keys of keys with a role, hashed once per key object (scopes reuse theirs). */
const roleKeys = new WeakMap<PoolKey, string>();
