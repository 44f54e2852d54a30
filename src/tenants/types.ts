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
  /**
   * The tenant's labels (see {@link TenantLabels}); `{}` when it has none. Their keys come in PostgreSQL's
   * `jsonb` order (shorter keys first), not in the order given.
   */
  labels: TenantLabels;
}

/**
 * Labels of a tenant, to pick tenants by (`tenants.list({ labels })`): at most 64, each key 1 to 63 characters
 * of `[A-Za-z0-9._/-]` starting with a letter or digit, each value a string of 0 to 255 characters without
 * control characters. Anything else is VALIDATION.
 *
 * @example
 * ```ts
 * const labels: TenantLabels = { region: 'eu', 'plan/tier': 'gold' };
 * ```
 */
export type TenantLabels = Record<string, string>;

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
  /** The tenant's labels (see {@link TenantLabels}). Default: none (`{}`). */
  labels?: TenantLabels;
}

/**
 * Input of `tenants.update`: what changes; at least one field (an empty object is VALIDATION).
 *
 * @example
 * ```ts
 * await platform.tenants.update(id, { name: 'Acme GmbH', labels: { region: 'eu' } });
 * ```
 */
export interface UpdateTenantInput {
  /** The new name, checked as by `create`. The database name does not change (it keeps the old name's slug). */
  name?: string;
  /** The new labels: they replace the whole map (`{}` removes every label). */
  labels?: TenantLabels;
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
  /**
   * Only the tenants that have every one of these labels, with these values (other labels may be there too).
   * Default: no filter.
   */
  labels?: TenantLabels;
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
  /** Tenants whose move a crash stopped half way: finished (on the target) or undone (back on the source). */
  moves?: RepairedMoves;
}

/** The moves `tenants.repair` found stopped half way by a crash, in {@link RepairResult}. */
export interface RepairedMoves {
  /** Tenants whose move had switched: finished, now on the target server. */
  finished: string[];
  /** Tenants whose move had not switched: undone, back on their old server with nothing left on the target. */
  undone: string[];
}

/**
 * How `tenants.move` copies a tenant's database: `logical` (PostgreSQL's logical replication, writes blocked
 * only for the final catch-up), `dump` (the schema by `pg_dump`/`pg_restore`, installed and of the servers'
 * major version, then every table's rows through the driver, writes blocked for the rows), `copy` (the same
 * with the schema rebuilt from the catalogs: tables, columns, defaults, identities, constraints, indexes and
 * sequences; views, functions, triggers and the like are refused).
 */
export type MoveMethod = 'logical' | 'dump' | 'copy';

/**
 * The steps of a move, as `onProgress` reports them: `preparing` (checks, the target database created),
 * `schema` (the source's schema built on the target), `syncing` (logical: the initial copy and catch-up
 * while writes go on), `blocked` (new writes wait; running ones finished or ended), `copying` (a table's rows,
 * with counts), `caught-up` (the target has every committed write), `switched` (the registry names the
 * target; writes resume there), `cleaned` (the source database, publication and slot gone), `done`.
 */
export type MovePhase = 'preparing' | 'schema' | 'syncing' | 'blocked' | 'copying' | 'caught-up' | 'switched' | 'cleaned' | 'done';

/** One progress event of `tenants.move`. */
export interface MoveProgressEvent {
  phase: MovePhase;
  tenantId: string;
  /** The method chosen (known from `schema` on). */
  method?: MoveMethod;
  /** `copying`: the table (`schema.name`) whose rows were copied, and how many. */
  table?: string;
  rows?: number;
  /** `syncing`: tables whose initial copy is done, of `tables`. */
  tablesDone?: number;
  tables?: number;
}

/** Options of `tenants.move`. */
export interface MoveTenantOptions {
  /** Called at each step (see {@link MovePhase}); an exception it throws is ignored. */
  onProgress?: (event: MoveProgressEvent) => void;
  /**
   * `auto` (default) uses logical replication when the source can publish to the target (`wal_level =
   * logical` there, every table with a replica identity, two distinct servers, and the publication and
   * subscription could be made: rights, a free walsender and slot, the target reaching the source), else a
   * copy; `copy` always copies. Either copies the schema with `pg_dump`/`pg_restore` when they are installed
   * and of both servers' major version (any object), else from the catalogs (tables and what they hold).
   */
  method?: 'auto' | 'copy';
  /**
   * How long the block waits for this process's scopes of the tenant that are already running before it
   * ends the source database's sessions (theirs, and other processes'). Default: 2 000.
   */
  drainTimeoutMs?: number;
  /** Logical path: how long the initial copy and the catch-up may take before the move is undone. Default: 600 000. */
  syncTimeoutMs?: number;
}

/** What `tenants.move` did. */
export interface MoveResult {
  /** The tenant, on its new server. */
  tenant: Tenant;
  /** The server it left. */
  from: string;
  to: string;
  method: MoveMethod;
  /** The whole move, from the first check to the source's cleanup. */
  durationMs: number;
  /**
   * How long new scopes of the tenant were held (from the block to the switch): the longest a writer of this
   * process waited; writers of other processes wait at most that plus one registry read.
   */
  blockedMs: number;
  /** Tables copied (every table of the tenant database, `tenantdb_migrations` included). */
  tables: number;
  /** Rows copied through the driver (`dump`, `copy`); 0 for `logical` (PostgreSQL's own initial copy, not counted). */
  rows: number;
  /** Sequences whose values were carried over. */
  sequences: number;
}

/** `platform.tenants`. */
export interface TenantsService {
  create(input: CreateTenantInput): Promise<Tenant>;
  /** By id or database name; NOT_FOUND if none. */
  get(idOrDatabaseName: string): Promise<Tenant>;
  list(options?: ListTenantsOptions): Promise<Tenant[]>;
  /**
   * Renames a tenant and/or replaces its labels; returns the tenant as updated. The database name does not
   * change with the name. VALIDATION for an empty update or bad input; NOT_FOUND for an unknown tenant;
   * CONFLICT for one being dropped.
   *
   * @example
   * ```ts
   * const tenant = await platform.tenants.update(id, { labels: { ...old.labels, wave: '1' } });
   * ```
   */
  update(id: string, input: UpdateTenantInput): Promise<Tenant>;
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
  /**
   * Moves a live tenant's database to another tenant server (a key of `tenantServers`); no committed write is
   * lost. With logical replication (the source at `wal_level = logical`, the target able to connect to the
   * source's `adminUrl`) writes are blocked only for the final catch-up (well under a second); otherwise the
   * database is copied through the driver with writes blocked throughout. Scopes that start meanwhile wait
   * up to `pool.moveWaitMs`, then get UNAVAILABLE. On any failure the tenant stays, working, on its old server
   * and nothing is left on the target; a move whose process died is finished or undone by `repair()`/`init()`.
   *
   * With `tenantRoles`, the tenant's role (its password unchanged) and its rights come along; the role leaves
   * the source with the database. A migration that changes the tenant's schema during the move undoes it.
   *
   * VALIDATION for an unknown or the same server; NOT_FOUND for an unknown tenant; TENANT_NOT_READY for one not
   * ready; CONFLICT for one being dropped, already moving, having its credentials rotated, or whose schema
   * changed meanwhile.
   *
   * @example
   * ```ts
   * const result = await platform.tenants.move(tenant.id, 'eu2', { onProgress: (e) => log.info(e) });
   * result.method;     // 'logical' | 'copy'
   * result.blockedMs;  // how long writes waited
   * ```
   */
  move(id: string, toServer: string, options?: MoveTenantOptions): Promise<MoveResult>;
}
