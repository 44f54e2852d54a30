import { TenantDbError } from '../errors.js';
import type { S3Options } from '../storage/s3-options.js';
import type { ResolvedOptions, ResolvedPoolOptions, ResolvedServer } from '../core/resolved-options.js';
import { silentLogger, type Logger } from '../util/logger.js';

export type { Logger } from '../util/logger.js';
export type { S3Credentials, S3Options } from '../storage/s3-options.js';
import { resolveS3StoreLimits } from '../storage/s3-object-store.js';
import { parseCredentialsKey } from '../tenants/credentials.js';
import type { PlacementPolicy } from '../tenants/placement.js';
import type { TelemetryOptions } from '../telemetry/types.js';

/** Document rules. */
export interface DocumentsOptions {
  /** Upload size limit in bytes, enforced on the bytes streamed. Default: none. */
  maxBytes?: number;
}

/** Bounds and timeouts of the connections the platform opens. */
export interface PoolOptions {
  /**
   * Tenant pools kept open at most (least recently used is evicted). Default: no bound but the connection
   * budget: idle connections of as many tenant databases as `maxConnections` allows stay open.
   */
  maxTenantPools?: number;
  /** Connections one tenant pool opens at most. Default: 4. */
  maxConnectionsPerTenant?: number;
  /**
   * Hard ceiling on this process's open connections to the tenant databases of each tenant server (one
   * budget per server, as PostgreSQL's `max_connections` is per server), across every pool of that server;
   * also what the idle connections cache: when it is full, a new connection first closes the least valuable
   * idle one of the same server (of the tenant asked for least often lately, then least recently). Default: 50.
   */
  maxConnections?: number;
  /**
   * One connection budget shared by every process of the platform, per tenant server: all processes
   * together open at most `maxConnections` connections to the tenant databases of each server, on top of
   * each process's own `maxConnections`. A process takes a slot (a session advisory lock, on one direct
   * control connection per process and server to the `postgres` database of the server's `adminUrl`) before
   * it opens a tenant connection, and gives it back once that connection has closed; a killed process's
   * slots free themselves when the server notices its control connection is gone. A process that finds no
   * slot free closes its own idle connections on that server, then waits up to `acquireTimeoutMs`
   * (UNAVAILABLE). The server's `adminUrl` must be direct or a session-mode pooler. Default: none.
   *
   * @example
   * ```ts
   * // 3 processes × 20 would be 60; the server takes 30 tenant connections at most.
   * createPlatform({ ...options, pool: { maxConnections: 20, sharedBudget: { maxConnections: 30 } } });
   * ```
   */
  sharedBudget?: SharedBudgetOptions;
  /** An idle pool closes after this many milliseconds. Default: 30 000. */
  idleMs?: number;
  /**
   * How long a caller waits for a connection when the budget (or the main pool) is full, before
   * UNAVAILABLE. Default: 30 000.
   */
  acquireTimeoutMs?: number;
  /** Connections of the pool on the main database (users, tenants, memberships). Default: 10. */
  maxMainConnections?: number;
  /**
   * Connections per server of the admin pools (CREATE/DROP DATABASE, sizes), on `adminUrl` (or `mainAdminUrl`
   * for the main database's server). Default: 2.
   */
  maxAdminConnections?: number;
  /**
   * Bounds every connection the platform opens (main, admin, tenant, migration, lock): TCP, TLS, startup and
   * authentication. A server that accepts and never answers fails the call with UNAVAILABLE. Default: 10 000.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL's `statement_timeout` for queries in tenant scopes (`ctx.query`, `ctx.transaction`): a query
   * that runs longer is cancelled by the server and rejects with the driver's error (SQLSTATE 57014); the
   * connection stays usable. Migrations are never bound by it. Default: none.
   */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL's `idle_in_transaction_session_timeout` for transactions the platform opens on tenant
   * databases (`ctx.transaction`): one left idle longer (a forgotten `await`) is ended by the server, which
   * frees its connection and its locks. 0 turns it off. Default: 60 000.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * How long a scope of a tenant being moved (`tenants.move`) waits for the move's switch when writes are
   * blocked, before UNAVAILABLE (retryable): new scopes of this process, and scopes of any process whose
   * connection to the old database is refused. Default: 10 000.
   */
  moveWaitMs?: number;
}

/** `pool.sharedBudget`: a connection budget every process of the platform shares, per tenant server. */
export interface SharedBudgetOptions {
  /** Connections of all processes together to the tenant databases of one server. A positive integer. */
  maxConnections: number;
}

/** A tenant server: where its tenant traffic goes (`url`, which may be a pooler) and a direct `adminUrl`. */
export interface TenantServerOptions {
  /** The server for tenant traffic, without a database, e.g. `postgres://app@pgbouncer:6432`. May be a pooler. */
  url: string;
  /**
   * A direct connection to the same PostgreSQL server (no pooler, or a session-mode one), for `CREATE`/`DROP
   * DATABASE`, templates and migrations. Default: `url`.
   */
  adminUrl?: string;
  /**
   * The server's share of new tenants under the default placement: a tenant goes to the server with the lowest
   * tenants ÷ weight. 0 takes no new tenant unless `tenants.create({ server })` names it (a server being
   * drained, or kept for chosen tenants). Default: 1.
   */
  weight?: number;
}

/** Options of {@link createPlatform}. */
export interface PlatformOptions {
  /**
   * The main database, e.g. `postgres://postgres@127.0.0.1:5432/saas_platform`; `init()` creates it if missing.
   * Its traffic (users, tenants, memberships) may go through a pooler such as PgBouncer.
   */
  mainUrl: string;
  /**
   * A direct URL of the main database (no pooler, or a session-mode one), for its migrations, its locks and
   * creating it. Default: `mainUrl`. Needed when `mainUrl` is a transaction-mode pooler.
   */
  mainAdminUrl?: string;
  /** The object store for documents. */
  s3: S3Options;
  /**
   * Named PostgreSQL servers tenants live on: a URL without a database, or `{ url, adminUrl? }` when tenant
   * traffic goes through a pooler. Default: `{ default: <server of mainUrl> }` (admin: the server of `mainAdminUrl`).
   */
  tenantServers?: Record<string, string | TenantServerOptions>;
  /**
   * Where a new tenant's database goes when `tenants.create` names no server: a function that returns a key of
   * `tenantServers` (or a promise of one). Default: the server with the lowest tenants ÷ `weight` among those
   * with a weight above 0, skipping servers that could not be reached moments ago.
   *
   * @example
   * ```ts
   * placement: ({ servers }) => (servers.find((s) => s.name === 'eu1' && s.tenants < 500) ?? servers[0]!).name
   * ```
   */
  placement?: PlacementPolicy;
  /** Bounds of the tenant pool manager. */
  pool?: PoolOptions;
  /** Document rules. */
  documents?: DocumentsOptions;
  /** Extra folders of the host app's own tenant migrations, run after the built-in ones. */
  tenantMigrations?: string[];
  /** Extra folders of the host app's own main-database migrations, run after the built-in ones. */
  mainMigrations?: string[];
  /**
   * Tenant databases kept cloned ahead of need, per tenant server: `tenants.create` then renames one
   * (under a millisecond) instead of cloning the template, and a new spare is cloned in the background.
   * 0 clones on demand. Default: 2.
   */
  tenantSpares?: number;
  /**
   * How long a process may use what it read of a tenant (active? ready?) before reading it again, in
   * milliseconds. Changes made through this platform take effect at once; those made by another process
   * within this time. 0 reads the registry on every `withTenant`. Default: 1000.
   */
  tenantCacheMs?: number;
  /**
   * A login role of its own for every tenant database created from now on: `CONNECT` on the database is
   * revoked from PUBLIC and granted to that role only, the role has no superuser, createdb or createrole
   * right, and the platform reaches the tenant with it. Its random password is kept in the main database,
   * encrypted with `credentialsKey`; `tenants.rotateCredentials(id)` replaces it (and gives a tenant made
   * before the option was on a role). Needs an admin URL that may create roles. Default: false.
   */
  tenantRoles?: boolean;
  /**
   * The key that encrypts the tenant roles' passwords: 32 bytes, as a Buffer or as a string of 64 hex
   * digits or of base64. Required with `tenantRoles`; keep it out of the main database and its backups.
   */
  credentialsKey?: Buffer | string;
  /** A pino-compatible logger. Default: silent. */
  logger?: Logger;
  /**
   * Metrics and spans through OpenTelemetry (`@opentelemetry/api`, an optional peer dependency): the app's
   * `meterProvider` and `tracerProvider`, and whether metrics carry the tenant id. `false` turns it off.
   * Default: the providers registered globally with `@opentelemetry/api`, when it is installed; with none
   * registered, nothing is recorded (see "Metrics and traces" in the README).
   *
   * @example
   * ```ts
   * createPlatform({ ...options, telemetry: { meterProvider, tracerProvider, tenantAttributes: false } });
   * ```
   */
  telemetry?: TelemetryOptions | false;
}

/** `telemetry`, checked. */
function telemetry(value: unknown): TelemetryOptions | false {
  if (value === undefined) return {};
  if (value === false) return false;
  if (typeof value !== 'object' || value === null) fail('telemetry must be an object or false');
  const { meterProvider, tracerProvider, tenantAttributes } = value as Record<string, unknown>;
  const provider = (p: unknown, method: string, what: string): void => {
    if (p === undefined) return;
    if (typeof p !== 'object' || p === null || typeof (p as Record<string, unknown>)[method] !== 'function') {
      fail(`telemetry.${what} must be an OpenTelemetry ${what === 'meterProvider' ? 'MeterProvider' : 'TracerProvider'} (with ${method}())`);
    }
  };
  provider(meterProvider, 'getMeter', 'meterProvider');
  provider(tracerProvider, 'getTracer', 'tracerProvider');
  if (tenantAttributes !== undefined && typeof tenantAttributes !== 'boolean') fail('telemetry.tenantAttributes must be a boolean');
  return { ...(value as TelemetryOptions) };
}

/** `tenantRoles` and its key, checked together. */
function tenantRoles(options: PlatformOptions): { tenantRoles: boolean; credentialsKey: Buffer | undefined } {
  if (options.tenantRoles !== undefined && typeof options.tenantRoles !== 'boolean') fail('tenantRoles must be a boolean');
  const enabled = options.tenantRoles === true;
  if (enabled && options.credentialsKey === undefined) fail('tenantRoles needs credentialsKey (32 bytes) to encrypt the role passwords');
  return { tenantRoles: enabled, credentialsKey: options.credentialsKey === undefined ? undefined : parseCredentialsKey(options.credentialsKey) };
}

/** `pool.sharedBudget`, checked. */
function sharedBudget(value: unknown): { maxConnections: number } | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) fail('pool.sharedBudget must be an object: { maxConnections }');
  const { maxConnections } = value as { maxConnections?: unknown };
  if (maxConnections === undefined) fail('pool.sharedBudget.maxConnections is required');
  return { maxConnections: positiveInt(maxConnections, 'pool.sharedBudget.maxConnections', 0) };
}

function fail(message: string): never {
  throw new TenantDbError('VALIDATION', message);
}

function postgresUrl(value: unknown, what: string): URL {
  if (typeof value !== 'string' || value.length === 0) fail(`${what} is required`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`${what} is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    fail(`${what} must be a postgres:// URL`);
  }
  return url;
}

function positiveInt<F extends number | undefined>(value: unknown, what: string, fallback: F): number | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    fail(`${what} must be a positive integer`);
  }
  return value;
}

function nonNegativeInt(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(`${what} must be a non-negative integer`);
  return value;
}

/** The server part of a URL (the same URL with no database). */
function serverOf(url: URL): string {
  const server = new URL(url.toString());
  server.pathname = '';
  return server.toString().replace(/\/$/, '');
}

/**
 * Checks options and fills in defaults. Throws VALIDATION synchronously on anything wrong.
 * @internal
 */
export function resolveOptions(options: PlatformOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options are required');
  const main = postgresUrl(options.mainUrl, 'mainUrl');
  if (main.pathname.replace(/^\//, '') === '') fail('mainUrl must name a database');

  const s3 = options.s3;
  if (typeof s3 !== 'object' || s3 === null) fail('s3 is required');
  if (typeof s3.bucket !== 'string' || s3.bucket.length === 0) fail('s3.bucket is required');
  if (s3.prefix !== undefined && typeof s3.prefix !== 'string') fail('s3.prefix must be a string');

  const mainAdmin = options.mainAdminUrl === undefined ? main : postgresUrl(options.mainAdminUrl, 'mainAdminUrl');
  if (mainAdmin.pathname.replace(/^\//, '') === '') fail('mainAdminUrl must name a database');

  const tenantServers: Record<string, ResolvedServer> = {};
  const servers = options.tenantServers ?? {};
  if (typeof servers !== 'object' || servers === null) fail('tenantServers must be an object of server names');
  for (const [name, server] of Object.entries(servers)) {
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) fail(`tenantServers: bad server name ${JSON.stringify(name)}`);
    const what = `tenantServers.${name}`;
    if (typeof server === 'object' && server !== null) {
      const url = serverOf(postgresUrl(server.url, `${what}.url`));
      const adminUrl = server.adminUrl === undefined ? url : serverOf(postgresUrl(server.adminUrl, `${what}.adminUrl`));
      const weight = server.weight ?? 1;
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) fail(`${what}.weight must be a number of 0 or more`);
      tenantServers[name] = { url, adminUrl, weight };
    } else {
      const url = serverOf(postgresUrl(server, what));
      tenantServers[name] = { url, adminUrl: url, weight: 1 };
    }
  }
  tenantServers.default ??= { url: serverOf(main), adminUrl: serverOf(mainAdmin), weight: 1 };
  if (options.placement !== undefined && typeof options.placement !== 'function') fail('placement must be a function');

  const pool = options.pool ?? {};
  if (typeof pool !== 'object' || pool === null) fail('pool must be an object');
  const resolvedPool: ResolvedPoolOptions = {
    maxTenantPools: positiveInt(pool.maxTenantPools, 'pool.maxTenantPools', undefined),
    maxConnectionsPerTenant: positiveInt(pool.maxConnectionsPerTenant, 'pool.maxConnectionsPerTenant', 4),
    maxConnections: positiveInt(pool.maxConnections, 'pool.maxConnections', 50),
    idleMs: positiveInt(pool.idleMs, 'pool.idleMs', 30_000),
    acquireTimeoutMs: positiveInt(pool.acquireTimeoutMs, 'pool.acquireTimeoutMs', 30_000),
    maxMainConnections: positiveInt(pool.maxMainConnections, 'pool.maxMainConnections', 10),
    maxAdminConnections: positiveInt(pool.maxAdminConnections, 'pool.maxAdminConnections', 2),
    connectTimeoutMs: positiveInt(pool.connectTimeoutMs, 'pool.connectTimeoutMs', 10_000),
    statementTimeoutMs: positiveInt(pool.statementTimeoutMs, 'pool.statementTimeoutMs', undefined),
    idleInTransactionTimeoutMs: nonNegativeInt(pool.idleInTransactionTimeoutMs, 'pool.idleInTransactionTimeoutMs', 60_000),
    moveWaitMs: positiveInt(pool.moveWaitMs, 'pool.moveWaitMs', 10_000),
    sharedBudget: sharedBudget(pool.sharedBudget),
  };
  // Checked now, not at the first upload.
  resolveS3StoreLimits(s3);

  if (options.logger !== undefined) {
    const logger = options.logger as Partial<Record<keyof Logger, unknown>> | null;
    if (typeof logger !== 'object' || logger === null || !(['debug', 'info', 'warn', 'error'] as const).every((m) => typeof logger[m] === 'function')) {
      fail('logger must have debug, info, warn and error methods');
    }
  }
  if (options.s3.client !== undefined && (typeof options.s3.client !== 'object' || options.s3.client === null)) fail('s3.client must be an S3Client');

  const maxBytes = options.documents?.maxBytes;
  if (maxBytes !== undefined) positiveInt(maxBytes, 'documents.maxBytes', 0);

  const folders = (value: unknown, what: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
      fail(`${what} must be an array of folder paths`);
    }
    return [...value];
  };

  return {
    mainUrl: main.toString(),
    mainAdminUrl: mainAdmin.toString(),
    s3: { ...s3, prefix: s3.prefix ?? '' },
    tenantServers,
    placement: options.placement,
    pool: resolvedPool,
    documents: { maxBytes },
    tenantMigrations: folders(options.tenantMigrations, 'tenantMigrations'),
    mainMigrations: folders(options.mainMigrations, 'mainMigrations'),
    tenantCacheMs: nonNegativeInt(options.tenantCacheMs, 'tenantCacheMs', 1000),
    tenantSpares: nonNegativeInt(options.tenantSpares, 'tenantSpares', 2),
    ...tenantRoles(options),
    logger: options.logger ?? silentLogger,
    telemetry: telemetry(options.telemetry),
  };
}
