import type { S3Options } from '../storage/s3-options.js';
import type { PlacementPolicy } from '../tenants/placement.js';
import type { Logger } from '../util/logger.js';
import type { TelemetryOptions } from '../telemetry/types.js';

/** A tenant server with its admin URL filled in (both without a database). @internal */
export interface ResolvedServer {
  url: string;
  adminUrl: string;
  /** 0 or more: its share of new tenants under the default placement. */
  weight: number;
}

/** The platform's `pool` options with every default filled in (see `PoolOptions`). @internal */
export interface ResolvedPoolOptions {
  /** Undefined: no bound but the connection budget. */
  maxTenantPools: number | undefined;
  maxConnectionsPerTenant: number;
  maxConnections: number;
  idleMs: number;
  acquireTimeoutMs: number;
  maxMainConnections: number;
  maxAdminConnections: number;
  connectTimeoutMs: number;
  /** Undefined: none. */
  statementTimeoutMs: number | undefined;
  /** 0: none. */
  idleInTransactionTimeoutMs: number;
  moveWaitMs: number;
  /** Undefined: none. */
  sharedBudget: { maxConnections: number } | undefined;
}

/** The platform's options, checked, with every default filled in (see `PlatformOptions`). @internal */
export interface ResolvedOptions {
  mainUrl: string;
  mainAdminUrl: string;
  s3: S3Options & { prefix: string };
  tenantServers: Record<string, ResolvedServer>;
  /** Undefined: the default placement (lowest tenants ÷ weight). */
  placement: PlacementPolicy | undefined;
  pool: ResolvedPoolOptions;
  documents: { maxBytes: number | undefined };
  tenantMigrations: string[];
  mainMigrations: string[];
  tenantCacheMs: number;
  tenantSpares: number;
  tenantRoles: boolean;
  /** The 32 bytes of `credentialsKey`, when given. */
  credentialsKey: Buffer | undefined;
  logger: Logger;
  /** `false`: OpenTelemetry off. */
  telemetry: TelemetryOptions | false;
}
