import type pg from 'pg';

/** A tenant database: `server` is a postgres URL without a database (e.g. `postgres://u:p@h:5432`), `database` its name. */
export interface PoolKey {
  server: string;
  database: string;
  /**
   * The name of the tenant server (a key of `tenantServers`, e.g. `'default'`): the connection budget the
   * key's connections count against. A server's traffic `url` and its `adminUrl` share it. Default: `server`.
   */
  serverName?: string;
  /** The login role to connect as instead of the server URL's user (a tenant role, with `tenantRoles`). */
  role?: { user: string; password: string };
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

/** Connection counters against the budget: of every tenant server together, or of one. */
export interface ConnectionStats {
  /** Connections to tenant databases open or opening, never above `max`. */
  open: number;
  /** The budget: `pool.maxConnections` for one server; for all of them, the sum of their budgets. */
  max: number;
}

/** With `pool.sharedBudget`: this process's part of the budget every process shares on one tenant server. */
export interface SharedBudgetStats {
  /** Slots this process holds: one per connection it has open or opening on the server. */
  held: number;
  /** `pool.sharedBudget.maxConnections`: what all processes together may hold. */
  max: number;
}

/** The connection budget of one tenant server, in {@link PoolManagerStats}. */
export interface BudgetStats {
  /** Connections to the server's tenant databases open or opening, never above `max`. */
  open: number;
  /** `pool.maxConnections`. */
  max: number;
  /** Callers waiting for a slot of this process's budget, or of the shared one. */
  waiting: number;
  /** With `pool.sharedBudget`: the slots of the budget shared by every process that this process holds. */
  shared?: SharedBudgetStats;
}

/** Counters of {@link TenantPoolManager.stats}. */
export interface PoolManagerStats {
  pools: PoolStats;
  /** Totals over every server's budget. */
  connections: ConnectionStats;
  /** Each budget by its name: the pool keys' `serverName` (or `server`). Only budgets used so far. */
  servers: Record<string, BudgetStats>;
}

/** Bounds and timeouts of {@link TenantPoolManager} (see `PoolOptions` for what each means). */
export interface TenantPoolManagerOptions {
  /** Pools kept at most, least recently used evicted. Default: no bound beyond the connection budget. */
  maxTenantPools?: number | undefined;
  maxConnectionsPerTenant: number;
  /** Connections to the tenant databases of one server (one budget per `serverName`) at most. */
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

/** How the manager reaches the control connection of one server's shared budget. */
export interface SharedBudgetControl {
  /** Opens a direct connection on the server's `postgres` database, with a connect timeout and an `'error'` listener. */
  connect(): Promise<pg.Client>;
  /** The server, without a password, for log lines and errors. */
  label: string;
  /** The first key of the slots' two-int advisory locks, the same in every process of the platform. */
  namespace: number;
}

/** A connection budget shared by every process, per tenant server (`pool.sharedBudget`). */
export interface SharedBudgetSettings {
  /** Connections of all processes together to the tenant databases of one server. */
  maxConnections: number;
  /** The control connection of a budget (by name, see `PoolKey.serverName`); undefined: that server has no shared budget. */
  control(budgetName: string): SharedBudgetControl | undefined;
}

/** Settings of {@link TenantPoolManager} beyond {@link TenantPoolManagerOptions}. */
export interface TenantPoolManagerExtras {
  /** A budget shared by every process on each server, on top of the per-process one. Default: none. */
  sharedBudget?: SharedBudgetSettings | undefined;
  /**
   * How long `endPool()` and `close()` wait for checked-out clients to come back before destroying
   * their connections. Default: 10 000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * Called after each wait for a slot of a server's budget (`server`: the budget's name), with how long it
   * took and, when it got no slot (`failed`), why. `budget` says which: `'local'`, this process's budget,
   * where an acquisition that found a slot free is not a wait; `'shared'`, the slot of `pool.sharedBudget`
   * that every new connection takes after its local one (a round trip at least). Default: none.
   */
  onBudgetWait?: ((server: string, ms: number, err: unknown, failed: boolean, budget: 'local' | 'shared') => void) | undefined;
}
