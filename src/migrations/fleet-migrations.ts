import type pg from 'pg';
import { TenantDbError, asTenantDbError, isUnreachable } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import type { ListTenantsOptions, Tenant } from '../tenants/types.js';
import type { TenantTemplates } from '../tenants/tenant-templates.js';
import { createSqlUmzug, type Connector, type SqlMigrationFile } from './sql-migrations.js';
import type {
  FleetMigrateOptions,
  FleetMigrateResult,
  FleetProgressEvent,
  FleetStatusOptions,
  FleetStatusSummary,
  FleetStatusSummaryOptions,
  FleetVersionCount,
  TenantMigrationStatus,
} from './types.js';
import type { PoolKey } from '../pools/types.js';
import { step } from '../util/steps.js';
import { isUuid } from '../util/uuid.js';

/** What fleet migrations need of the pool manager: connections inside the tenant connection budget. */
export interface FleetPools {
  acquire(key: PoolKey): Promise<{ client: pg.PoolClient; release(err?: Error | boolean): void }>;
}

/** What fleet migrations need of the tenant registry. */
export interface FleetTenants {
  list(options?: ListTenantsOptions): Promise<Tenant[]>;
  get(idOrDatabaseName: string): Promise<Tenant>;
  /** The key of a tenant database over its server's direct admin URL. */
  adminPoolKey(tenant: Pick<Tenant, 'server' | 'databaseName'>): PoolKey;
}

/** Runs `work` over `items` with at most `limit` at once, in order of `items`. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The rows of `status()` counted per version (the last executed migration), in the order of `files`. */
function summarise(rows: TenantMigrationStatus[], files: SqlMigrationFile[]): FleetStatusSummary {
  const summary: FleetStatusSummary = { total: rows.length, unreachable: 0, failed: 0, versions: [] };
  const byVersion = new Map<string | null, FleetVersionCount>();
  for (const row of rows) {
    if (row.error !== undefined) {
      if (row.reachable) summary.failed++;
      else summary.unreachable++;
      continue;
    }
    const version = row.executed.at(-1) ?? null;
    const count = byVersion.get(version) ?? { version, tenants: 0, pending: 0 };
    count.tenants++;
    // The same for every tenant at a version, but for one that skipped a migration numbered before its last.
    count.pending = Math.max(count.pending, row.pending.length);
    byVersion.set(version, count);
  }
  const position = new Map(files.map((f, i) => [f.name, i]));
  const rank = (version: string | null): number => (version === null ? -1 : (position.get(version) ?? files.length));
  summary.versions = [...byVersion.values()].sort(
    (a, b) => rank(a.version) - rank(b.version) || String(a.version).localeCompare(String(b.version)),
  );
  return summary;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * `platform.migrations.tenants` and `platform.migrations.tenant()`: the tenant migrations over the whole
 * fleet with bounded concurrency, inside the tenant connection budget, a result per tenant and never a
 * throw half way.
 * @internal
 */
export class FleetMigrations {
  readonly #ctx: PlatformContext;
  readonly #tenants: FleetTenants;
  readonly #templates: TenantTemplates;
  readonly #pools: FleetPools;

  constructor(deps: { ctx: PlatformContext; tenants: FleetTenants; templates: TenantTemplates; pools: FleetPools }) {
    this.#ctx = deps.ctx;
    this.#tenants = deps.tenants;
    this.#templates = deps.templates;
    this.#pools = deps.pools;
  }

  /**
   * Connections for one tenant's migrations. With `unreachable`, a server whose connect fails for want of an
   * answer is noted there, so that the rest of its tenants in the same run fail at once instead of each
   * waiting for `connectTimeoutMs`.
   */
  #connector(key: PoolKey, server?: string, unreachable?: Map<string, Error>): Connector {
    return async () => {
      const known = server === undefined ? undefined : unreachable?.get(server);
      if (known) throw new TenantDbError('UNAVAILABLE', `the tenant server ${server} could not be reached`, { cause: known });
      let lease;
      try {
        lease = await this.#pools.acquire(key);
      } catch (err) {
        if (server !== undefined && isUnreachable(err)) unreachable?.set(server, err as Error);
        throw err;
      }
      return { client: lease.client, release: (destroy?: boolean) => lease.release(destroy === true) };
    };
  }

  /**
   * The Umzug instance of one tenant database. Its migrations run on a pooled connection (inside the
   * connection budget) over the server's direct `adminUrl`.
   */
  async tenant(ref: Tenant | string): Promise<ReturnType<typeof createSqlUmzug>> {
    this.#ctx.assertOpen();
    // A Tenant is read again by its id (anything else is NOT_FOUND): its server and database are the registry's.
    const tenant = await this.#tenants.get(typeof ref === 'string' ? ref : (ref as Partial<Tenant> | null)?.id ?? '');
    return createSqlUmzug({
      connect: this.#connector(this.#tenants.adminPoolKey(tenant)),
      files: await this.#templates.files(),
      family: 'tenant',
      logger: this.#ctx.logger,
    });
  }

  async #select(only: string[] | undefined): Promise<{ tenants: Tenant[]; unknown: string[] }> {
    const all = await this.#tenants.list({ includeInactive: true });
    if (!only) return { tenants: all, unknown: [] };
    // Ids in any case (PostgreSQL prints them in lower case); database names as they are.
    const asListed = (ref: string): string => (isUuid(ref) ? ref.toLowerCase() : ref);
    const wanted = new Set(only.map(asListed));
    const tenants = all.filter((t) => wanted.has(t.id) || wanted.has(t.databaseName));
    const found = new Set(tenants.flatMap((t) => [t.id, t.databaseName]));
    return { tenants, unknown: only.filter((ref) => !found.has(asListed(ref))) };
  }

  async up(options: FleetMigrateOptions = {}): Promise<FleetMigrateResult> {
    this.#ctx.assertOpen();
    const requested = options.concurrency ?? 4;
    if (!Number.isInteger(requested) || requested < 1) {
      throw new TenantDbError('VALIDATION', 'concurrency must be a positive integer');
    }
    if (options.tenants !== undefined && !Array.isArray(options.tenants)) {
      throw new TenantDbError('VALIDATION', 'tenants must be an array of tenant ids or database names');
    }
    const concurrency = Math.min(requested, this.#ctx.options.pool.maxConnections);
    const files = await this.#templates.files();
    const { tenants, unknown } = await this.#select(options.tenants);

    // New tenants cloned while the rollout runs get the new schema from a refreshed template, on every server
    // at once (one that does not answer holds up none of the others).
    await Promise.all(
      Object.keys(this.#ctx.options.tenantServers).map((server) =>
        this.#templates.ensure(server).catch((err: unknown) => {
          this.#ctx.logger.error({ server, err: asError(err).message }, 'could not refresh the tenant template');
        }),
      ),
    );
    const unreachable = new Map<string, Error>();

    const result: FleetMigrateResult = { total: tenants.length + unknown.length, succeeded: [], failed: [], skipped: [] };
    let done = 0;
    const emit = (event: Omit<FleetProgressEvent, 'done' | 'total'>): void => {
      if (event.type !== 'start') done++;
      try {
        options.onProgress?.({ ...event, done, total: result.total });
      } catch (err) {
        this.#ctx.logger.warn({ err: asError(err).message }, 'onProgress threw');
      }
    };
    for (const ref of unknown) {
      const error = new TenantDbError('NOT_FOUND', 'no such tenant');
      result.failed.push({ tenantId: ref, migration: null, error });
      emit({ type: 'failure', tenantId: ref, databaseName: '', error });
    }
    const ready = tenants.filter((t) => t.status === 'ready');
    for (const t of tenants) {
      if (t.status === 'ready') continue;
      result.skipped.push(t.id);
      emit({ type: 'skip', tenantId: t.id, databaseName: t.databaseName });
    }

    await eachLimited(ready, concurrency, async (tenant) => {
      const base = { tenantId: tenant.id, databaseName: tenant.databaseName };
      emit({ type: 'start', ...base });
      const where = { ...base, server: tenant.server };
      step('fleet:tenant', where);
      try {
        if (this.#ctx.closed) throw new TenantDbError('CLOSED', 'the platform was closed');
        const umzug = createSqlUmzug({
          connect: this.#connector(this.#tenants.adminPoolKey(tenant), tenant.server, unreachable),
          files,
          family: 'tenant',
          logger: this.#ctx.logger,
        });
        const applied = await umzug.up();
        step('fleet:tenant-done', where);
        result.succeeded.push(tenant.id);
        emit({ type: 'success', ...base, applied: applied.map((m) => m.name) });
      } catch (err) {
        const error = asError(err);
        const migration = (err as { migration?: unknown }).migration;
        result.failed.push({ tenantId: tenant.id, migration: typeof migration === 'string' ? migration : null, error });
        emit({ type: 'failure', ...base, error });
      }
    });
    this.#ctx.logger.info(
      { total: result.total, succeeded: result.succeeded.length, failed: result.failed.length, skipped: result.skipped.length },
      'tenant migrations finished',
    );
    return result;
  }

  /**
   * Executed and pending migrations of every provisioned tenant, a row each; with `summary`, the tenants
   * counted per schema version. Never fails whole: a tenant whose server cannot be reached is
   * `reachable: false` with the error, and one whose migrations cannot be read has the error; the others
   * are reported.
   */
  async status(): Promise<TenantMigrationStatus[]>;
  async status(options: FleetStatusSummaryOptions): Promise<FleetStatusSummary>;
  async status(options?: FleetStatusOptions): Promise<TenantMigrationStatus[] | FleetStatusSummary>;
  async status(options?: FleetStatusOptions): Promise<TenantMigrationStatus[] | FleetStatusSummary> {
    this.#ctx.assertOpen();
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
      throw new TenantDbError('VALIDATION', 'status options must be an object');
    }
    if (options?.summary !== undefined && typeof options.summary !== 'boolean') {
      throw new TenantDbError('VALIDATION', 'summary must be a boolean');
    }
    const files = await this.#templates.files();
    const rows = await this.#rows(files);
    return options?.summary === true ? summarise(rows, files) : rows;
  }

  async #rows(files: SqlMigrationFile[]): Promise<TenantMigrationStatus[]> {
    const tenants = (await this.#tenants.list({ includeInactive: true })).filter((t) => t.status === 'ready');
    const rows: TenantMigrationStatus[] = [];
    const unreachable = new Map<string, Error>();
    await eachLimited(tenants, Math.min(4, this.#ctx.options.pool.maxConnections), async (tenant) => {
      const row = { tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server };
      try {
        const umzug = createSqlUmzug({
          connect: this.#connector(this.#tenants.adminPoolKey(tenant), tenant.server, unreachable),
          files,
          family: 'tenant',
          logger: this.#ctx.logger,
        });
        const executed = (await umzug.executed()).map((m) => m.name);
        const pending = (await umzug.pending()).map((m) => m.name);
        rows.push({ ...row, reachable: true, executed, pending });
      } catch (err) {
        const error = asTenantDbError(err);
        rows.push({ ...row, reachable: !isUnreachable(err), executed: [], pending: [], error });
      }
    });
    const order = new Map(tenants.map((t, i) => [t.id, i]));
    return rows.sort((a, b) => order.get(a.tenantId)! - order.get(b.tenantId)!);
  }
}
