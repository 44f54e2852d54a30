export { createPlatform } from './platform/platform.js';
export type {
  Platform,
  PlatformMigrations,
  FleetMigrationsApi,
  PlatformStorage,
  PlatformStats,
  PlatformConnectionStats,
  ServerStats,
} from './platform/platform.js';
export { DEFAULT_HEALTH_TIMEOUT_MS } from './platform/health.js';
export type { HealthOptions, HealthReport, HealthChecks, HealthCheck, HealthCheckError } from './platform/health.js';
export type { PoolStats, ConnectionStats, SharedBudgetStats } from './pools/tenant-pool-manager.js';
export type {
  PlatformOptions,
  S3Options,
  S3Credentials,
  DocumentsOptions,
  PoolOptions,
  SharedBudgetOptions,
  TenantServerOptions,
  Logger,
} from './platform/options.js';
export type { PlacementInput, PlacementPolicy, ServerLoad } from './tenants/placement.js';
export { TenantDbError, isTenantDbError, ERROR_CODES, HTTP_STATUS } from './errors.js';
export type { TenantDbErrorCode, TenantDbErrorOptions } from './errors.js';
export { currentTenant } from './scope/tenant-scope.js';
export type * from './scope/types.js';
export type * from './users/types.js';
export { ROLES } from './memberships/types.js';
export type { Role, Membership, MembershipsService, TenantMember, UserTenant } from './memberships/types.js';
export type * from './tenants/types.js';
export type * from './documents/types.js';
export type * from './migrations/types.js';
export type { MainMigrations, MigrationMeta } from './migrations/main-migrations.js';
export type { SweepOptions, SweepResult } from './storage/storage-sweep.js';
export { STEP_CHANNEL } from './util/steps.js';
export type { StepMessage, StepName } from './util/steps.js';
export { TELEMETRY_CHANNELS } from './telemetry/telemetry.js';
export type * from './telemetry/types.js';
