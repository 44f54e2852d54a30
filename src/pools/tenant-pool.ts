import pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { redactUrl, withDatabase } from '../util/redact.js';
import { budgetedClientClass, type BudgetedClient } from './budgeted-client.js';
import type { ConnectionBudget, SlotSource } from './connection-budget.js';
import { FrequencySketch, type SketchHash } from './frequency-sketch.js';
import type { LeaseOwner } from './lease.js';
import { closeIdleClients } from './pg-internals.js';
import type { PoolKey } from './types.js';

/** What the pools of one server share: learnt once, for all its databases. */
export interface ServerSettings {
  /** True once the server refused startup parameters (PgBouncer does): settings go with each transaction. */
  local: boolean;
}

/** How a {@link TenantPool} connects, and what it tells its owner. */
export interface TenantPoolSettings {
  /** Connections of this pool at most (`maxConnectionsPerTenant`). */
  max: number;
  idleMs: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number | undefined;
  /** The budget of the pool's server, which its connections count against. */
  budget: ConnectionBudget;
  /** Where each connection takes its slot before it opens: `budget`, and with a shared budget that one too. */
  slots: SlotSource;
  server: ServerSettings;
  logger: Logger;
  /** A client came back (see LeaseOwner.giveBack), after the pool's own bookkeeping: release or destroy it. */
  returned(client: pg.PoolClient, destroy: Error | boolean): void;
  /** True when callers wait for a budget slot (see LeaseOwner.budgetWanted). */
  budgetWanted(): boolean;
  /** The pool's last connection closed (called on the next tick): an empty pool holds no budget. */
  emptied(pool: TenantPool): void;
  /** The pool ended and every connection of it closed (synchronously, once). */
  closed(pool: TenantPool): void;
}

/**
 * The `pg.Pool` of one tenant database, its connections opened inside the shared budget, with what the
 * manager's policy reads (leases out, connects pending, last use, the key's frequency hashes) and its
 * ending: retired from the cache, it ends as soon as no connect is pending (pg-pool would strand queued
 * callers), and {@link TenantPool.closed} resolves once its last connection has closed.
 * @internal
 */
export class TenantPool {
  readonly id: string;
  readonly key: PoolKey;
  /** For log lines and errors: the database and its server, without a password. */
  readonly label: string;
  readonly pool: pg.Pool;
  /** The database's hashes in the frequency sketch, computed once. */
  readonly hash: SketchHash;
  /** What its leases report back to. */
  readonly owner: LeaseOwner;
  readonly server: ServerSettings;
  /** The budget its connections count against (its server's). */
  readonly budget: ConnectionBudget;
  /** Resolves once ended and every connection closed. */
  readonly closed: Promise<void>;
  /** Clients lent out now. */
  leases = 0;
  /** `pool.connect()` calls not settled yet. */
  pending = 0;
  lastUsed = Date.now();
  /** Out of the cache: ends as soon as nothing waits on it. */
  retired = false;
  /** Clients connecting or connected (from `connect()` until their socket closed). */
  readonly #clients = new Set<BudgetedClient>();
  /** Rejecters of the acquires waiting on this pool, so that ending it can fail them at once. */
  readonly #waiters = new Set<(err: Error) => void>();
  readonly #settings: TenantPoolSettings;
  #ending = false;
  #closedOnce = false;
  #markClosed!: () => void;

  constructor(id: string, key: PoolKey, settings: TenantPoolSettings) {
    this.id = id;
    this.key = key;
    this.label = `${key.database} on ${redactUrl(key.server)}${key.role ? ` as ${key.role.user}` : ''}`;
    this.hash = FrequencySketch.hash(id);
    this.server = settings.server;
    this.budget = settings.budget;
    this.#settings = settings;
    this.closed = new Promise<void>((resolve) => (this.#markClosed = resolve));
    const { server, statementTimeoutMs } = settings;
    const Client = budgetedClientClass(settings.slots, {
      connectTimeoutMs: settings.connectTimeoutMs,
      // Startup parameters cost nothing per query; a pooler that refuses them gets them per transaction instead.
      startupParameters: () => (statementTimeoutMs === undefined || server.local ? {} : { statement_timeout: statementTimeoutMs }),
      onOpen: (client) => this.#clients.add(client),
      onClose: (client) => {
        this.#clients.delete(client);
        this.#checkClosed();
        if (this.#clients.size === 0) process.nextTick(() => settings.emptied(this));
      },
    });
    this.pool = new pg.Pool({
      connectionString: withDatabase(key.role ? asRole(key.server, key.role) : key.server, key.database),
      max: settings.max,
      idleTimeoutMillis: settings.idleMs,
      // Idle connections and pg-pool's idle timers must not keep the host process alive.
      allowExitOnIdle: true,
      Client: Client as unknown as new () => pg.ClientBase,
    });
    // An idle client's error (killed backend, restarted server): pg-pool has already dropped the
    // client; without this listener the 'error' event would crash the host process.
    this.pool.on('error', (err) => {
      settings.logger.warn({ err: err.message, db: this.label }, 'idle tenant connection failed; it was dropped');
    });
    this.owner = {
      label: this.label,
      logger: settings.logger,
      get local() {
        return server.local;
      },
      budgetWanted: () => settings.budgetWanted(),
      giveBack: (client, destroy) => this.#returned(client, destroy),
    };
  }

  #returned(client: pg.PoolClient, destroy: Error | boolean): void {
    this.leases--;
    this.lastUsed = Date.now();
    this.#settings.returned(client, destroy);
  }

  /** Connections open or opening. */
  get open(): number {
    return this.#clients.size;
  }

  /** Idle connections, ready to lend. */
  get idle(): number {
    return this.pool.idleCount;
  }

  /** True when it holds nothing: no lease, no pending connect, no connection. */
  get empty(): boolean {
    return this.leases === 0 && this.pending === 0 && this.pool.totalCount === 0;
  }

  /** True when nothing of it is in use: its connections, if any, are all idle. */
  get unused(): boolean {
    return this.leases === 0 && this.pending === 0 && this.pool.totalCount === this.pool.idleCount;
  }

  /** A connection already idle (pg-pool hands it over on the next tick: nothing to time out). */
  connectIdle(): Promise<pg.PoolClient> {
    this.pending++;
    return this.pool.connect().then(
      (client) => {
        this.settledConnect();
        return client;
      },
      (err: Error) => {
        this.settledConnect();
        throw err;
      },
    );
  }

  /**
   * A connection, waiting for one of the pool's or for a budget slot for at most `timeoutMs` (then
   * UNAVAILABLE), failed at once when the pool is ended. A client that arrives after the caller gave up
   * goes straight back.
   */
  connectWithin(timeoutMs: number): Promise<pg.PoolClient> {
    this.pending++;
    return new Promise<pg.PoolClient>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, client?: pg.PoolClient): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        this.#waiters.delete(fail);
        if (err) reject(err);
        else resolve(client!);
        return true;
      };
      const fail = (err: Error): void => void settle(err);
      const timer = setTimeout(() => {
        fail(new TenantDbError('UNAVAILABLE', `connection budget exhausted: no connection to ${this.label} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(fail);
      this.pool.connect().then(
        (client) => {
          // Too late: the caller gave up (timeout or close). Hand the client straight back.
          if (!settle(undefined, client)) this.#settings.returned(client, false);
          this.settledConnect();
        },
        (err: Error) => {
          fail(err);
          this.settledConnect();
        },
      );
    });
  }

  /** Notes that a `pool.connect()` settled (also the warm path's own callback): a retired pool may end now. */
  settledConnect(): void {
    this.pending--;
    this.#maybeEnd();
  }

  /** Closes up to `count` idle connections, those idle longest first; returns how many. */
  closeIdle(count: number): number {
    return closeIdleClients(this.pool, count);
  }

  /** Out of the cache: it ends once no connect is pending; lent clients close when given back. */
  retire(): void {
    this.retired = true;
    this.#maybeEnd();
  }

  /** Ends it without waiting for queued callers: they fail with `reason` at once. */
  endNow(reason: TenantDbError): void {
    for (const fail of [...this.#waiters]) fail(reason);
    this.#end();
  }

  /** Destroys up to `max` connections that hold a slot and are not closing yet (a running query fails); returns how many. */
  forceCloseOpen(max: number): number {
    let closed = 0;
    for (const client of this.#clients) {
      if (closed >= max) break;
      if (!client.holdsSlot || client.closing) continue;
      client.forceClose();
      closed++;
    }
    return closed;
  }

  /** Destroys every connection now (a running query fails); returns how many. */
  forceClose(): number {
    for (const client of this.#clients) client.forceClose();
    return this.#clients.size;
  }

  #maybeEnd(): void {
    // pg-pool never serves callers still queued on a pool once end() is called: wait until none is.
    if (this.retired && this.pending === 0) this.#end();
  }

  /** pool.end(): idle clients close now, lent ones when given back. */
  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.pool.end().then(
      () => this.#checkClosed(),
      (err: unknown) => this.#settings.logger.warn({ err: String(err), db: this.label }, 'ending a tenant pool failed'),
    );
    this.#checkClosed();
  }

  #checkClosed(): void {
    if (!this.#ending || this.#clients.size > 0 || this.#closedOnce) return;
    this.#closedOnce = true;
    this.#settings.closed(this);
    this.#markClosed();
  }
}

/**
 * Waits for `pools` to close; after `timeoutMs`, destroys the connections still open (a lent client's
 * query fails) and waits for their sockets.
 * @internal
 */
export async function drainPools(pools: readonly TenantPool[], timeoutMs: number, logger: Logger): Promise<void> {
  if (pools.length === 0) return;
  const all = Promise.all(pools.map((p) => p.closed)).then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const done = await Promise.race([all, timedOut]);
  clearTimeout(timer);
  if (done) return;
  let destroyed = 0;
  for (const p of pools) destroyed += p.forceClose();
  logger.warn({ destroyed, drainTimeoutMs: timeoutMs }, 'destroyed tenant connections still in use');
  await all;
}

/** A server URL with another login role (pg reads the URL's user and password over any other setting). */
function asRole(server: string, role: { user: string; password: string }): string {
  const url = new URL(server);
  url.username = encodeURIComponent(role.user);
  url.password = encodeURIComponent(role.password);
  return url.toString();
}
