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

/** What `migrations.tenants.up` returns. Never throws half way. */
export interface FleetMigrateResult {
  total: number;
  succeeded: string[];
  failed: Array<{ tenantId: string; migration: string | null; error: Error }>;
  /** Tenants not ready (still provisioning, or failed to). */
  skipped: string[];
}

/** One row of `migrations.tenants.status()`. */
export interface TenantMigrationStatus {
  tenantId: string;
  databaseName: string;
  executed: string[];
  pending: string[];
}
