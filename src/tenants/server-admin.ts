import type pg from 'pg';
import type { Connections } from '../connections/connections.js';
import { TenantDbError } from '../errors.js';
import { PG, sqlState } from '../util/pg-errors.js';
import { InFlight } from '../util/in-flight.js';
import { withDatabase } from '../util/redact.js';
import { quoteDatabaseName } from '../util/sql.js';
import { verifierLiteral } from './credentials.js';

/**
 * With `tenantRoles`: the group role every tenant role belongs to. It holds the rights on the tables
 * inside tenant databases (granted in the template, see {@link TENANT_GRANTS}), which a member can only use
 * in the one database it may connect to.
 * @internal
 */
export const TENANT_GROUP_ROLE = 'tenantdb_tenants';

/**
 * Run in a tenant database (the template, or a database made before `tenantRoles`) as the migrating user:
 * the group may use the tables, sequences and functions of `public`, now and those later migrations make,
 * but not create objects nor rewrite the migrations' bookkeeping.
 * @internal
 */
export const TENANT_GRANTS = `
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  GRANT USAGE ON SCHEMA public TO ${TENANT_GROUP_ROLE};
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public TO ${TENANT_GROUP_ROLE};
  GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${TENANT_GROUP_ROLE};
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${TENANT_GROUP_ROLE};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES TO ${TENANT_GROUP_ROLE};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${TENANT_GROUP_ROLE};
  REVOKE ALL ON tenantdb_migrations FROM ${TENANT_GROUP_ROLE};
  GRANT SELECT ON tenantdb_migrations TO ${TENANT_GROUP_ROLE};
`;

/**
 * The statements that act on whole databases (CREATE, DROP, size), on each tenant server's admin pool (see
 * `Connections.admin`: its `adminUrl`, database `postgres`), outside the tenant connection budget.
 * @internal
 */
export class ServerAdmin {
  readonly #connections: Connections;
  /** Statements sent and not settled yet (queued in a pool or running). */
  readonly #inFlight = new InFlight();
  #closed = false;

  constructor(connections: Connections) {
    this.#connections = connections;
  }

  /** The traffic URL (without database, maybe a pooler) of a named server; VALIDATION for an unknown name. */
  serverUrl(server: string): string {
    return this.#connections.server(server).url;
  }

  /** The direct admin URL (without database) of a named server; VALIDATION for an unknown name. */
  adminServerUrl(server: string): string {
    return this.#connections.server(server).adminUrl;
  }

  /** The admin URL of a database on a named server. */
  databaseUrl(server: string, database: string): string {
    // Through URL, so that a server URL with parameters (`?sslmode=require`) keeps them after the database.
    return withDatabase(this.adminServerUrl(server), database);
  }

  /** One statement on the server's maintenance database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(server: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#closed) return Promise.reject(new TenantDbError('CLOSED', 'the platform was closed'));
    return this.#inFlight.track(this.#connections.admin(server).query<R>(sql, params));
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

  /**
   * `CREATE DATABASE name [TEMPLATE template]`; both names validated and quoted. A clone that finds the
   * template in use (55006) ends the sessions on it and tries once more: a pooler such as PgBouncer keeps
   * its server connections to a database open after its clients left, and nothing of ours connects to a
   * finished template.
   */
  async createDatabase(server: string, database: string, template?: string): Promise<void> {
    const tpl = template === undefined ? '' : ` TEMPLATE ${quoteDatabaseName(template)}`;
    const sql = `CREATE DATABASE ${quoteDatabaseName(database)}${tpl}`;
    try {
      await this.query(server, sql);
    } catch (err) {
      if (template === undefined || sqlState(err) !== PG.OBJECT_IN_USE) throw err;
      await this.endSessions(server, template);
      await this.query(server, sql);
    }
  }

  /** Creates the group role of tenant roles unless it exists (two processes at once: one creates it). */
  async ensureGroupRole(server: string): Promise<void> {
    const { rowCount } = await this.query(server, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [TENANT_GROUP_ROLE]);
    if (rowCount === 1) return;
    await this.query(server, `CREATE ROLE ${TENANT_GROUP_ROLE} NOLOGIN`).catch((err: unknown) => {
      if (sqlState(err) !== PG.DUPLICATE_OBJECT && sqlState(err) !== PG.UNIQUE_VIOLATION) throw err;
    });
  }

  /**
   * Gives a tenant database its login role: created (or, when it exists, altered) with the password whose
   * SCRAM verifier is given and no rights beyond logging in, a member of {@link TENANT_GROUP_ROLE}; the
   * database's CONNECT and TEMPORARY revoked from PUBLIC and granted to it alone. Idempotent.
   */
  async setTenantRole(server: string, role: string, database: string, verifier: string): Promise<void> {
    const r = quoteDatabaseName(role);
    const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD ${verifierLiteral(verifier)}`;
    const { rowCount } = await this.query(server, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    await this.query(server, `${rowCount === 1 ? 'ALTER' : 'CREATE'} ROLE ${r} ${attributes}`);
    const d = quoteDatabaseName(database);
    await this.query(
      server,
      `GRANT ${TENANT_GROUP_ROLE} TO ${r}; REVOKE ALL ON DATABASE ${d} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ${d} TO ${r}`,
    );
  }

  /** Drops a tenant's login role if it exists (after its database: the role's rights on it go with it). */
  async dropRole(server: string, role: string): Promise<void> {
    await this.query(server, `DROP ROLE IF EXISTS ${quoteDatabaseName(role)}`);
  }

  /** Ends every session connected to a database (a pooler's idle server connections, typically). */
  async endSessions(server: string, database: string): Promise<void> {
    await this.query(server, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
      database,
    ]);
  }

  /** Drops a database if it exists, ending its sessions (`WITH (FORCE)`). */
  async dropDatabase(server: string, database: string): Promise<void> {
    await this.query(server, `DROP DATABASE IF EXISTS ${quoteDatabaseName(database)} WITH (FORCE)`);
  }

  /** Refuses new statements and lets those in flight finish (the pools themselves end with the platform's connections). */
  async close(): Promise<void> {
    this.#closed = true;
    // pg-pool never serves a query still queued once end() is called: its caller (a tenant being created)
    // would wait for ever, and so would closing the main pool.
    await this.#inFlight.drained();
  }
}
