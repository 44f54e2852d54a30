import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { TenantDbError } from '../errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { redactUrl, withDatabase } from '../util/redact.js';
import { budgetedClientClass, type BudgetedClient } from './budgeted-client.js';
import { ConnectionBudget } from './connection-budget.js';
import { chooseEvictions } from './eviction.js';
import { lend, lendForOneQuery, RELEASED, type Lease, type LeaseOwner } from './lease.js';
import { closeIdleClients } from './pg-internals.js';
import { FrequencySketch, type SketchHash } from './frequency-sketch.js';
import { connectFailure, isMissingDatabase, isRefusedStartupParameter } from '../util/pg-errors.js';


/** A tenant database: `server` is a postgres URL without a database (e.g. `postgres://u:p@h:5432`), `database` its name. */
export interface PoolKey {
  server: string;
  database: string;
}

/** A client lent by {@link TenantPoolManager.acquire}. */
export interface PooledClient {
  /** The connection, yours until `release`. */
  client: pg.PoolClient;
  /** Always call once; pass an error or true if the client must be destroyed. */
  release(err?: Error | boolean): void;
}

/** Tenant pool counters. */
export interface PoolStats {
  /** Pools cached plus evicted pools still draining. */
  open: number;
  /** `pool.maxTenantPools`; without it the connection budget, which then bounds the pools. */
  max: number;
  /** Requests served on a connection already open. */
  hits: number;
  /** Requests that had to open a connection. */
  misses: number;
  /** Idle connections closed to make room in the budget, and pools evicted past `maxTenantPools`. */
  evictions: number;
}

/** Connection counters against the budget. */
export interface ConnectionStats {
  /** Connections to tenant databases open or opening, never above `max`. */
  open: number;
  /** `pool.maxConnections`. */
  max: number;
}

/** Counters of {@link TenantPoolManager.stats}. */
export interface PoolManagerStats {
  pools: PoolStats;
  connections: ConnectionStats;
}

/** Bounds and timeouts of {@link TenantPoolManager} (see `PoolOptions` for what each means). */
export interface TenantPoolManagerOptions {
  /** Pools kept at most, least recently used evicted. Default: no bound beyond the connection budget. */
  maxTenantPools?: number | undefined;
  maxConnectionsPerTenant: number;
  maxConnections: number;
  idleMs: number;
  acquireTimeoutMs: number;
  /** Default: 10 000. */
  connectTimeoutMs?: number;
  /** Default: none. */
  statementTimeoutMs?: number | undefined;
  /** 0: none. Default: 60 000. */
  idleInTransactionTimeoutMs?: number;
}

/** Runs SQL on a tenant database (a scope, or one connection inside a transaction). */
export interface Queryable {
  /** A parameterised query; `params` are sent separately, never interpolated. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Settings of {@link TenantPoolManager} beyond {@link TenantPoolManagerOptions}. */
export interface TenantPoolManagerExtras {
  /**
   * How long `endPool()` and `close()` wait for checked-out clients to come back before destroying
   * their connections. Default: 10 000 ms.
   */
  drainTimeoutMs?: number;
}

/** One tenant database's pool and what the manager knows of it. */
interface PoolEntry {
  readonly id: string;
  readonly key: PoolKey;
  readonly label: string;
  readonly pool: pg.Pool;
  /** Clients connecting or connected (from `connect()` until their socket closed). */
  readonly clients: Set<BudgetedClient>;
  /** Clients lent out now. */
  leases: number;
  /** `pool.connect()` calls not settled yet; a pool is ended only once none is left (pg-pool would strand them). */
  pending: number;
  /** Rejecters of the acquires waiting on this pool, so endPool() and close() can fail them at once. */
  readonly waiters: Set<(err: Error) => void>;
  lastUsed: number;
  /** Out of the cache: ends as soon as nothing waits on it. */
  retired: boolean;
  /** The database's hashes in the frequency sketch, computed once. */
  readonly hash: SketchHash;
  /** What its leases report back to. */
  readonly owner: LeaseOwner;
  /** Its server refuses startup parameters (a pooler): the statement timeout is set per transaction instead. */
  readonly server: ServerSettings;
  ending: boolean;
  /** Resolves once ended and every connection closed. */
  readonly closed: Promise<void>;
  markClosed(): void;
}

/** What the manager learnt of one server's connections. */
interface ServerSettings {
  /** True once the server refused startup parameters (PgBouncer does): settings go with each transaction. */
  local: boolean;
}

/**
 * The tenant pool manager: `pg.Pool`s, one per tenant database, inside a hard connection budget that is
 * also the cache of idle connections.
 *
 * - Each pool opens at most `maxConnectionsPerTenant` connections, and all pools together, evicted ones
 *   included, at most `maxConnections`, at every instant. A pool left without connections is dropped.
 * - Callers that find the budget full wait in FIFO order, and the least valuable idle connections are
 *   closed for them (see chooseEvictions: the databases asked for least often lately, by a frequency
 *   sketch, then the least recently used). After `acquireTimeoutMs` a waiter gets UNAVAILABLE.
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
  readonly #budget: ConnectionBudget;
  readonly #cache: LRUCache<string, PoolEntry>;
  /** Pools out of the cache whose connections are not all closed yet. */
  readonly #draining = new Set<PoolEntry>();
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #reclaimScheduled = false;
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
    this.#budget = new ConnectionBudget(options.maxConnections, {
      timeoutMs: options.acquireTimeoutMs,
      onWait: () => this.#scheduleReclaim(),
    });
    this.#frequency = new FrequencySketch(options.maxConnections);
    this.#cache = new LRUCache<string, PoolEntry>({
      // Without maxTenantPools the budget bounds the pools: one without connections is dropped (see
      // #forgetIfEmpty), so the cache holds about as many pools as the budget has connections.
      max: options.maxTenantPools ?? Math.max(1_000, options.maxConnections * 10),
      // Synchronous by contract: start the drain here, await it in close().
      dispose: (entry, _id, reason) => {
        if (reason === 'evict') this.#evictions++;
        this.#retire(entry);
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
    if (!this.#closed) {
      const entry = this.#entryFor(key);
      if (entry.pool.idleCount > 0 && !(entry.server.local && this.#options.statementTimeoutMs !== undefined)) {
        return this.#queryIdle<R>(entry, sql, params);
      }
    }
    return this.#withLease(key, (lease) =>
      lease.local && this.#options.statementTimeoutMs !== undefined
        ? this.#inTransaction(lease, (tx) => tx.query<R>(sql, params))
        : lease.client.query<R>(sql, params),
    );
  }

  /**
   * `fn` in a transaction on one pooled client: committed when `fn` returns, rolled back when it throws
   * (`fn`'s error passes untouched). The transaction carries `idleInTransactionTimeoutMs` (and, behind a
   * pooler, `statementTimeoutMs`) with `SET LOCAL`, in the same round trip as its `BEGIN`.
   */
  transaction<T>(key: PoolKey, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#withLease(key, (lease) => this.#inTransaction(lease, fn));
  }

  /**
   * The hot path of a warm tenant: an idle client, one query. Callbacks all the way (pg-pool's connect,
   * pg's query) and one promise, so that a query costs about what `pg.Pool.query` costs.
   */
  #queryIdle<R extends pg.QueryResultRow>(entry: PoolEntry, sql: string, params: unknown[] | undefined): Promise<pg.QueryResult<R>> {
    entry.pending++;
    entry.lastUsed = Date.now();
    this.#frequency.increment(entry.hash);
    this.#hits++;
    return new Promise((resolve, reject) => {
      entry.pool.connect((connectErr, client) => {
        entry.pending--;
        if (entry.retired) this.#maybeEnd(entry);
        if (connectErr || !client) {
          this.#forgetIfEmpty(entry);
          reject(this.#connectError(connectErr, entry));
          return;
        }
        entry.leases++;
        const giveBack = lendForOneQuery(entry.owner, client);
        client.query<R>(sql, params as unknown[], (queryErr, result) => {
          const finished = giveBack();
          const settle = (): void => (queryErr ? reject(queryErr) : resolve(result));
          if (finished === RELEASED) settle();
          else void finished.then(settle);
        });
      });
    });
  }

  /** lease → fn(lease) → finish, also when `fn` throws; a clean client is back without an extra turn. */
  async #withLease<T>(key: PoolKey, fn: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = await this.#lease(key);
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

  async #inTransaction<T>(lease: Lease, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const { client } = lease;
    await client.query(lease.local ? this.#begin.local : this.#begin.startup);
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
    const entries = [...this.#draining].filter((entry) => entry.id === id);
    for (const entry of entries) {
      this.#endNow(entry, new TenantDbError('UNAVAILABLE', `the pool of ${entry.label} was ended`));
    }
    await this.#drain(entries);
  }

  /** Pool and connection counters (sync). */
  stats(): PoolManagerStats {
    return {
      pools: {
        open: this.#cache.size + this.#draining.size,
        max: this.#options.maxTenantPools ?? this.#options.maxConnections,
        hits: this.#hits,
        misses: this.#misses,
        evictions: this.#evictions,
      },
      connections: { open: this.#budget.inUse, max: this.#budget.max },
    };
  }

  /** Connections open or opening per server URL (as in the pool keys), evicted pools still draining included. */
  openByServer(): Map<string, number> {
    const open = new Map<string, number>();
    for (const entry of [...this.#cache.values(), ...this.#draining]) {
      if (entry.clients.size > 0) open.set(entry.key.server, (open.get(entry.key.server) ?? 0) + entry.clients.size);
    }
    return open;
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
    this.#budget.close();
    this.#cache.clear();
    const entries = [...this.#draining];
    for (const entry of entries) this.#endNow(entry, new TenantDbError('CLOSED', 'the tenant pool manager was closed'));
    await this.#drain(entries);
  }

  async #lease(key: PoolKey): Promise<Lease> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new TenantDbError('CLOSED', 'the tenant pool manager was closed');
      const entry = this.#entryFor(key);
      try {
        return this.#lend(entry, await this.#connect(entry));
      } catch (err) {
        // A pooler that refuses startup parameters (PgBouncer: 08P01): connect without them from now on,
        // and send the settings with each transaction instead. The failed pool may be gone: look again.
        if (attempt > 0 || !isRefusedStartupParameter(err) || entry.server.local) throw this.#connectError(err, entry);
        entry.server.local = true;
        this.#logger.info({ db: entry.label }, 'the server refuses startup parameters (a pooler?): timeouts go with each transaction');
      }
    }
  }

  /** The cached pool of `key`, created on a miss. Synchronous, so parallel first calls share one pool. */
  #entryFor(key: PoolKey): PoolEntry {
    const id = cacheKey(key);
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const entry = this.#createEntry(id, key);
    this.#cache.set(id, entry);
    return entry;
  }

  #createEntry(id: string, key: PoolKey): PoolEntry {
    const label = `${key.database} on ${redactUrl(key.server)}`;
    const clients = new Set<BudgetedClient>();
    let markClosed!: () => void;
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    let server = this.#servers.get(key.server);
    if (!server) {
      server = { local: false };
      this.#servers.set(key.server, server);
    }
    const settings = server;
    const statementTimeoutMs = this.#options.statementTimeoutMs;
    const Client = budgetedClientClass(this.#budget, {
      connectTimeoutMs: this.#options.connectTimeoutMs,
      // Startup parameters cost nothing per query; a pooler that refuses them gets them per transaction instead.
      startupParameters: () => (statementTimeoutMs === undefined || settings.local ? {} : { statement_timeout: statementTimeoutMs }),
      onOpen: (client) => clients.add(client),
      onClose: (client) => {
        clients.delete(client);
        this.#checkClosed(entry);
        // A pool left without connections holds no budget: drop it, so the budget alone bounds the pools.
        if (clients.size === 0) process.nextTick(() => this.#forgetIfEmpty(entry));
      },
    });
    const pool = new pg.Pool({
      connectionString: withDatabase(key.server, key.database),
      max: this.#options.maxConnectionsPerTenant,
      idleTimeoutMillis: this.#options.idleMs,
      // Idle connections and pg-pool's idle timers must not keep the host process alive.
      allowExitOnIdle: true,
      Client: Client as unknown as new () => pg.ClientBase,
    });
    // An idle client's error (killed backend, restarted server): pg-pool has already dropped the
    // client; without this listener the 'error' event would crash the host process.
    pool.on('error', (err) => {
      this.#logger.warn({ err: err.message, db: label }, 'idle tenant connection failed; it was dropped');
    });
    const entry: PoolEntry = {
      id,
      key,
      label,
      pool,
      clients,
      leases: 0,
      pending: 0,
      waiters: new Set(),
      lastUsed: Date.now(),
      retired: false,
      hash: FrequencySketch.hash(id),
      owner: {
        label,
        logger: this.#logger,
        get local() {
          return settings.local;
        },
        budgetWanted: () => this.#budgetWanted(),
        giveBack: (client, destroy) => {
          entry.leases--;
          entry.lastUsed = Date.now();
          this.#giveBack(entry, client, destroy);
          this.#scheduleSweep();
        },
      },
      server: settings,
      ending: false,
      closed,
      markClosed,
    };
    return entry;
  }

  /** `pool.connect()` bounded by acquireTimeoutMs, and failed at once by close(). */
  #connect(entry: PoolEntry): Promise<pg.PoolClient> {
    entry.pending++;
    entry.lastUsed = Date.now();
    this.#frequency.increment(entry.hash);
    // A hit is served on a connection already open (idle now, or busy and given back); a miss opens one.
    if (entry.pool.idleCount > 0) {
      // The hot path of a warm tenant: pg-pool hands an idle client over on the next tick, so there is
      // nothing to time out and no wait for endPool() or close() to cut short.
      this.#hits++;
      return entry.pool.connect().then(
        (client) => {
          entry.pending--;
          if (entry.retired) this.#maybeEnd(entry);
          return client;
        },
        (err: Error) => {
          entry.pending--;
          this.#maybeEnd(entry);
          this.#forgetIfEmpty(entry);
          throw err;
        },
      );
    }
    if (entry.pool.totalCount < this.#options.maxConnectionsPerTenant) this.#misses++;
    else this.#hits++;
    return new Promise<pg.PoolClient>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, client?: pg.PoolClient): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        entry.waiters.delete(fail);
        if (err) reject(err);
        else resolve(client!);
        return true;
      };
      const fail = (err: Error): void => void settle(err);
      const timer = setTimeout(() => {
        fail(
          new TenantDbError(
            'UNAVAILABLE',
            `connection budget exhausted: no connection to ${entry.label} within ${this.#options.acquireTimeoutMs} ms`,
          ),
        );
      }, this.#options.acquireTimeoutMs);
      entry.waiters.add(fail);
      entry.pool.connect().then(
        (client) => {
          entry.pending--;
          // Too late: the caller gave up (timeout or close). Hand the client straight back.
          if (!settle(undefined, client)) this.#giveBack(entry, client, false);
          this.#maybeEnd(entry);
        },
        (err: Error) => {
          entry.pending--;
          fail(err);
          this.#maybeEnd(entry);
          this.#forgetIfEmpty(entry);
        },
      );
    });
  }

  /** Lends a connected client (see lend()): given back, it returns to its pool or is destroyed. */
  #lend(entry: PoolEntry, client: pg.PoolClient): Lease {
    entry.leases++;
    return lend(entry.owner, client);
  }

  /** Returns a client to its pool, or destroys it; a client given back while the budget has waiters is closed for them. */
  #giveBack(entry: PoolEntry, client: pg.PoolClient, destroy: Error | boolean): void {
    client.release(destroy === false ? undefined : destroy);
    // Someone waits for a slot: the least valuable idle connection goes (this one, if it is that).
    if (this.#budgetWanted()) this.#scheduleReclaim();
  }

  /** True when callers wait for a connection slot that no closing connection will free. */
  #budgetWanted(): boolean {
    return this.#budget.waiting > this.#budget.closing;
  }

  #connectError(err: unknown, entry: PoolEntry): TenantDbError {
    if (err instanceof TenantDbError) return err;
    if (this.#closed) return new TenantDbError('CLOSED', 'the tenant pool manager was closed', { cause: err });
    if (isMissingDatabase(err)) {
      return new TenantDbError('NOT_FOUND', `tenant database ${entry.label} does not exist`, { cause: err });
    }
    return connectFailure(err, `tenant database ${entry.label}`);
  }

  /** A pool whose connection failed and that holds nothing is dropped, so that a bad key does not occupy the cache. */
  #forgetIfEmpty(entry: PoolEntry): void {
    if (entry.leases > 0 || entry.pending > 0 || entry.pool.totalCount > 0) return;
    if (this.#cache.peek(entry.id) === entry) this.#cache.delete(entry.id);
  }

  /** Out of the cache (evicted, idle, ended, or cleared by close): drain, then end. */
  #retire(entry: PoolEntry): void {
    entry.retired = true;
    this.#draining.add(entry);
    this.#maybeEnd(entry);
  }

  #maybeEnd(entry: PoolEntry): void {
    // pg-pool never serves callers still queued on a pool once end() is called: wait until none is.
    if (entry.retired && entry.pending === 0) this.#end(entry);
  }

  /** Ends a pool without waiting for its queued callers: they fail with `reason` (pg-pool would strand them). */
  #endNow(entry: PoolEntry, reason: TenantDbError): void {
    for (const fail of [...entry.waiters]) fail(reason);
    this.#end(entry);
  }

  /** pool.end(): idle clients close now, lent ones when given back. */
  #end(entry: PoolEntry): void {
    if (entry.ending) return;
    entry.ending = true;
    entry.pool.end().then(
      () => this.#checkClosed(entry),
      (err: unknown) => this.#logger.warn({ err: String(err), db: entry.label }, 'ending a tenant pool failed'),
    );
    this.#checkClosed(entry);
  }

  #checkClosed(entry: PoolEntry): void {
    if (!entry.ending || entry.clients.size > 0) return;
    this.#draining.delete(entry);
    entry.markClosed();
  }

  /** Waits for pools to close; after drainTimeoutMs, destroys what is still open and waits for the sockets. */
  async #drain(entries: PoolEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const all = Promise.all(entries.map((entry) => entry.closed)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#drainTimeoutMs);
    });
    const done = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    if (done) return;
    let destroyed = 0;
    for (const entry of entries) {
      for (const client of entry.clients) {
        client.forceClose();
        destroyed++;
      }
    }
    this.#logger.warn({ destroyed, drainTimeoutMs: this.#drainTimeoutMs }, 'destroyed tenant connections still in use');
    await all;
  }

  #scheduleReclaim(): void {
    if (this.#reclaimScheduled) return;
    this.#reclaimScheduled = true;
    // Deferred: the budget calls us from inside pg-pool's connect path.
    process.nextTick(() => {
      this.#reclaimScheduled = false;
      this.#reclaim();
    });
  }

  /** Someone waits for a slot: close the least valuable idle connections. */
  #reclaim(): void {
    const need = this.#budget.waiting - this.#budget.closing;
    if (need <= 0 || this.#closed) return;
    // The least valuable idle connections go first (see chooseEvictions): the frequency sketch knows
    // which databases were asked for least often lately.
    const candidates = [...this.#cache.values()].map((entry) => ({
      entry,
      idle: entry.pool.idleCount,
      frequency: this.#frequency.frequency(entry.hash),
      lastUsed: entry.lastUsed,
    }));
    for (const [{ entry }, count] of chooseEvictions(candidates, need)) {
      const idle = entry.pool.idleCount;
      if (count === idle && entry.leases === 0 && entry.pending === 0 && entry.pool.totalCount === idle) {
        // Wholly idle: evict the pool, which closes its idle connections.
        this.#evictions += idle;
        this.#cache.delete(entry.id);
      } else {
        this.#evictions += closeIdleClients(entry.pool, count);
      }
    }
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
    for (const entry of [...this.#cache.values()]) {
      if (entry.leases > 0 || entry.pending > 0) continue; // re-armed when given back
      const due = entry.lastUsed + this.#options.idleMs;
      if (due <= now) {
        this.#logger.debug({ db: entry.label }, 'closing idle tenant pool');
        this.#cache.delete(entry.id);
      } else {
        next = Math.min(next, due);
      }
    }
    if (next !== Infinity) this.#sweepAt(Math.max(1, next - now));
  }
}

/** The cache key of a tenant database. NUL can appear in neither a URL nor a database name. */
function cacheKey(key: PoolKey): string {
  return `${key.server}\u0000${key.database}`;
}
