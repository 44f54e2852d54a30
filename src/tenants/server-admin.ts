import pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../platform/options.js';
import { redactUrl, withDatabase } from '../util/redact.js';
import { quoteDatabaseName } from '../util/sql.js';

/**
 * Small pools on each tenant server's `postgres` maintenance database, for the statements that act on
 * whole databases (CREATE, DROP, size). Outside the tenant connection budget: at most two connections
 * a server, closed when idle.
 * @internal
 */
export class ServerAdmin {
  readonly #servers: Record<string, string>;
  readonly #logger: Logger;
  readonly #pools = new Map<string, pg.Pool>();
  /** Statements sent and not settled yet (queued in a pool or running). */
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(servers: Record<string, string>, logger: Logger) {
    this.#servers = servers;
    this.#logger = logger;
  }

  /** The URL (without database) of a named server; VALIDATION for an unknown name. */
  serverUrl(server: string): string {
    // Own keys only: `constructor` or `__proto__` must not resolve to Object.prototype's members.
    const url = typeof server === 'string' && Object.hasOwn(this.#servers, server) ? this.#servers[server] : undefined;
    if (typeof url !== 'string') throw new TenantDbError('VALIDATION', `unknown tenant server ${JSON.stringify(server)}`);
    return url;
  }

  /** The URL of a database on a named server. */
  databaseUrl(server: string, database: string): string {
    // Through URL, so that a server URL with parameters (`?sslmode=require`) keeps them after the database.
    return withDatabase(this.serverUrl(server), database);
  }

  #pool(server: string): pg.Pool {
    let pool = this.#pools.get(server);
    if (!pool) {
      pool = new pg.Pool({
        connectionString: this.databaseUrl(server, 'postgres'),
        max: 2,
        idleTimeoutMillis: 5_000,
        allowExitOnIdle: true,
      });
      const url = redactUrl(this.serverUrl(server));
      pool.on('error', (err) => this.#logger.warn({ err: err.message, server: url }, 'idle admin client failed'));
      this.#pools.set(server, pool);
    }
    return pool;
  }

  /** One statement on the server's maintenance database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(server: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#closed) return Promise.reject(new TenantDbError('CLOSED', 'the platform was closed'));
    const running = this.#pool(server).query<R>(sql, params);
    const settled = running.then(
      () => {},
      () => {},
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    return running;
  }

  /** Whether a database of that name exists on the server. */
  async databaseExists(server: string, database: string): Promise<boolean> {
    const { rowCount } = await this.query(server, 'SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    return rowCount === 1;
  }

  /**
   * Whether a template database is complete: it exists and no longer allows connections, which is the
   * last step of its build (a build that failed or crashed half way leaves it open to connections).
   */
  async isCompleteTemplate(server: string, database: string): Promise<boolean> {
    const { rows } = await this.query<{ datallowconn: boolean }>(server, 'SELECT datallowconn FROM pg_database WHERE datname = $1', [
      database,
    ]);
    return rows.length === 1 && rows[0]!.datallowconn === false;
  }

  /** `CREATE DATABASE name [TEMPLATE template]`; both names validated and quoted. */
  async createDatabase(server: string, database: string, template?: string): Promise<void> {
    const tpl = template === undefined ? '' : ` TEMPLATE ${quoteDatabaseName(template)}`;
    await this.query(server, `CREATE DATABASE ${quoteDatabaseName(database)}${tpl}`);
  }

  /** Drops a database if it exists, ending its sessions (`WITH (FORCE)`). */
  async dropDatabase(server: string, database: string): Promise<void> {
    await this.query(server, `DROP DATABASE IF EXISTS ${quoteDatabaseName(database)} WITH (FORCE)`);
  }

  /** Refuses new statements, lets those in flight finish, then ends the pools. */
  async close(): Promise<void> {
    this.#closed = true;
    // pg-pool never serves a query still queued once end() is called: its caller (a tenant being created,
    // holding a main-database connection) would wait for ever, and so would closing the main pool.
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.end()));
  }
}
