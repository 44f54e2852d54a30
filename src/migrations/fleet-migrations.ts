import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { HeldLock } from '../connections/lock-session.js';
import { TenantDbError, asTenantDbError, isUnreachable } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import type { ListTenantsOptions, Tenant } from '../tenants/types.js';
import type { TenantTemplates } from '../tenants/tenant-templates.js';
import {
  MIGRATIONS_TABLE,
  createSqlUmzug,
  failedMigrationOf,
  migrationsAppliedBy,
  type Connector,
  type SqlMigrationFile,
  type SqlUmzug,
} from './sql-migrations.js';
import { FleetRunRecords, resultOf, runLockKey, type RecordedMigration } from './fleet-run-records.js';
import {
  assignWaves,
  haltReason,
  recordedOptions,
  selectTenants,
  validateConcurrency,
  validateStopRules,
  type Selected,
  type StopRules,
} from './fleet-plan.js';
import type {
  FleetDownOptions,
  FleetHaltReason,
  FleetMigrateOptions,
  FleetProgressEvent,
  FleetRecordedOptions,
  FleetResumeOptions,
  FleetRun,
  FleetRunInfo,
  FleetRunKind,
  FleetRunOptions,
  FleetRunsOptions,
  FleetRunTenant,
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

/** What a run does to one tenant: returns the migrations it applied (or reverted). */
type TenantWork = (tenant: Tenant, cx: WorkContext) => Promise<string[]>;

/** What every tenant's work in one run shares. */
interface WorkContext {
  runId: string;
  /** Servers found unreachable in this run: their other tenants fail at once. */
  unreachable: Map<string, Error>;
}

/** A run being carried out. */
interface RunState {
  info: FleetRunInfo;
  waves: number;
  /** Every tenant of the run, by position; their outcomes are filled in as they come. */
  tenants: FleetRunTenant[];
  /** The pending tenants to work on, by position (null: no longer in the registry). */
  targets: Map<number, Tenant | null>;
  lock: HeldLock;
}

/** How a run is carried out. */
interface CarryOptions extends StopRules {
  concurrency: number;
  onProgress?: FleetRunOptions['onProgress'];
  onWave?: FleetRunOptions['onWave'];
}

/** Orders migration names as their files are (unknown names after, by name). */
function byPosition(files: SqlMigrationFile[]): (a: string, b: string) => number {
  const position = new Map(files.map((f, i) => [f.name, i]));
  const rank = (name: string): number => position.get(name) ?? files.length;
  return (a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
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
  readonly #records: FleetRunRecords;
  /** False only to measure what recording costs (the fleet bench): runs are then not recorded. */
  readonly #record: boolean;
  /** The runs under way in this process, for close() to wait for. */
  readonly #active = new Set<Promise<void>>();

  constructor(deps: { ctx: PlatformContext; tenants: FleetTenants; templates: TenantTemplates; pools: FleetPools; record?: boolean }) {
    this.#ctx = deps.ctx;
    this.#tenants = deps.tenants;
    this.#templates = deps.templates;
    this.#pools = deps.pools;
    this.#records = new FleetRunRecords(deps.ctx);
    this.#record = deps.record ?? true;
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

  /** The migration set of a new run: every tenant migration file, in order. */
  async #migrationSet(): Promise<{ files: SqlMigrationFile[]; recorded: RecordedMigration[] }> {
    const files = await this.#templates.files();
    return { files, recorded: files.map((f) => ({ name: f.name, checksum: f.checksum })) };
  }

  /** The tenants a new run takes, in order; with `failedOf`, only those that failed in that run. */
  async #selection(recorded: FleetRecordedOptions, failedOf?: FleetRun): Promise<Selected[]> {
    const all = await this.#tenants.list({ includeInactive: true });
    const selected = selectTenants(all, recorded);
    if (!failedOf) return selected;
    const chosen = new Set(selected.map((s) => s.tenant?.id ?? s.ref));
    const failed = failedOf.tenants.filter((t) => t.outcome === 'failed').map((t) => t.tenantId);
    // The earlier run's order; its unknown references come back as such and fail again.
    return selectTenants(all, { ...recorded, tenants: failed.filter((id) => chosen.has(id) || recorded.tenants === undefined) });
  }

  /**
   * Applies the pending migrations over the selected tenants as a recorded run, in waves, halting on a stop
   * rule. Never throws half way: what a tenant throws is its outcome.
   */
  async up(options: FleetMigrateOptions = {}): Promise<FleetRun> {
    this.#ctx.assertOpen();
    const recorded = recordedOptions(options, this.#servers());
    const failedOf = await this.#failedOf(options, recorded);
    const { files, recorded: migrations } = await this.#migrationSet();
    const selected = await this.#selection(recorded, failedOf);
    await this.#refreshTemplates();
    return this.#begin({ kind: 'up', recorded, migrations, selected }, options, this.#upWork(files, migrations, false));
  }

  /** `only: 'failed'` with `of`: the run whose failures to retry. */
  async #failedOf(options: FleetMigrateOptions, recorded: FleetRecordedOptions): Promise<FleetRun | undefined> {
    if (options.only === undefined && options.of === undefined) return undefined;
    if (options.only !== 'failed' || typeof options.of !== 'string') {
      throw new TenantDbError('VALIDATION', "only: 'failed' and of: runId go together");
    }
    const { run } = await this.#records.read(options.of);
    recorded.only = 'failed';
    recorded.of = run.id;
    return run;
  }

  /** Reverts the selected tenants down to and including `to`, as a recorded run. */
  async down(options: FleetDownOptions): Promise<FleetRun> {
    this.#ctx.assertOpen();
    if (typeof options !== 'object' || options === null) throw new TenantDbError('VALIDATION', 'down needs options with to');
    const recorded = recordedOptions(options, this.#servers());
    const { files, recorded: migrations } = await this.#migrationSet();
    if (options.to !== 0 && !(typeof options.to === 'string' && files.some((f) => f.name === options.to))) {
      throw new TenantDbError('VALIDATION', 'to must name a tenant migration (or be 0: all of them)');
    }
    recorded.to = options.to;
    const selected = await this.#selection(recorded);
    return this.#begin({ kind: 'down', recorded, migrations, selected }, options, this.#downWork(files, options.to));
  }

  /** Takes back what run `runId` applied, tenant by tenant, as a recorded run. */
  async revert(runId: string, options: FleetRunOptions = {}): Promise<FleetRun> {
    this.#ctx.assertOpen();
    const recorded = recordedOptions(options, this.#servers());
    const { run } = await this.#records.read(runId);
    if (run.kind !== 'up') throw new TenantDbError('VALIDATION', `run ${run.id} is a ${run.kind} run: only an up run can be reverted`);
    if (run.live) throw new TenantDbError('CONFLICT', `run ${run.id} is still being carried out by a live process`);
    const { files } = await this.#migrationSet();
    // The tenants the run may have changed: not the unknown references, nor those it skipped.
    recorded.tenants = run.tenants.filter((t) => t.server !== null && t.outcome !== 'skipped').map((t) => t.tenantId);
    recorded.revertOf = run.id;
    const migrations = files.map((f) => ({ name: f.name, checksum: f.checksum }));
    const selected = await this.#selection(recorded);
    return this.#begin({ kind: 'revert', recorded, migrations, selected }, options, this.#revertWork(files, run.id));
  }

  /** Carries on a dead or halted run from any process: its pending tenants, with its own options. */
  async resume(runId: string, options: FleetResumeOptions = {}): Promise<FleetRun> {
    this.#ctx.assertOpen();
    if (typeof options !== 'object' || options === null) throw new TenantDbError('VALIDATION', 'options must be an object');
    const concurrency = options.concurrency === undefined ? undefined : validateConcurrency(options.concurrency);
    if (!isUuid(runId)) throw new TenantDbError('NOT_FOUND', 'no such migration run');
    const lock = await this.#ctx.locks.tryHold(runLockKey(runId.toLowerCase()));
    if (!lock) throw new TenantDbError('CONFLICT', `migration run ${runId} is being carried out by a live process`);
    try {
      const stored = await this.#records.read(runId);
      const { run } = stored;
      if (run.status === 'completed' || run.status === 'failed') {
        await lock.release();
        return { ...run, live: false };
      }
      const files = await this.#templates.files();
      const byName = new Map(files.map((f) => [f.name, f]));
      const changed = stored.migrations.find((m) => byName.get(m.name)?.checksum !== m.checksum);
      if (changed) {
        throw new TenantDbError('CONFLICT', `migration ${changed.name} changed or is missing since run ${run.id} started: start a new run`);
      }
      const work =
        run.kind === 'up'
          ? this.#upWork(files, stored.migrations, true)
          : run.kind === 'down'
            ? this.#downWork(files, run.options.to ?? 0)
            : this.#revertWork(files, run.options.revertOf ?? '');
      if (run.kind === 'up') await this.#refreshTemplates();
      const resume = await this.#records.addResume(run.id, { host: hostname(), pid: process.pid });
      // The pending tenants as the registry has them now (moved, dropped or deactivated since).
      const current = new Map((await this.#tenants.list({ includeInactive: true })).map((t) => [t.id, t]));
      const state: RunState = {
        info: { ...run, status: 'running', finishedAt: null, resumes: [...run.resumes, resume] },
        waves: stored.waves,
        tenants: run.tenants,
        targets: new Map(),
        lock,
      };
      delete state.info.haltedBy;
      run.tenants.forEach((t, position) => {
        if (t.outcome === 'pending') state.targets.set(position, current.get(t.tenantId) ?? null);
      });
      const rules = validateStopRules(run.options);
      return await this.#carryOut(state, { ...options, ...rules, concurrency: concurrency ?? run.options.concurrency }, work);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** A recorded run with its tenants. */
  async run(runId: string): Promise<FleetRun> {
    this.#ctx.assertOpen();
    return (await this.#records.read(typeof runId === 'string' ? runId : '')).run;
  }

  /** The recorded runs, newest first. */
  async runs(options: FleetRunsOptions = {}): Promise<FleetRunInfo[]> {
    this.#ctx.assertOpen();
    const limit = options?.limit ?? 20;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new TenantDbError('VALIDATION', 'limit must be an integer from 1 to 1000');
    return this.#records.list(limit);
  }

  /** Waits for the runs under way: each starts no tenant once the platform is closing, and halts. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#active]);
  }

  #servers(): string[] {
    return Object.keys(this.#ctx.options.tenantServers);
  }

  /**
   * New tenants cloned while the rollout runs get the new schema from a refreshed template, on every server
   * at once (one that does not answer holds up none of the others).
   */
  async #refreshTemplates(): Promise<void> {
    await Promise.all(
      this.#servers().map((server) =>
        this.#templates.ensure(server).catch((err: unknown) => {
          this.#ctx.logger.error({ server, err: asError(err).message }, 'could not refresh the tenant template');
        }),
      ),
    );
  }

  /** An Umzug over `tenant`'s database for a run, its connects failing fast once its server did not answer. */
  #umzug(tenant: Tenant, files: SqlMigrationFile[], cx: WorkContext): SqlUmzug {
    return createSqlUmzug({
      connect: this.#connector(this.#tenants.adminPoolKey(tenant), tenant.server, cx.unreachable),
      files,
      family: 'tenant',
      logger: this.#ctx.logger,
      runId: cx.runId,
    });
  }

  /** Runs `fn` on a connection to `tenant`'s database, for the bookkeeping reads of a run. */
  async #onTenant<T>(tenant: Tenant, cx: WorkContext, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const lease = await this.#connector(this.#tenants.adminPoolKey(tenant), tenant.server, cx.unreachable)();
    let broken = false;
    try {
      return await fn(lease.client);
    } catch (err) {
      broken = true;
      throw err;
    } finally {
      lease.release(broken);
    }
  }

  /**
   * Applies the run's migrations a tenant does not have yet. A resumed run reads what it applied from the
   * tenant's bookkeeping, which names the run: a crash may have come between a commit and its record.
   */
  #upWork(files: SqlMigrationFile[], migrations: RecordedMigration[], resumed: boolean): TenantWork {
    const names = migrations.map((m) => m.name);
    return async (tenant, cx) => {
      const applied = (await this.#umzug(tenant, files, cx).up({ migrations: names, rerun: 'SKIP' })).map((m) => m.name);
      if (!resumed) return applied;
      const byRun = await this.#onTenant(tenant, cx, (client) => migrationsAppliedBy(client, cx.runId));
      return [...new Set([...byRun, ...applied])].sort(byPosition(files));
    };
  }

  /** Reverts every migration a tenant has from `to` on (0: all), newest first. */
  #downWork(files: SqlMigrationFile[], to: string | 0): TenantWork {
    const from = to === 0 ? 0 : files.findIndex((f) => f.name === to);
    const names = files.slice(Math.max(0, from)).map((f) => f.name).reverse();
    return async (tenant, cx) => (await this.#umzug(tenant, files, cx).down({ migrations: names, rerun: 'SKIP' })).map((m) => m.name);
  }

  /**
   * Reverts what run `of` applied to a tenant (its bookkeeping names the run), newest first; CONFLICT when
   * a migration after the first of them was applied by something else, which would be left on top.
   */
  #revertWork(files: SqlMigrationFile[], of: string): TenantWork {
    const order = byPosition(files);
    return async (tenant, cx) => {
      const { mine, executed } = await this.#onTenant(tenant, cx, async (client) => ({
        mine: await migrationsAppliedBy(client, of),
        executed: (await client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map((r) => r.name),
      }));
      if (mine.length === 0) return [];
      const names = [...mine].sort(order).reverse();
      const oldest = names.at(-1)!;
      const onTop = executed.filter((name) => !mine.includes(name) && order(name, oldest) > 0).sort(order);
      if (onTop.length > 0) {
        throw new TenantDbError('CONFLICT', `migrations applied after run ${of} are in the way (${onTop.join(', ')}): revert them first`);
      }
      return (await this.#umzug(tenant, files, cx).down({ migrations: names, rerun: 'SKIP' })).map((m) => m.name);
    };
  }

  /** Records a new run, takes its lock, and carries it out. */
  async #begin(
    plan: { kind: FleetRunKind; recorded: FleetRecordedOptions; migrations: RecordedMigration[]; selected: Selected[] },
    callbacks: FleetRunOptions,
    work: TenantWork,
  ): Promise<FleetRun> {
    const { kind, recorded, migrations, selected } = plan;
    const waveOf = assignWaves(selected.length, recorded.waves);
    const targets = new Map<number, Tenant | null>();
    const tenants = selected.map((s, position): FleetRunTenant => {
      const base = { applied: [], durationMs: null, wave: waveOf[position]! };
      if (!s.tenant) {
        return { ...base, tenantId: s.ref, databaseName: '', server: null, outcome: 'failed', migration: null, error: new TenantDbError('NOT_FOUND', 'no such tenant') };
      }
      const t = s.tenant;
      const entry = { ...base, tenantId: t.id, databaseName: t.databaseName, server: t.server };
      if (t.status !== 'ready') return { ...entry, outcome: 'skipped', durationMs: 0 };
      targets.set(position, t);
      return { ...entry, outcome: 'pending' };
    });
    const id = randomUUID();
    const lock = await this.#ctx.locks.tryHold(runLockKey(id));
    if (!lock) throw new TenantDbError('CONFLICT', 'a fresh run id was taken'); // a uuid: never
    const info: FleetRunInfo = {
      id,
      kind,
      status: 'running',
      live: true,
      startedAt: new Date(),
      finishedAt: null,
      host: hostname(),
      pid: process.pid,
      resumes: [],
      options: recorded,
      migrations: migrations.map((m) => m.name),
      counts: { total: 0, succeeded: 0, failed: 0, skipped: 0, pending: 0 },
    };
    const waves = Math.max(0, ...waveOf);
    try {
      // What is returned is what run(id) reads back: the instants the main database recorded.
      if (this.#record) info.startedAt = await this.#records.create({ id, kind, host: info.host, pid: info.pid, options: recorded, migrations, waves, tenants });
    } catch (err) {
      await lock.release();
      throw err;
    }
    return this.#carryOut({ info, waves, tenants, targets, lock }, { ...callbacks, ...validateStopRules(recorded), concurrency: recorded.concurrency }, work);
  }

  /**
   * Carries out the pending tenants of a run, wave by wave, each wave after the one before. Once a stop
   * rule is reached (or the platform closes, or the record cannot be written) no tenant starts: the run
   * is halted. Records each outcome as it comes, then where the run ended, and gives back its lock.
   */
  async #carryOut(state: RunState, options: CarryOptions, work: TenantWork): Promise<FleetRun> {
    const { info, tenants } = state;
    const run = this.#carry(state, options, work).finally(() => state.lock.release());
    this.#active.add(run);
    try {
      await run;
    } finally {
      this.#active.delete(run);
    }
    const { counts, ...result } = resultOf(tenants);
    return { ...info, live: false, counts, ...result, tenants };
  }

  async #carry(state: RunState, options: CarryOptions, work: TenantWork): Promise<void> {
    const { info, tenants, targets } = state;
    const concurrency = Math.min(options.concurrency, this.#ctx.options.pool.maxConnections);
    const cx: WorkContext = { runId: info.id, unreachable: new Map() };
    const telemetry = this.#ctx.telemetry;
    let done = tenants.filter((t) => t.outcome !== 'pending').length;
    let failed = 0;
    let finished = 0;
    let halted: FleetHaltReason | undefined;
    const emit = (event: Omit<FleetProgressEvent, 'done' | 'total'>): void => {
      if (event.type !== 'start') done++;
      this.#notify(options.onProgress, { ...event, done, total: tenants.length });
    };
    // What the run decided before any work (unknown references, tenants not ready), reported first.
    if (info.resumes.length === 0) {
      done = 0;
      for (const t of tenants) {
        if (t.outcome === 'failed') emit({ type: 'failure', tenantId: t.tenantId, databaseName: t.databaseName, wave: t.wave, error: t.error! });
        if (t.outcome === 'skipped') emit({ type: 'skip', tenantId: t.tenantId, databaseName: t.databaseName, wave: t.wave });
        if (t.outcome === 'failed' || t.outcome === 'skipped') telemetry?.migrationOutcome(t.outcome, t.server);
      }
      failed = tenants.filter((t) => t.outcome === 'failed').length;
      finished = failed;
      halted = haltReason(options, failed, finished);
    }

    // Outcomes are written in batches, one statement at a time: those that finish while a write is under
    // way go in the next. A worker goes on to its next tenant while its outcome is written, unless
    // `concurrency` outcomes are still unwritten: then it waits for the writes. So fewer than twice that many
    // outcomes are unwritten when the process dies (with concurrency 1, only the one being written), besides
    // tenants that committed and had not queued theirs yet; a resume finds those in their own bookkeeping
    // (see #upWork), and never touches a tenant recorded done. Each wave ends once every outcome is written.
    let queued: Array<{ position: number; tenant: FleetRunTenant }> = [];
    let unwritten = 0;
    let writing: Promise<void> | undefined;
    const flush = (): Promise<void> => {
      if (writing === undefined && queued.length > 0) {
        writing = (async () => {
          try {
            while (queued.length > 0) {
              const batch = queued;
              queued = [];
              await this.#records.finishTenants(info.id, batch).catch((err: unknown) => {
                this.#ctx.logger.error({ runId: info.id, err: asError(err).message }, 'could not record a tenant of a migration run; halting it');
                halted ??= 'record';
              });
              unwritten -= batch.length;
            }
          } finally {
            writing = undefined;
          }
        })();
      }
      return writing ?? Promise.resolve();
    };

    const one = async (position: number): Promise<void> => {
      if (halted) return;
      if (this.#ctx.closed) {
        halted = 'closed';
        return;
      }
      const entry = tenants[position]!;
      const tenant = targets.get(position);
      const base = { tenantId: entry.tenantId, databaseName: entry.databaseName, wave: entry.wave };
      const started = performance.now();
      if (tenant === null || tenant === undefined) {
        Object.assign(entry, { outcome: 'failed', migration: null, error: new TenantDbError('NOT_FOUND', 'no such tenant'), durationMs: 0 });
      } else if (tenant.status !== 'ready') {
        Object.assign(entry, { outcome: 'skipped', durationMs: 0 });
      } else {
        emit({ type: 'start', ...base });
        const where = { ...base, server: tenant.server };
        step('fleet:tenant', where);
        try {
          entry.applied = await (telemetry
            ? telemetry.run('migrations.tenant', { tenantId: entry.tenantId, databaseName: entry.databaseName, server: tenant.server, runId: info.id }, async (op) => {
                const applied = await work(tenant, cx);
                op.set({ applied: applied.length });
                return applied;
              })
            : work(tenant, cx));
          entry.outcome = 'succeeded';
          step('fleet:tenant-done', where);
        } catch (err) {
          entry.outcome = 'failed';
          entry.error = asTenantDbError(err);
          entry.migration = failedMigrationOf(err);
        }
        // Whole milliseconds, as recorded.
        entry.durationMs = Math.round(performance.now() - started);
        entry.server = tenant.server;
      }
      if (entry.outcome === 'failed') failed++;
      finished++;
      if (entry.outcome !== 'pending') telemetry?.migrationOutcome(entry.outcome, entry.server);
      if (this.#record) {
        queued.push({ position, tenant: entry });
        unwritten++;
        const written = flush();
        if (unwritten >= concurrency) await written;
      }
      if (entry.outcome === 'succeeded') emit({ type: 'success', ...base, applied: entry.applied });
      else if (entry.outcome === 'skipped') emit({ type: 'skip', ...base });
      else emit({ type: 'failure', ...base, error: entry.error! });
      halted ??= haltReason(options, failed, finished);
    };

    for (let wave = 1; wave <= state.waves && !halted; wave++) {
      const positions = [...targets.keys()].filter((p) => tenants[p]!.wave === wave && tenants[p]!.outcome === 'pending');
      if (positions.length === 0) continue;
      const inWave = tenants.filter((t) => t.wave === wave);
      this.#notify(options.onWave, { type: 'wave-start', wave, waves: state.waves, tenants: inWave.length });
      await eachLimited(positions, concurrency, one);
      await flush();
      this.#notify(options.onWave, {
        type: 'wave-end',
        wave,
        waves: state.waves,
        tenants: inWave.length,
        succeeded: inWave.filter((t) => t.outcome === 'succeeded').length,
        failed: inWave.filter((t) => t.outcome === 'failed').length,
        skipped: inWave.filter((t) => t.outcome === 'skipped').length,
        ...(halted !== undefined && { haltedBy: halted }),
      });
    }
    const anyFailed = tenants.some((t) => t.outcome === 'failed');
    const pending = tenants.some((t) => t.outcome === 'pending');
    info.status = halted || pending ? 'halted' : anyFailed ? 'failed' : 'completed';
    if (info.status === 'halted') info.haltedBy = halted ?? 'closed';
    info.finishedAt = new Date();
    if (this.#record && halted !== 'record') {
      await this.#records.setStatus(info.id, info.status, info.haltedBy).then(
        (finishedAt) => {
          info.finishedAt = finishedAt ?? info.finishedAt;
        },
        (err: unknown) => {
          this.#ctx.logger.error({ runId: info.id, err: asError(err).message }, 'could not record the end of a migration run');
        },
      );
    }
    this.#ctx.logger.info(
      { runId: info.id, kind: info.kind, status: info.status, ...resultOf(tenants).counts, ...(info.haltedBy && { haltedBy: info.haltedBy }) },
      'tenant migration run finished',
    );
  }

  #notify<E>(callback: ((event: E) => void) | undefined, event: E): void {
    try {
      callback?.(event);
    } catch (err) {
      this.#ctx.logger.warn({ err: asError(err).message }, 'a progress callback threw');
    }
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
    const selection = recordedOptions({ ...options, concurrency: undefined }, this.#servers());
    const files = await this.#templates.files();
    const rows = await this.#rows(files, selectTenants(await this.#tenants.list({ includeInactive: true }), selection));
    return options?.summary === true ? summarise(rows, files) : rows;
  }

  async #rows(files: SqlMigrationFile[], selected: Selected[]): Promise<TenantMigrationStatus[]> {
    const tenants = selected.flatMap((s) => (s.tenant?.status === 'ready' ? [s.tenant] : []));
    const rows: TenantMigrationStatus[] = selected.flatMap((s) =>
      s.tenant
        ? []
        : [{ tenantId: s.ref, databaseName: '', server: '', reachable: true, executed: [], pending: [], error: new TenantDbError('NOT_FOUND', 'no such tenant') }],
    );
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
    const order = new Map(selected.map((s, i) => [s.tenant?.id ?? s.ref, i]));
    return rows.sort((a, b) => order.get(a.tenantId)! - order.get(b.tenantId)!);
  }
}
