/**
 * Where a tenant's database is in its life: `provisioning` until its database is ready, `failed` if that
 * failed, `dropping` once `tenants.drop` has begun (it can no longer be entered nor activated; a later
 * `drop`, `storage.sweep()` or `init()` finishes a drop that stopped half way).
 */
export type TenantStatus = 'provisioning' | 'ready' | 'failed' | 'dropping';

/** A tenant (an organisation), with a PostgreSQL database of its own. */
export interface Tenant {
  id: string;
  /** 1 to 255 characters, any script. */
  name: string;
  /** `tenant_<slug>_<first 8 hex of id>`, at most 63 bytes. */
  databaseName: string;
  /** The name of the server (a key of `tenantServers`) the database lives on. */
  server: string;
  /** False once deactivated: entering the tenant gives TENANT_INACTIVE. */
  isActive: boolean;
  status: TenantStatus;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string | null;
}

/** Input of `tenants.create`. */
export interface CreateTenantInput {
  name: string;
  /** A user id; that user becomes the tenant's first admin. */
  createdBy?: string;
  /**
   * A key of `tenantServers`: where the database goes, whatever the placement says. Default: the `placement`
   * option's choice, else the server with the lowest tenants ÷ weight.
   */
  server?: string;
}

/** What `tenants.stats` returns. */
export interface TenantStats {
  databaseSizeBytes: number;
  documents: number;
  files: number;
  /** Bytes of the distinct stored files (after deduplication). */
  storedBytes: number;
}

/** Options of `tenants.list`. */
export interface ListTenantsOptions {
  /** Include deactivated tenants too. Default: false (active tenants only). */
  includeInactive?: boolean;
}

/** A tenant `tenants.repair` could not repair, with the reason. */
export interface RepairFailure {
  tenantId: string;
  error: Error;
}

/** What `tenants.repair` did. */
export interface RepairResult {
  /** Tenants whose provisioning was finished. */
  finished: string[];
  /** Half-provisioned tenants removed, and tenants whose drop had stopped half way, finished. */
  removed: string[];
  /** Tenants that could not be repaired (e.g. their server is not configured), left for a later pass. */
  failed: RepairFailure[];
}

/** `platform.tenants`. */
export interface TenantsService {
  create(input: CreateTenantInput): Promise<Tenant>;
  /** By id or database name; NOT_FOUND if none. */
  get(idOrDatabaseName: string): Promise<Tenant>;
  list(options?: ListTenantsOptions): Promise<Tenant[]>;
  deactivate(id: string): Promise<Tenant>;
  /** Undoes `deactivate`; CONFLICT for a tenant being dropped. */
  activate(id: string): Promise<Tenant>;
  /**
   * Marks the tenant `dropping` (nobody enters it from then on), drops its database, deletes its objects and
   * removes its row. After a failure half way, calling it again finishes the drop.
   */
  drop(id: string): Promise<void>;
  stats(id: string): Promise<TenantStats>;
  repair(): Promise<RepairResult>;
  /**
   * With `tenantRoles`: a new random password for the tenant's login role (a tenant made before the option
   * was on gets a role). Connections already open stay; new ones use the new password, in other processes
   * once they read the tenant again (within `tenantCacheMs`). VALIDATION without `tenantRoles`.
   */
  rotateCredentials(id: string): Promise<void>;
}
