import pg from 'pg';
import type { ResolvedOptions, ResolvedServer } from '../core/resolved-options.js';
import { TenantDbError } from '../errors.js';
import { answersSoFar, endedBeforeAnswering } from '../pools/pg-internals.js';
import { sharedBudgetNamespace } from '../pools/shared-budget.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { TenantPoolManager, type SharedBudgetSettings } from '../pools/tenant-pool-manager.js';
import type { Logger } from '../util/logger.js';
import { isSingleStatement } from '../util/pg-errors.js';
import { databaseOf, redactUrl, withDatabase } from '../util/redact.js';
import { LockSession } from './lock-session.js';
import { clientConnector, openClient, timedClientClass, type Connector } from './timed-client.js';

function closedError(): TenantDbError {
  return new TenantDbError('CLOSED', 'the platform was closed');
}

/**
 * Makes `pool.query(text, params)` (the promise form) send a query again on another connection when the
 * server had ended the session of the one it got before answering anything (a backend terminated while idle
 * in the pool, its FATAL still on its way): the query never ran. Only a single statement with parameters
 * (whose Parse the server answers before running anything), at most `attempts` more times, each of which
 * drops one dead idle connection. Any other call form is pg-pool's own.
 */
function retryQueriesOnEndedSessions(pool: pg.Pool, attempts: number, logger: Logger): void {
  const plain = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  const retrying = async (text: string, params: unknown[]): Promise<pg.QueryResult> => {
    for (let attempt = 0; ; attempt++) {
      const client = await pool.connect();
      const before = answersSoFar(client);
      try {
        const result = await client.query(text, params);
        client.release();
        return result;
      } catch (err) {
        // As pg-pool's own query does: a client whose query failed is not reused.
        client.release(err as Error);
        if (attempt >= attempts || !endedBeforeAnswering(err, client, before)) throw err;
        logger.debug({ err: (err as Error).message }, 'a main-database connection had been ended by the server; the query goes on another');
      }
    }
  };
  pool.query = ((...args: unknown[]) => {
    const [text, params] = args;
    if (args.length !== 2 || typeof text !== 'string' || !Array.isArray(params) || params.length === 0 || !isSingleStatement(text)) {
      return plain(...args);
    }
    return retrying(text, params);
  }) as typeof pool.query;
}

/**
 * With `pool.sharedBudget`: each tenant server's control connection, direct on its `adminUrl` (session
 * advisory locks do not survive a transaction-mode pooler), on `postgres` (advisory locks are per database,
 * and every process must count in the same one), slots namespaced by the main database and the server name.
 */
function sharedBudgetSettings(options: ResolvedOptions): SharedBudgetSettings | undefined {
  const shared = options.pool.sharedBudget;
  if (!shared) return undefined;
  const mainDatabase = databaseOf(options.mainAdminUrl);
  return {
    maxConnections: shared.maxConnections,
    control: (name) => {
      if (!Object.hasOwn(options.tenantServers, name)) return undefined;
      const { adminUrl } = options.tenantServers[name]!;
      const url = withDatabase(adminUrl, 'postgres');
      return {
        connect: () => openClient(url, options.pool.connectTimeoutMs),
        label: redactUrl(adminUrl),
        namespace: sharedBudgetNamespace(mainDatabase, name),
      };
    },
  };
}

/**
 * The one owner of every connection a platform opens, each with the connect timeout, an `'error'`
 * listener and its own sizing rule:
 *
 * - `main`: the pool on the main database (`mainUrl`, `pool.maxMainConnections`);
 * - `locks`: the lock session on `mainAdminUrl` (one connection, one more while a template is built);
 * - `admin(server)`: a small pool per tenant server on its `adminUrl`'s `postgres` database
 *   (`pool.maxAdminConnections`), for CREATE/DROP DATABASE and the like;
 * - `tenants`: the tenant pools inside the connection budget of their server (`pool.maxConnections` each),
 *   and with `pool.sharedBudget` one control connection per server on its `adminUrl`'s `postgres` database;
 * - `direct(url)`: one connection per migration command, ended after it.
 *
 * `close()` ends them in the one order that strands nobody: tenant pools (draining lent clients), admin
 * pools, the lock session, then the main pool. Work still under way when close starts keeps the pools it
 * needs until then.
 * @internal
 */
export class Connections {
  readonly #options: ResolvedOptions;
  readonly #logger: Logger;
  readonly locks: LockSession;
  readonly tenants: TenantPoolManager;
  #main: pg.Pool | undefined;
  readonly #admin = new Map<string, pg.Pool>();
  #closing = false;
  #ended = false;

  constructor(options: ResolvedOptions, telemetry?: Telemetry) {
    this.#options = options;
    this.#logger = options.logger;
    this.locks = new LockSession(options.mainAdminUrl, options.pool.connectTimeoutMs, options.logger);
    this.tenants = new TenantPoolManager(options.pool, options.logger, {
      sharedBudget: sharedBudgetSettings(options),
      onBudgetWait: telemetry && ((server, ms, err, failed, budget) => telemetry.budgetWait(server, ms, err, failed, budget)),
    });
  }

  /** The main pool, opened on first use; CLOSED once `close()` ended it (or began before it was ever opened). */
  get main(): pg.Pool {
    if (this.#ended || (this.#closing && !this.#main)) throw closedError();
    if (!this.#main) {
      const { maxMainConnections, connectTimeoutMs, acquireTimeoutMs } = this.#options.pool;
      const pool = new pg.Pool({
        connectionString: this.#options.mainUrl,
        max: maxMainConnections,
        idleTimeoutMillis: 10_000,
        // pg-pool's bound on waiting for a free client (UNAVAILABLE after it); the connect itself is the Client's.
        connectionTimeoutMillis: acquireTimeoutMs,
        Client: timedClientClass(connectTimeoutMs, 'the main database'),
      });
      // An idle client's error (server restart, killed backend) must never crash the host process.
      pool.on('error', (err) => {
        this.#logger.warn({ err: err.message, db: redactUrl(this.#options.mainUrl) }, 'idle main-database client failed');
      });
      retryQueriesOnEndedSessions(pool, maxMainConnections, this.#logger);
      this.#main = pool;
    }
    return this.#main;
  }

  /** The named tenant server, or VALIDATION for a name that is not configured. */
  server(name: string): ResolvedServer {
    // Own keys only: `constructor` or `__proto__` must not resolve to Object.prototype's members.
    const servers = this.#options.tenantServers;
    const found = typeof name === 'string' && Object.hasOwn(servers, name) ? servers[name] : undefined;
    if (found === undefined) throw new TenantDbError('VALIDATION', `unknown tenant server ${JSON.stringify(name)}`);
    return found;
  }

  /** The admin pool of a tenant server (its `adminUrl`, database `postgres`), opened on first use. */
  admin(name: string): pg.Pool {
    if (this.#ended) throw closedError();
    let pool = this.#admin.get(name);
    if (!pool) {
      const url = redactUrl(this.server(name).adminUrl);
      pool = new pg.Pool({
        connectionString: withDatabase(this.server(name).adminUrl, 'postgres'),
        max: this.#options.pool.maxAdminConnections,
        idleTimeoutMillis: 5_000,
        allowExitOnIdle: true,
        Client: timedClientClass(this.#options.pool.connectTimeoutMs, `the server ${url}`),
      });
      pool.on('error', (err) => this.#logger.warn({ err: err.message, server: url }, 'idle admin client failed'));
      this.#admin.set(name, pool);
    }
    return pool;
  }

  /**
   * A connector that opens one connection on `url` per migration command (outside every pool, so a
   * migration never waits for a pooled connection) and ends it afterwards.
   */
  direct(url: string): Connector {
    const connect = clientConnector(url, this.#options.pool.connectTimeoutMs);
    return () => (this.#ended ? Promise.reject(closedError()) : connect());
  }

  /** Marks the start of closing: no new main pool is opened from now on. */
  beginClose(): void {
    this.#closing = true;
  }

  /** Ends everything, in order; errors are collected, not thrown, so that every part gets closed. */
  async close(): Promise<unknown[]> {
    this.#closing = true;
    const errors: unknown[] = [];
    await this.tenants.close().catch((err: unknown) => errors.push(err));
    const admin = [...this.#admin.values()];
    this.#admin.clear();
    for (const result of await Promise.allSettled(admin.map((pool) => pool.end()))) {
      if (result.status === 'rejected') errors.push(result.reason);
    }
    await this.locks.close().catch((err: unknown) => errors.push(err));
    this.#ended = true;
    await this.#main?.end().catch((err: unknown) => errors.push(err));
    return errors;
  }
}
