import type { TenantLabels } from '../tenants/types.js';
import type { MigrateDownOptions, MigrateUpOptions, MigrationMeta } from 'umzug';

/** One migration as the engine sees it. */
export interface MigrationInfo {
  /** The file name without `.sql`, e.g. `0001_initial`. */
  name: string;
}

/** Progress of a fleet migration, one event per tenant started or finished. */
export interface FleetProgressEvent {
  type: 'start' | 'success' | 'failure' | 'skip';
  tenantId: string;
  databaseName: string;
  /** Tenants finished so far (successes, failures and skips). */
  done: number;
  total: number;
  /** The wave the tenant is in, from 1 (see {@link FleetRunOptions.waves}). */
  wave?: number;
  /** On success: the migrations applied (for a down run or a revert: reverted). */
  applied?: string[];
  /** On failure. */
  error?: Error;
}

/** A wave of a fleet run starting or ending, for {@link FleetRunOptions.onWave}. */
export interface FleetWaveEvent {
  type: 'wave-start' | 'wave-end';
  /** The wave, from 1. */
  wave: number;
  /** How many waves the run has. */
  waves: number;
  /** The tenants of this wave. */
  tenants: number;
  /** On `wave-end`: of this wave's tenants, those that succeeded, failed or were skipped. */
  succeeded?: number;
  failed?: number;
  skipped?: number;
  /** On `wave-end`, when a stop rule halted the run: no later wave starts. */
  haltedBy?: FleetHaltReason;
}

/**
 * One wave of a staged rollout: a count of tenants (`5`), or a share of the selection (`'10%'`, rounded up).
 * The last wave takes the rest, whatever it says.
 */
export type FleetWave = number | `${number}%`;

/** Why a run stopped before its end: a stop rule, the platform closing, or its record that could not be written. */
export type FleetHaltReason = 'maxFailures' | 'maxFailureRate' | 'closed' | 'record';

/**
 * Which tenants a fleet run takes, all conditions together. Without any: every tenant, deactivated ones
 * included. The order is that of `tenants` when given, otherwise creation order.
 */
export interface FleetSelection {
  /** Only these tenants (ids or database names), in this order. An unknown one fails with NOT_FOUND. */
  tenants?: string[];
  /** Only the tenants on this tenant server (a key of `tenantServers`). */
  server?: string;
  /** Only tenants created before this instant. */
  createdBefore?: Date | string;
  /** Only tenants created at or after this instant. */
  createdAfter?: Date | string;
  /** Only tenants with every one of these labels. */
  labels?: TenantLabels;
}

/** Options of every fleet run (`up`, `down`, `revert`, `resume`): how fast, in what stages, when to stop. */
export interface FleetRunOptions {
  /** Tenants migrated at once. Default: 4, capped by the connection budget. */
  concurrency?: number;
  /**
   * Roll out in stages, each waiting for the one before: e.g. `[5, '10%', '100%']` is a canary of the first
   * five tenants, then a tenth of the selection, then the rest. Default: one wave of every tenant.
   */
  waves?: FleetWave[];
  /** Halt the run once this many tenants failed (at least 1): no tenant starts after that. */
  maxFailures?: number;
  /**
   * Halt the run once the failed share of the tenants finished so far reaches this rate (above 0, at most 1):
   * with `0.1`, a tenth. Checked after every tenant, so a canary wave should be small and come first.
   */
  maxFailureRate?: number;
  onProgress?: (event: FleetProgressEvent) => void;
  onWave?: (event: FleetWaveEvent) => void;
}

/** Options of `migrations.tenants.up`. */
export interface FleetMigrateOptions extends FleetRunOptions, FleetSelection {
  /** With `of`: only the tenants that failed in that run (further narrowed by the selection, if any). */
  only?: 'failed';
  /** The run whose failures `only: 'failed'` retries. */
  of?: string;
}

/** Options of `migrations.tenants.down`. */
export interface FleetDownOptions extends FleetRunOptions, FleetSelection {
  /** Revert every applied migration down to and including this one (`0`: all of them). */
  to: string | 0;
}

/** Options of `migrations.tenants.resume`: the run's own selection, waves and stop rules are kept. */
export interface FleetResumeOptions {
  /** Default: the run's. */
  concurrency?: number;
  onProgress?: (event: FleetProgressEvent) => void;
  onWave?: (event: FleetWaveEvent) => void;
}

/** A tenant whose migration failed, in {@link FleetMigrateResult}. */
export interface FleetMigrateFailure {
  tenantId: string;
  /** The migration at fault, when one is (null: e.g. the database could not be reached). */
  migration: string | null;
  error: Error;
}

/** The outcomes of a fleet run, as `migrations.tenants.up` returned them before runs were recorded. */
export interface FleetMigrateResult {
  total: number;
  succeeded: string[];
  failed: FleetMigrateFailure[];
  /** Tenants not ready (still provisioning, or failed to). */
  skipped: string[];
}

/** What a fleet run does: apply (`up`), revert to a migration (`down`), or take back a run (`revert`). */
export type FleetRunKind = 'up' | 'down' | 'revert';

/**
 * Where a run is: `running` (carried out now, or its process died: see `live`), `completed` (every tenant
 * succeeded or was skipped), `failed` (every tenant done, some failed), `halted` (stopped before its end:
 * see `haltedBy`; resumable).
 */
export type FleetRunStatus = 'running' | 'completed' | 'halted' | 'failed';

/** A tenant's outcome in a run; `pending` ones were not started, or were cut off by a crash. */
export type FleetTenantOutcome = 'pending' | 'succeeded' | 'failed' | 'skipped';

/** The options a run was started with, as recorded (instants as ISO strings, no callbacks). */
export interface FleetRecordedOptions {
  concurrency: number;
  tenants?: string[];
  server?: string;
  createdBefore?: string;
  createdAfter?: string;
  labels?: TenantLabels;
  waves?: FleetWave[];
  maxFailures?: number;
  maxFailureRate?: number;
  only?: 'failed';
  of?: string;
  /** Of a down run. */
  to?: string | 0;
  /** Of a revert: the run taken back. */
  revertOf?: string;
}

/** A process that resumed a run. */
export interface FleetRunResume {
  host: string;
  pid: number;
  at: Date;
}

/** How many tenants of a run have each outcome. */
export interface FleetRunCounts {
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  pending: number;
}

/** A recorded fleet run without its tenants, as `migrations.tenants.runs()` lists it. */
export interface FleetRunInfo {
  id: string;
  kind: FleetRunKind;
  status: FleetRunStatus;
  /** Whether a live process is carrying the run out now (it holds the run's lock). */
  live: boolean;
  startedAt: Date;
  /** When it completed, failed or halted; null while running. */
  finishedAt: Date | null;
  /** The host and process id that started it. */
  host: string;
  pid: number;
  /** Processes that resumed it, in order. */
  resumes: FleetRunResume[];
  options: FleetRecordedOptions;
  /** The migration files of the run (up to and including the last one it applies), in order. */
  migrations: string[];
  /** Why a halted run stopped. */
  haltedBy?: FleetHaltReason;
  counts: FleetRunCounts;
}

/** One tenant of a run. */
export interface FleetRunTenant {
  tenantId: string;
  /** Empty for a tenant given in `tenants` that does not exist. */
  databaseName: string;
  /** Its tenant server, when the tenant exists. */
  server: string | null;
  /** Its wave, from 1. */
  wave: number;
  outcome: FleetTenantOutcome;
  /** The migrations the run applied to it (a down run or a revert: reverted). */
  applied: string[];
  /** On failure: the migration at fault, when one is. */
  migration?: string | null;
  /** On failure. Read back from the record, it is a TenantDbError with the code and message recorded. */
  error?: Error;
  /** How long its migrations took; null while pending. */
  durationMs: number | null;
}

/**
 * A fleet run, recorded in the main database: what `up`, `down`, `revert`, `resume` and `run` return.
 * `total`, `succeeded`, `failed` and `skipped` are as `up` always returned them.
 */
export interface FleetRun extends FleetRunInfo, FleetMigrateResult {
  /** Every tenant selected, in order. */
  tenants: FleetRunTenant[];
}

/** Options of `migrations.tenants.runs`. */
export interface FleetRunsOptions {
  /** At most this many, newest first. Default: 20. */
  limit?: number;
}

/** One row of `migrations.tenants.status()`. */
export interface TenantMigrationStatus {
  tenantId: string;
  databaseName: string;
  /** The tenant server (a key of `tenantServers`) the database lives on. */
  server: string;
  /** False when the tenant's server could not be reached (see `error`); `executed` and `pending` are then empty. */
  reachable: boolean;
  executed: string[];
  pending: string[];
  /** Why the tenant's migrations could not be read, when they could not. */
  error?: Error;
}

/** Options of `migrations.tenants.status()`. */
export interface FleetStatusOptions extends FleetSelection {
  /** Counts per schema version ({@link FleetStatusSummary}) instead of a row per tenant. Default: false. */
  summary?: boolean;
}

/**
 * {@link FleetStatusOptions} asking for the summary.
 *
 * @example
 * ```ts
 * const { versions, unreachable } = await platform.migrations.tenants.status({ summary: true });
 * ```
 */
export interface FleetStatusSummaryOptions extends FleetStatusOptions {
  summary: true;
}

/** {@link FleetStatusOptions} asking for a row per tenant. */
export interface FleetStatusRowsOptions extends FleetStatusOptions {
  summary?: false;
}

/** The tenants at one schema version, in {@link FleetStatusSummary}. */
export interface FleetVersionCount {
  /** The last executed migration (e.g. `0003_add_invoices`), null for a tenant with none executed. */
  version: string | null;
  /** The ready tenants at this version. */
  tenants: number;
  /** The migrations pending at this version (the most of any of its tenants, should one have skipped an earlier one). */
  pending: number;
}

/**
 * What `migrations.tenants.status({ summary: true })` returns: the ready tenants counted per schema version,
 * so that a fleet caught half way through a rollout shows at a glance.
 * `total` is the sum of every version's `tenants`, `unreachable` and `failed`.
 */
export interface FleetStatusSummary {
  /** The ready tenants. */
  total: number;
  /** Tenants whose server could not be reached. */
  unreachable: number;
  /** Tenants whose server answered but whose migrations could not be read. */
  failed: number;
  /** One entry per version some tenant is at, in migration order (null, none executed, first). */
  versions: FleetVersionCount[];
}

/** Options of `migrations.main.up`. */
export interface MigrationUpOptions {
  /** Apply the pending migrations up to and including this one. Default: all of them. */
  to?: string;
}

/** Options of `migrations.main.down`. */
export interface MigrationDownOptions {
  /** Revert every applied migration down to and including this one; `0`: all. Default: the last applied one. */
  to?: string | 0;
}

/**
 * One tenant database's migrations, as `platform.migrations.tenant()` returns them (an Umzug instance
 * over the tenant's migration files: its `up` and `down` take umzug's options).
 */
export interface TenantMigrations {
  /** Applies the pending migrations (all by default); returns those applied. */
  up(options?: MigrateUpOptions): Promise<MigrationMeta[]>;
  /** Reverts the last applied migration (or down to `to`; `0`: all); returns those reverted. */
  down(options?: MigrateDownOptions): Promise<MigrationMeta[]>;
  /** The migrations not applied yet, in the order `up` would apply them. */
  pending(): Promise<MigrationMeta[]>;
  /** The applied migrations that still have a file, in order. */
  executed(): Promise<MigrationMeta[]>;
}
