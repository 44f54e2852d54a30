import type pg from 'pg';
import { TenantDbError, asTenantDbError, isUnreachable, withTenantDbErrors } from '../errors.js';
import { MembershipsServiceImpl } from '../memberships/memberships-service.js';
import type { MembershipsService } from '../memberships/types.js';
import { createMainMigrations, type MainMigrations } from '../migrations/main-migrations.js';
import { FleetMigrations } from '../migrations/fleet-migrations.js';
import type {
  FleetDownOptions,
  FleetMigrateOptions,
  FleetResumeOptions,
  FleetRun,
  FleetRunInfo,
  FleetRunOptions,
  FleetRunsOptions,
  FleetStatusRowsOptions,
  TenantMigrations,
  TenantMigrationStatus,
  FleetStatusOptions,
  FleetStatusSummary,
  FleetStatusSummaryOptions,
} from '../migrations/types.js';
import { DocumentsServiceImpl } from '../documents/documents-service.js';
import { TenantPoolManager } from '../pools/tenant-pool-manager.js';
import type { ConnectionStats, PoolStats, SharedBudgetStats } from '../pools/types.js';
import { captureTenant, parseCapturedTenant } from '../scope/captured-tenant.js';
import { TenantScopes, currentTenant } from '../scope/tenant-scope.js';
import type { CapturedTenant, TenantContext, WithTenantOptions } from '../scope/types.js';
import { S3ObjectStore } from '../storage/s3-object-store.js';
import { sweepStorage, type SweepOptions, type SweepResult } from '../storage/storage-sweep.js';
import { ServerAdmin } from '../tenants/server-admin.js';
import { TenantTemplates } from '../tenants/tenant-templates.js';
import { TenantsServiceImpl } from '../tenants/tenants-service.js';
import type { Tenant, TenantsService } from '../tenants/types.js';
import type { UsersService } from '../users/types.js';
import { UsersServiceImpl } from '../users/users-service.js';
import { PG, isMissingDatabase, sqlState } from '../util/pg-errors.js';
import { databaseOf, withDatabase } from '../util/redact.js';
import { MAX_IDENTIFIER_BYTES, quoteIdent } from '../util/sql.js';
import { PlatformContext } from '../core/platform-context.js';
import { checkHealth, healthTimeoutMs, type HealthOptions, type HealthReport } from './health.js';
import { resolveOptions, type PlatformOptions } from './options.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { instrumentDocuments, instrumentStorage } from '../telemetry/instrumented.js';

/** `platform.migrations.tenants`: the tenant migrations over the whole fleet. */
export interface FleetMigrationsApi {
  /**
   * Migrates every tenant database (or a selection), `concurrency` at a time inside the connection budget,
   * in waves when asked, as a run recorded in the main database. One failure never stops the others unless
   * a stop rule (`maxFailures`, `maxFailureRate`) halts the run; tenants not yet provisioned are skipped;
   * never throws half way. Also refreshes the template new tenants are cloned from.
   *
   * @example
   * ```ts
   * const run = await platform.migrations.tenants.up({ waves: [5, '10%', '100%'], maxFailures: 3 });
   * if (run.status === 'halted') console.log(run.failed); // fix, then: await platform.migrations.tenants.resume(run.id)
   * ```
   */
  up(options?: FleetMigrateOptions): Promise<FleetRun>;
  /**
   * Reverts every selected tenant down to and including `to` with its down files, as a recorded run (waves
   * and stop rules as for `up`).
   */
  down(options: FleetDownOptions): Promise<FleetRun>;
  /**
   * Takes back exactly what run `runId` applied, tenant by tenant, newest migration first, as a new run.
   * A tenant with migrations applied on top of the run's fails (CONFLICT) and is left as it is.
   */
  revert(runId: string, options?: FleetRunOptions): Promise<FleetRun>;
  /**
   * Carries on a run whose process died, or that halted: the tenants still pending, with the run's own
   * selection, waves and stop rules (failures counted from the resume). A run that a live process carries
   * is CONFLICT; a finished one is returned as it is.
   */
  resume(runId: string, options?: FleetResumeOptions): Promise<FleetRun>;
  /** A recorded run with every tenant's outcome; NOT_FOUND when there is none. */
  run(runId: string): Promise<FleetRun>;
  /** The recorded runs, newest first, without their tenants. */
  runs(options?: FleetRunsOptions): Promise<FleetRunInfo[]>;
  /**
   * Executed and pending migrations of every provisioned tenant (or of a selection), a row each. A tenant
   * whose migrations cannot be read has `error` (and `reachable: false` when its server did not answer);
   * never throws half way.
   */
  status(options?: FleetStatusRowsOptions): Promise<TenantMigrationStatus[]>;
  /**
   * The provisioned tenants counted per schema version (their last executed migration), to see a mixed
   * fleet at a glance; unreachable tenants and those whose migrations could not be read are counted apart.
   *
   * @example
   * ```ts
   * const { total, unreachable, versions } = await platform.migrations.tenants.status({ summary: true });
   * for (const v of versions) console.log(v.version ?? '(none)', v.tenants, `${v.pending} pending`);
   * ```
   */
  status(options: FleetStatusSummaryOptions): Promise<FleetStatusSummary>;
  /** Rows, or the summary when `options.summary` is true (for a `summary` known only at run time). */
  status(options?: FleetStatusOptions): Promise<TenantMigrationStatus[] | FleetStatusSummary>;
}

/** `platform.migrations`. */
export interface PlatformMigrations {
  /** The main database's migrations (built-in, then the host's `mainMigrations`). */
  readonly main: MainMigrations;
  /** The tenant migrations (built-in, then the host's `tenantMigrations`) over every tenant database. */
  readonly tenants: FleetMigrationsApi;
  /** The Umzug instance of one tenant database (a `Tenant`, an id or a database name). */
  tenant(tenant: Tenant | string): Promise<TenantMigrations>;
}

/** `platform.storage`. */
export interface PlatformStorage {
  /**
   * Removes objects that no file row references, older than `olderThanMs` (default one hour), and
   * aborts stale multipart uploads.
   */
  sweep(options?: SweepOptions): Promise<SweepResult>;
}

/** What `platform.stats()` returns. */
export interface PlatformStats {
  /** The tenant pools. */
  pools: PoolStats;
  /** Connections to tenant databases, against the budgets, in total and open per tenant server. */
  connections: PlatformConnectionStats;
  /** Each configured tenant server by name, also those not used yet. */
  servers: Record<string, ServerStats>;
}

/**
 * {@link ConnectionStats} of the whole platform: `open` over every tenant server, `max` is
 * `pool.maxConnections` × the number of configured tenant servers (the budget is per server).
 */
export interface PlatformConnectionStats extends ConnectionStats {
  /** The open connections of each tenant server by name (its `url` and `adminUrl` together). */
  servers: Record<string, number>;
}

/**
 * The connections of one tenant server in `platform.stats().servers`.
 *
 * @example
 * ```ts
 * const { connections, waiting } = platform.stats().servers.default!;
 * if (waiting > 0) logger.warn({ open: connections.open, max: connections.max }, 'tenant connections are short');
 * ```
 */
export interface ServerStats {
  /** This process's connections to the server's tenant databases (open or opening) and its budget, `pool.maxConnections`. */
  connections: ConnectionStats;
  /** Callers of this process waiting for a connection slot of the server. */
  waiting: number;
  /**
   * With `pool.sharedBudget`: the slots of the budget shared by every process that this process holds
   * (one per connection it has open on the server), and `pool.sharedBudget.maxConnections`.
   */
  sharedBudget?: SharedBudgetStats;
}

/** What {@link createPlatform} returns: the whole API of one multi-tenant platform. */
export interface Platform extends AsyncDisposable {
  /**
   * Creates the main database if it is missing, migrates it and prepares tenant templates.
   * Idempotent; safe when several processes call it at once.
   */
  init(): Promise<void>;
  /** The platform's user accounts. */
  readonly users: UsersService;
  /** Who belongs to which tenant, with what role. */
  readonly memberships: MembershipsService;
  /** Tenants and their databases. */
  readonly tenants: TenantsService;
  /** The migrations of the main database and of every tenant database. */
  readonly migrations: PlatformMigrations;
  /** Object-store maintenance. */
  readonly storage: PlatformStorage;
  /**
   * Runs `fn(ctx)` in the tenant's scope and returns what it returns. `tenant` is a `Tenant`, an id or a
   * database name. With `userId`, the user must be an active member (else FORBIDDEN) and `ctx.role` is
   * their role; without it the caller is trusted server code. Inside, `currentTenant()` returns `ctx`.
   *
   * @example
   * ```ts
   * const docs = await platform.withTenant(tenantId, (ctx) => ctx.documents.list({}), { userId });
   * ```
   */
  withTenant<T>(tenant: Tenant | string, fn: (ctx: TenantContext) => Promise<T> | T, options?: WithTenantOptions): Promise<T>;
  /**
   * The scope the caller runs in as a plain, JSON-serialisable value (sync): its tenant's id, its user's id
   * and role when it has a user, and a `version`. Hand it to background work (a job, a message, a timer)
   * that re-enters the scope with {@link runInTenant}. Outside any scope it throws VALIDATION.
   *
   * @example
   * ```ts
   * app.post('/t/reports', async (req, res) => {
   *   await queue.add('report', { captured: platform.captureTenant(), month: req.body.month });
   *   res.status(202).end();
   * });
   * ```
   */
  captureTenant(): CapturedTenant;
  /**
   * Runs `fn(ctx)` in the scope `captured` describes (from {@link captureTenant}, also after a round trip
   * through JSON), with the checks of `withTenant(captured.tenantId, fn, { userId: captured.userId })`:
   * a user no longer an active member is FORBIDDEN, a deactivated tenant TENANT_INACTIVE, a dropped one
   * NOT_FOUND. The scope's role is the user's role now (read again), never the captured one. A value that
   * is not a captured scope (another shape or version, a non-UUID id, extra keys) is VALIDATION.
   * Inside `fn`, `currentTenant()` returns `ctx`.
   *
   * @example
   * ```ts
   * worker.on('message', ({ captured, month }) =>
   *   platform.runInTenant(captured, (ctx) => buildReport(ctx, month)));
   * ```
   */
  runInTenant<T>(captured: CapturedTenant, fn: (ctx: TenantContext) => Promise<T> | T): Promise<T>;
  /** Pool and connection counters (sync). */
  stats(): PlatformStats;
  /**
   * Checks the main database, every configured tenant server and S3 at once, each bounded by `timeoutMs`
   * (default 2000): a connection of its own per database check (none taken from the pools, none left
   * behind when a server does not answer in time) with `SELECT 1`, and HeadBucket on the bucket.
   * `ok` is true when every check is. Never rejects but with VALIDATION for a bad `timeoutMs`; once the
   * platform is closed every check fails with CLOSED (so a health route answers 503 while shutting down).
   *
   * @example
   * ```ts
   * const { ok, checks } = await platform.health({ timeoutMs: 1000 });
   * if (!ok) logger.warn(checks, 'tenantdb is unhealthy');
   * ```
   */
  health(options?: HealthOptions): Promise<HealthReport>;
  /**
   * Ends every pool the platform opened. Idempotent: every call returns the same promise.
   * Afterwards every call rejects with CLOSED.
   */
  close(): Promise<void>;
}

// The main database's name comes from the host's URL: letters, digits, `_` and `$`, within PostgreSQL's limit.
const MAIN_DATABASE_NAME = /^[\p{L}\p{N}_$]+$/u;

/** The main database's name, checked, quoted as an identifier. */
function quotedMainDatabase(name: string): string {
  if (!MAIN_DATABASE_NAME.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new TenantDbError(
      'VALIDATION',
      `the main database name must be letters, digits, _ or $, at most ${MAX_IDENTIFIER_BYTES} bytes`,
    );
  }
  return quoteIdent(name);
}

/** `fn` on a short-lived direct connection to `url` (see Connections.direct), ended after. */
async function withClient<T>(ctx: PlatformContext, url: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const { client, release } = await ctx.connections.direct(url)();
  try {
    return await fn(client);
  } finally {
    await release();
  }
}

/**
 * Creates the main database when it does not exist, over `mainAdminUrl` and the same server's `postgres`
 * database. Tolerates another process creating it at the same moment.
 */
async function ensureMainDatabase(ctx: PlatformContext): Promise<void> {
  const { mainAdminUrl } = ctx.options;
  const name = databaseOf(mainAdminUrl);
  const quoted = quotedMainDatabase(name);
  const fail = (err: unknown): never => {
    if (err instanceof TenantDbError && err.code === 'UNAVAILABLE') throw err;
    throw new TenantDbError('MIGRATION_FAILED', 'cannot reach or create the main database', { cause: err });
  };
  const maintenance = withDatabase(mainAdminUrl, 'postgres');
  try {
    // Connecting to it is the usual case and needs no access to `postgres`.
    await withClient(ctx, mainAdminUrl, async () => {});
    return;
  } catch (err) {
    // PostgreSQL says 3D000; a pooler in front of it may say 08P01 with other words. Ask the server itself
    // whether the database exists before creating it, and report the first error when it does.
    if (!isMissingDatabase(err) && sqlState((err as { cause?: unknown }).cause ?? err) !== PG.PROTOCOL_VIOLATION) fail(err);
    const exists = await withClient(ctx, maintenance, async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      return rowCount === 1;
    }).catch(fail);
    if (exists) fail(err);
  }
  try {
    await withClient(ctx, maintenance, (client) => client.query(`CREATE DATABASE ${quoted}`));
    ctx.logger.info({ database: name }, 'created the main database');
  } catch (err) {
    // Another process created it between our look and our CREATE: either error says so.
    const state = sqlState(err);
    if (state !== PG.DUPLICATE_DATABASE && state !== PG.UNIQUE_VIOLATION) fail(err);
  }
}

class PlatformImpl implements Platform {
  readonly #ctx: PlatformContext;
  readonly users: UsersService;
  readonly memberships: MembershipsService;
  readonly tenants: TenantsService;
  readonly migrations: PlatformMigrations;
  readonly storage: PlatformStorage;
  readonly #pools: TenantPoolManager;
  readonly #tenants: TenantsServiceImpl;
  readonly #templates: TenantTemplates;
  readonly #scopes: TenantScopes;
  #store: S3ObjectStore | undefined;
  readonly #objectStore: () => S3ObjectStore;
  #initializing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(ctx: PlatformContext, internal: { recordRuns: boolean }) {
    this.#ctx = ctx;
    const { options, logger } = ctx;
    // What the host calls rejects only with TenantDbErrors: an unexpected database failure is DATABASE.
    this.users = withTenantDbErrors(new UsersServiceImpl(ctx));
    this.memberships = withTenantDbErrors(new MembershipsServiceImpl(ctx));
    const admin = new ServerAdmin(ctx.connections);
    const pools = ctx.connections.tenants;
    this.#pools = pools;
    const templates = new TenantTemplates(ctx, admin);
    this.#templates = templates;
    const store = (): S3ObjectStore => {
      ctx.assertOpen();
      this.#store ??= new S3ObjectStore(options.s3, logger);
      return this.#store;
    };
    this.#objectStore = store;
    const tenants = new TenantsServiceImpl({
      ctx,
      admin,
      templates,
      pools,
      store,
      onChange: (id) => this.#scopes.forget(id),
      moveGate: {
        block: (id, drainMs) => this.#scopes.block(id, drainMs),
        unblock: (id) => this.#scopes.unblock(id),
      },
    });
    this.#tenants = tenants;
    this.tenants = withTenantDbErrors(tenants);
    this.#scopes = new TenantScopes({
      ctx,
      tenants,
      pools,
      cacheMs: options.tenantCacheMs,
      moveWaitMs: options.pool.moveWaitMs,
      documents: (scope) =>
        instrumentDocuments(
          ctx.telemetry,
          scope.tenant,
          withTenantDbErrors(
            new DocumentsServiceImpl(scope, { store: store(), prefix: options.s3.prefix, maxBytes: options.documents.maxBytes, logger }),
          ),
        ),
    });
    const fleet = withTenantDbErrors(new FleetMigrations({ ctx, tenants, templates, pools, record: internal.recordRuns }));
    this.migrations = {
      main: withTenantDbErrors(createMainMigrations(ctx)),
      tenants: {
        up: (o) => fleet.up(o),
        down: (o) => fleet.down(o),
        revert: (id, o) => fleet.revert(id, o),
        resume: (id, o) => fleet.resume(id, o),
        run: (id) => fleet.run(id),
        runs: (o) => fleet.runs(o),
        status: ((o?: FleetStatusOptions) => fleet.status(o)) as FleetMigrationsApi['status'],
      },
      tenant: (t) => fleet.tenant(t),
    };
    const storage = withTenantDbErrors({ sweep: (o?: SweepOptions) => sweepStorage({ ctx, tenants, pools, store }, o) });
    const { telemetry } = ctx;
    this.storage = telemetry ? instrumentStorage(telemetry, storage) : storage;
    if (telemetry) {
      telemetry.observe(() => this.stats());
      // Last on close (registered first): what finishes during close is still measured.
      ctx.onClose(async () => telemetry.close());
    }
    // Reverse order on close, then every connection goes (see Connections.close): the admin statements
    // under way finish, the store closes.
    ctx.onClose(() => admin.close());
    ctx.onClose(async () => this.#store?.close());
    // First of all on close: creates under way and background clones of spare databases finish (they use
    // the pools above).
    ctx.onClose(() => templates.close());
    ctx.onClose(() => tenants.close());
    // Before anything else on close: a migration run under way starts no more tenants, and records where it halted.
    ctx.onClose(() => fleet.close());
  }

  withTenant<T>(tenant: Tenant | string, fn: (ctx: TenantContext) => Promise<T> | T, options?: WithTenantOptions): Promise<T> {
    return this.#scopes.withTenant(tenant, fn, options);
  }

  captureTenant(): CapturedTenant {
    return captureTenant(currentTenant());
  }

  runInTenant<T>(captured: CapturedTenant, fn: (ctx: TenantContext) => Promise<T> | T): Promise<T> {
    let scope: CapturedTenant;
    try {
      scope = parseCapturedTenant(captured);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#scopes.withTenant(scope.tenantId, fn, scope.userId === undefined ? {} : { userId: scope.userId });
  }

  stats(): PlatformStats {
    const stats = this.#pools.stats();
    const { maxConnections, sharedBudget } = this.#ctx.options.pool;
    // By server name: the pool keys name their server (its `url` and its `adminUrl` share one budget).
    const open: Record<string, number> = {};
    const servers: Record<string, ServerStats> = {};
    const names = Object.keys(this.#ctx.options.tenantServers);
    for (const name of names) {
      const budget = stats.servers[name];
      open[name] = budget?.open ?? 0;
      servers[name] = { connections: { open: open[name], max: budget?.max ?? maxConnections }, waiting: budget?.waiting ?? 0 };
      if (sharedBudget) servers[name].sharedBudget = { held: budget?.shared?.held ?? 0, max: sharedBudget.maxConnections };
    }
    return { pools: stats.pools, connections: { open: stats.connections.open, max: maxConnections * names.length, servers: open }, servers };
  }

  health(options?: HealthOptions): Promise<HealthReport> {
    let timeoutMs: number;
    try {
      timeoutMs = healthTimeoutMs(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return checkHealth({ ctx: this.#ctx, headBucket: async (signal) => this.#objectStore().checkBucket(signal) }, timeoutMs);
  }

  init(): Promise<void> {
    try {
      this.#ctx.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    // One successful init per platform; a failed one may be retried.
    this.#initializing ??= this.#init().catch((err: unknown) => {
      this.#initializing = undefined;
      throw err;
    });
    return this.#initializing;
  }

  async #init(): Promise<void> {
    await ensureMainDatabase(this.#ctx);
    await this.migrations.main.up();
    if (this.#ctx.options.tenantRoles) await closeMainDatabase(this.#ctx);
    // Every server's template is ready before the first tenant is created; tenants a crash left
    // half-provisioned are finished or removed.
    try {
      const ready = await this.#prepareTemplates();
      await this.#tenants.repair();
      await this.#templates.repairSpares();
      for (const server of ready) this.#templates.refill(server);
    } catch (err) {
      throw asTenantDbError(err);
    }
  }

  /**
   * Builds (or finds) the template of every tenant server, all at once; returns the servers whose template is
   * ready. A server that cannot be reached is logged and left for later (its tenants fail, the others go on);
   * any other failure (a broken migration) fails `init()`.
   */
  async #prepareTemplates(): Promise<string[]> {
    const servers = Object.keys(this.#ctx.options.tenantServers);
    const results = await Promise.allSettled(servers.map((server) => this.#templates.ensure(server)));
    const ready: string[] = [];
    results.forEach((result, i) => {
      const server = servers[i]!;
      if (result.status === 'fulfilled') ready.push(server);
      else if (isUnreachable(result.reason)) {
        this.#ctx.logger.warn({ server, err: (result.reason as Error).message }, 'a tenant server could not be reached: its template waits for a later init or create');
      }
    });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !isUnreachable(r.reason));
    if (failed) throw failed.reason;
    return ready;
  }

  close(): Promise<void> {
    this.#closing ??= this.#ctx.shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates a platform. Synchronous and opens nothing: connections are made on first use.
 * Bad options throw a VALIDATION {@link TenantDbError} at once.
 *
 * @example
 * ```ts
 * const platform = createPlatform({
 *   mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform',
 *   s3: { bucket: 'tenantdb' },
 * });
 * await platform.init();
 * ```
 */
export function createPlatform(options: PlatformOptions): Platform {
  const resolved = resolveOptions(options);
  const internal = options as { [RECORD_RUNS]?: unknown; [INSTRUMENTATION]?: unknown };
  const telemetry = internal[INSTRUMENTATION] === false ? undefined : new Telemetry(resolved.telemetry, resolved.logger);
  const ctx = new PlatformContext(resolved, telemetry);
  return new PlatformImpl(ctx, { recordRuns: internal[RECORD_RUNS] !== false });
}

/**
 * A key of the telemetry benchmark's only (bench/otel.ts), not of `PlatformOptions`: `false` under it skips
 * every instrumentation branch (no OpenTelemetry, no diagnostics_channel events), the code path from before
 * they were added, to measure what they cost. Nothing else may set it.
 * @internal
 */
const INSTRUMENTATION = Symbol.for('@org/tenantdb/bench:instrumentation');

/**
 * A key of the fleet benchmark's only (bench/fleet-runs.ts), not of `PlatformOptions`: `false` under it in
 * the options runs fleet migrations without recording them in `migration_runs`, to measure what the record
 * costs. Such runs cannot be resumed, read back or reverted; nothing else may set it.
 * @internal
 */
const RECORD_RUNS = Symbol.for('@org/tenantdb/bench:record-runs');

/**
 * With `tenantRoles`: the main database refuses connections from roles not granted them (tenant roles
 * among them), keeping its own user's. A main user that may not change that (not the owner) is warned of.
 */
async function closeMainDatabase(ctx: PlatformContext): Promise<void> {
  const database = quoteIdent(databaseOf(ctx.options.mainUrl));
  try {
    await ctx.main.query(
      `REVOKE CONNECT, TEMPORARY ON DATABASE ${database} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ${database} TO CURRENT_USER`,
    );
  } catch (err) {
    if (sqlState(err) !== PG.INSUFFICIENT_PRIVILEGE) throw err;
    ctx.logger.warn({}, 'tenantRoles: could not revoke CONNECT on the main database from PUBLIC (its owner can)');
  }
}
