import pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../platform/options.js';
import { redactUrl } from '../util/redact.js';
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

  constructor(servers: Record<string, string>, logger: Logger) {
    this.#servers = servers;
    this.#logger = logger;
  }

  /** The URL (without database) of a named server; VALIDATION for an unknown name. */
  serverUrl(server: string): string {
    const url = this.#servers[server];
    if (url === undefined) throw new TenantDbError('VALIDATION', `unknown tenant server ${JSON.stringify(server)}`);
    return url;
  }

  /** The URL of a database on a named server. */
  databaseUrl(server: string, database: string): string {
    return `${this.serverUrl(server)}/${encodeURIComponent(database)}`;
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
    return this.#pool(server).query<R>(sql, params);
  }

  async databaseExists(server: string, database: string): Promise<boolean> {
    const { rowCount } = await this.query(server, 'SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    return rowCount === 1;
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

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.end()));
  }
}
