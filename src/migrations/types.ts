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
  /** On success: the migrations applied. */
  applied?: string[];
  /** On failure. */
  error?: Error;
}

/** Options of `migrations.tenants.up`. */
export interface FleetMigrateOptions {
  /** Tenants migrated at once. Default: 4, capped by the connection budget. */
  concurrency?: number;
  /** Only these tenants (ids or database names). Default: every tenant. */
  tenants?: string[];
  onProgress?: (event: FleetProgressEvent) => void;
}

/** A tenant whose migration failed, in {@link FleetMigrateResult}. */
export interface FleetMigrateFailure {
  tenantId: string;
  /** The migration at fault, when one is (null: e.g. the database could not be reached). */
  migration: string | null;
  error: Error;
}

/** What `migrations.tenants.up` returns. Never throws half way. */
export interface FleetMigrateResult {
  total: number;
  succeeded: string[];
  failed: FleetMigrateFailure[];
  /** Tenants not ready (still provisioning, or failed to). */
  skipped: string[];
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
export interface FleetStatusOptions {
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
