import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { TenantDbError, asTenantDbError, isTransientError, isUnreachable } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import type { ObjectStore } from '../storage/object-store.js';
import { tenantPrefix } from '../storage/object-keys.js';
import { PG, constraintOf, sqlState } from '../util/pg-errors.js';
import { tenantDatabaseName, validateTenantName } from './database-name.js';
import { validateTenantLabels } from './tenant-labels.js';
import { InFlight } from '../util/in-flight.js';
import { isUuid } from '../util/uuid.js';
import type { Operation } from '../telemetry/telemetry.js';
import { step } from '../util/steps.js';
import { Placement } from './placement.js';
import { credentialsLock, decryptSecret, encryptSecret, newRolePassword, scramVerifier } from './credentials.js';
import type { ServerAdmin } from './server-admin.js';
import type { TenantTemplates } from './tenant-templates.js';
import { tenantColumns, toTenant, type TenantRow } from './tenant-row.js';
import { TenantMover, type MoveGate } from './tenant-mover.js';
import type {
  CreateTenantInput,
  ListTenantsOptions,
  MoveResult,
  MoveTenantOptions,
  RepairResult,
  Tenant,
  TenantLabels,
  TenantStats,
  TenantsService,
  UpdateTenantInput,
} from './types.js';
import type { PoolKey } from '../pools/types.js';

/** What the tenants service needs of the pool manager. */
export interface TenantPools {
  endPool(key: PoolKey): Promise<void>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    key: PoolKey,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

const COLUMNS = tenantColumns();
/** A tenant row with its role's encrypted password (`tenantRoles`), or null when it has no role. */
type RowWithSecret = TenantRow & { secret: string | null };

/** A provisioning failure as the caller sees it: the library's own errors as they are, else TENANT_NOT_READY (or UNAVAILABLE when a server could not be reached). */
function provisioningError(err: unknown): Error {
  if (err instanceof TenantDbError) return err;
  if (isTransientError(err)) {
    return new TenantDbError('UNAVAILABLE', 'tenant provisioning failed: a server could not be reached; try again', { cause: err });
  }
  return new TenantDbError('TENANT_NOT_READY', 'tenant provisioning failed', { cause: err });
}

// Held by the creating process for the whole of a tenant's provisioning, on its lock session (see LockSession):
// a repair pass that can take it knows the creator is gone (a crashed process's session lock is released).
const provisioningLock = (id: string): string => `tenantdb:provision:${id}`;

/**
 * The tenant registry and the lifecycle of tenant databases: provisioning from a template, soft delete,
 * drop, stats and repair of half-provisioned tenants.
 * @internal
 */
export class TenantsServiceImpl implements TenantsService {
  readonly #ctx: PlatformContext;
  readonly #admin: ServerAdmin;
  readonly #templates: TenantTemplates;
  readonly #pools: TenantPools;
  readonly #store: () => ObjectStore;
  /** Called with a tenant's id whenever its row changes, so caches forget it. */
  readonly #changed: (id: string) => void;
  readonly #mover: TenantMover;

  constructor(deps: {
    ctx: PlatformContext;
    admin: ServerAdmin;
    templates: TenantTemplates;
    pools: TenantPools;
    store: () => ObjectStore;
    onChange: (id: string) => void;
    /** The scopes of this process, which a move holds while writes are blocked. */
    moveGate: MoveGate;
  }) {
    this.#ctx = deps.ctx;
    this.#admin = deps.admin;
    this.#templates = deps.templates;
    this.#pools = deps.pools;
    this.#store = deps.store;
    this.#changed = deps.onChange;
    const { tenantServers, placement } = deps.ctx.options;
    this.#placement = new Placement({
      servers: () => Object.entries(tenantServers).map(([name, { weight }]) => ({ name, weight })),
      countTenants: async () => {
        const { rows } = await this.#ctx.main.query<{ server: string; n: number }>(
          `SELECT server, count(*)::int AS n FROM tenants WHERE status <> 'dropping' GROUP BY server`,
        );
        return new Map(rows.map((r) => [r.server, r.n]));
      },
      policy: placement,
    });
    this.#mover = new TenantMover({
      ctx: deps.ctx,
      admin: deps.admin,
      gate: deps.moveGate,
      tenants: {
        get: (id) => this.get(id),
        poolKey: (tenant) => this.poolKey(tenant),
        adminPoolKey: (tenant) => this.adminPoolKey(tenant),
        endPool: (key) => this.#pools.endPool(key),
        changed: (id) => this.#changed(id),
        giveRole: (tenant, server, database) => this.#roleOn(tenant, server, database),
      },
    });
  }

  move(id: string, toServer: string, options?: MoveTenantOptions): Promise<MoveResult> {
    try {
      this.#ctx.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    // Waited for by close(), as creates are.
    return this.#creating.track(this.#mover.move(id, toServer, options));
  }

  /** Whether a move of the tenant is under way (any process). */
  isMoving(tenantId: string): Promise<boolean> {
    return this.#mover.isMoving(tenantId);
  }

  /** Creates under way: `close()` lets them finish (or clean up) before the pools they use end. */
  readonly #creating = new InFlight();
  /** Where new tenants go. */
  readonly #placement: Placement;

  create(input: CreateTenantInput): Promise<Tenant> {
    try {
      this.#ctx.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const telemetry = this.#ctx.telemetry;
    return this.#creating.track(telemetry ? telemetry.run('tenants.create', {}, (op) => this.#create(input, op)) : this.#create(input));
  }

  /** Waits for the creates under way. */
  async close(): Promise<void> {
    await this.#creating.drained();
  }

  async #create(input: CreateTenantInput, op?: Operation): Promise<Tenant> {
    if (typeof input !== 'object' || input === null) throw new TenantDbError('VALIDATION', 'tenant input is required');
    const name = validateTenantName(input.name);
    const labels = input.labels === undefined ? {} : validateTenantLabels(input.labels);
    if (input.server !== undefined) this.#admin.serverUrl(input.server); // VALIDATION for an unknown server, before anything is written
    const createdBy = input.createdBy ?? null;
    if (createdBy !== null) await this.#assertActiveUser(createdBy);
    const candidates = input.server === undefined ? await this.#placement.candidates({ name, createdBy }) : [input.server];
    const { server, template: ready, done } = await this.#templateOn(candidates);
    try {
      return await this.#createOn(server, ready, { name, createdBy, labels }, op);
    } finally {
      done();
    }
  }

  /**
   * The first of `candidates` (best first) whose template is ready, with that template, counted as a create
   * under way there until `done()`. A server that cannot be reached gives way to the next one; the last one's
   * failure is the caller's.
   */
  async #templateOn(candidates: readonly string[]): Promise<{ server: string; template: string; done: () => void }> {
    for (let i = 0; ; i++) {
      const server = candidates[i]!;
      const done = this.#placement.begin(server);
      try {
        const template = await this.#templates.ensure(server);
        this.#placement.reachable(server);
        return { server, template, done };
      } catch (err) {
        done();
        if (!isUnreachable(err)) throw err;
        this.#placement.unreachable(server);
        if (i === candidates.length - 1) throw provisioningError(err);
        this.#ctx.logger.warn({ server, err: (err as Error).message }, 'a tenant server could not be reached: the new tenant goes to the next one');
      }
    }
  }

  /** Registers, clones and readies a tenant on `server`, from its template `ready` (looked up again if another process replaced it). */
  async #createOn(
    server: string,
    ready: string,
    { name, createdBy, labels }: { name: string; createdBy: string | null; labels: TenantLabels },
    op: Operation | undefined,
  ): Promise<Tenant> {
    let template = ready;
    // The 8 hex of the id make the database name unique in practice; on the rare collision, draw again.
    // No main-database connection is held across the steps: each is one statement (or one short
    // transaction), so any number of concurrent creates leaves the main pool to everybody else.
    for (let attempt = 0; ; attempt++) {
      const id = randomUUID();
      const databaseName = tenantDatabaseName(name, id);
      // Held for the whole provisioning: a repair pass that can take it knows the creator is gone.
      const lock = await this.#ctx.locks.tryHold(provisioningLock(id));
      if (!lock) continue; // a fresh id that somebody holds: draw another
      const where = { tenantId: id, databaseName, server };
      step('create:locked', where);
      let templateGone = false;
      try {
        const { rows } = await this.#ctx.main.query<TenantRow>(
          `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at, created_by, labels)
           VALUES ($1, $2, $3, $4, 'provisioning', true, now(), now(), $5, $6::jsonb) RETURNING ${COLUMNS}`,
          [id, name, databaseName, server, createdBy, JSON.stringify(labels)],
        );
        step('create:registered', where);
        op?.set(where);
        return await this.#provision(rows[0]!, template, op);
      } catch (err) {
        const retry = attempt < 5;
        if (retry && sqlState(err) === PG.UNIQUE_VIOLATION && constraintOf(err)?.includes('database_name')) continue;
        // Another process rebuilt (and dropped) the template this process knew: look it up again.
        if (retry && sqlState(err) === PG.INVALID_CATALOG_NAME) templateGone = true;
        else throw provisioningError(err);
      } finally {
        await lock.release();
      }
      if (templateGone) {
        this.#templates.forget(server);
        template = await this.#templates.ensure(server);
      }
    }
  }

  /** Clones the database and marks the row ready; on any error, undoes both (no database without a row, no ready row without a database). */
  async #provision(row: TenantRow, template: string, op?: Operation): Promise<Tenant> {
    try {
      // A spare already cloned from this template is renamed in a millisecond; else clone now.
      if (await this.#templates.claimSpare(row.server, row.database_name)) op?.set({ source: 'spare' });
      else {
        op?.set({ source: 'clone' });
        await this.#admin.createDatabase(row.server, row.database_name, template);
      }
      const where = { tenantId: row.id, databaseName: row.database_name, server: row.server };
      step('create:cloned', where);
      if (this.#ctx.options.tenantRoles) {
        await this.#giveRole(toTenant(row));
        step('create:role', where);
      }
      const tenant = await this.#finish(row);
      step('create:ready', where);
      this.#templates.refill(row.server);
      return tenant;
    } catch (err) {
      await this.#admin.dropDatabase(row.server, row.database_name).catch(() => {});
      if (this.#ctx.options.tenantRoles) await this.#admin.dropRole(row.server, row.database_name).catch(() => {});
      const main = this.#ctx.main;
      await main.query('DELETE FROM tenants WHERE id = $1', [row.id]).catch(async () => {
        // The row could not be removed: say so, so that repair() (or a reader) never takes it for ready.
        // (Unless a drop marked it meanwhile: that drop finishes the removal.)
        await main
          .query(`UPDATE tenants SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'provisioning'`, [row.id])
          .catch(() => {});
      });
      throw err;
    }
  }

  /** Ready, and the creator becomes admin, in one transaction. */
  async #finish(row: TenantRow): Promise<Tenant> {
    const tenant = await this.#ctx.mainTransaction(async (client) => {
      const { rows } = await client.query<TenantRow>(
        `UPDATE tenants SET status = 'ready', updated_at = now() WHERE id = $1 AND status = 'provisioning' RETURNING ${COLUMNS}`,
        [row.id],
      );
      // Gone or failed meanwhile (a repair pass that found the creator's lock session lost): not ours to finish.
      if (!rows[0]) throw new TenantDbError('TENANT_NOT_READY', 'the tenant was removed while it was being provisioned');
      if (row.created_by !== null) {
        // Only if the account still exists: repair may finish a tenant long after its creator was deleted.
        await client.query(
          `INSERT INTO user_tenant_associations (user_id, tenant_id, role, joined_at)
           SELECT id, $2, 'admin', now() FROM users WHERE id = $1
           ON CONFLICT (user_id, tenant_id) DO NOTHING`,
          [row.created_by, row.id],
        );
      }
      return toTenant(rows[0]);
    });
    this.#changed(row.id);
    return tenant;
  }

  async #assertActiveUser(userId: string): Promise<void> {
    const { rows } = isUuid(userId)
      ? await this.#ctx.main.query<{ is_active: boolean }>('SELECT is_active FROM users WHERE id = $1', [userId])
      : { rows: [] };
    if (rows.length === 0) throw new TenantDbError('NOT_FOUND', 'no such user (createdBy)');
    if (!rows[0]!.is_active) throw new TenantDbError('FORBIDDEN', 'an inactive user cannot create a tenant');
  }

  /** The row of a tenant by id or database name, or undefined. */
  async find(idOrDatabaseName: string): Promise<Tenant | undefined> {
    this.#ctx.assertOpen();
    // No id or database name holds a NUL (which PostgreSQL would refuse as text, a DATABASE error) or
    // passes its 63 bytes: such a string names no tenant.
    if (typeof idOrDatabaseName !== 'string' || idOrDatabaseName.includes('\u0000') || Buffer.byteLength(idOrDatabaseName) > 63) {
      return undefined;
    }
    const byId = isUuid(idOrDatabaseName);
    const { rows } = await this.#ctx.main.query<RowWithSecret>(
      `${this.#select()} WHERE t.${byId ? 'id' : 'database_name'} = $1`,
      [idOrDatabaseName],
    );
    return rows[0] && this.#remember(rows[0]);
  }

  async get(idOrDatabaseName: string): Promise<Tenant> {
    const tenant = await this.find(idOrDatabaseName);
    if (!tenant) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    return tenant;
  }

  async list(options: ListTenantsOptions = {}): Promise<Tenant[]> {
    this.#ctx.assertOpen();
    const labels = options.labels === undefined ? undefined : validateTenantLabels(options.labels);
    const where: string[] = [];
    const params: unknown[] = [];
    if (!options.includeInactive) where.push('t.is_active');
    if (labels !== undefined && Object.keys(labels).length > 0) {
      params.push(JSON.stringify(labels));
      where.push(`t.labels @> $${params.length}::jsonb`); // served by the GIN index
    }
    const { rows } = await this.#ctx.main.query<RowWithSecret>(
      `${this.#select()} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t.created_at, t.id`,
      params,
    );
    return rows.map((row) => this.#remember(row));
  }

  async update(id: string, input: UpdateTenantInput): Promise<Tenant> {
    this.#ctx.assertOpen();
    if (typeof input !== 'object' || input === null) throw new TenantDbError('VALIDATION', 'tenant update input is required');
    const name = input.name === undefined ? null : validateTenantName(input.name);
    const labels = input.labels === undefined ? null : validateTenantLabels(input.labels);
    if (name === null && labels === null) throw new TenantDbError('VALIDATION', 'nothing to update: give name or labels');
    // The database name stays: it is the tenant's address (pools, moves, other processes' caches).
    const { rows } = isUuid(id)
      ? await this.#ctx.main.query<TenantRow>(
          `UPDATE tenants SET name = coalesce($2, name), labels = coalesce($3::jsonb, labels), updated_at = now()
            WHERE id = $1 AND status <> 'dropping' RETURNING ${COLUMNS}`,
          [id, name, labels === null ? null : JSON.stringify(labels)],
        )
      : { rows: [] };
    if (!rows[0]) {
      if (isUuid(id) && (await this.find(id))?.status === 'dropping') {
        throw new TenantDbError('CONFLICT', 'the tenant is being dropped');
      }
      throw new TenantDbError('NOT_FOUND', 'no such tenant');
    }
    this.#changed(rows[0].id);
    return toTenant(rows[0]);
  }

  async #setActive(id: string, active: boolean): Promise<Tenant> {
    this.#ctx.assertOpen();
    // A tenant being dropped stays inactive: its database may be gone already.
    const { rows } = isUuid(id)
      ? await this.#ctx.main.query<TenantRow>(
          `UPDATE tenants SET is_active = $2, updated_at = now() WHERE id = $1 AND (status <> 'dropping' OR NOT $2)
           RETURNING ${COLUMNS}`,
          [id, active],
        )
      : { rows: [] };
    if (!rows[0]) {
      if (active && (await this.find(id))?.status === 'dropping') {
        throw new TenantDbError('CONFLICT', 'the tenant is being dropped: call tenants.drop again to finish');
      }
      throw new TenantDbError('NOT_FOUND', 'no such tenant');
    }
    // The id as PostgreSQL prints it (the caller's may be upper case): what the caches hold.
    this.#changed(rows[0].id);
    return toTenant(rows[0]);
  }

  deactivate(id: string): Promise<Tenant> {
    return this.#setActive(id, false);
  }

  activate(id: string): Promise<Tenant> {
    return this.#setActive(id, true);
  }

  async drop(id: string): Promise<void> {
    const tenant = await this.get(id);
    // Marked first, so nobody enters (or activates) it while it goes; a retry after a failure half way
    // picks up where it stopped.
    await this.#ctx.main.query(`UPDATE tenants SET status = 'dropping', is_active = false, updated_at = now() WHERE id = $1`, [
      tenant.id,
    ]);
    this.#changed(tenant.id);
    step('drop:marked', { tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server });
    await this.finishDrop(tenant);
  }

  /** The steps of a drop after its mark, each of which may be repeated; returns how many objects went. */
  async finishDrop(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): Promise<number> {
    await this.#pools.endPool(this.poolKey(tenant));
    await this.#pools.endPool(this.adminPoolKey(tenant));
    const where = { tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server };
    await this.#admin.dropDatabase(tenant.server, tenant.databaseName);
    if (this.#ctx.options.tenantRoles) await this.#admin.dropRole(tenant.server, tenant.databaseName);
    step('drop:database', where);
    const objects = await this.#store().deletePrefix(tenantPrefix(this.#ctx.options.s3.prefix, tenant.id));
    step('drop:objects', where);
    await this.#ctx.main.query('DELETE FROM tenants WHERE id = $1', [tenant.id]);
    this.#changed(tenant.id);
    return objects;
  }

  async stats(id: string): Promise<TenantStats> {
    const tenant = await this.get(id);
    if (tenant.status !== 'ready') throw new TenantDbError('TENANT_NOT_READY', 'the tenant database is not ready');
    const size = await this.#admin.query<{ size: string }>(tenant.server, 'SELECT pg_database_size($1) AS size', [
      tenant.databaseName,
    ]);
    const counts = await this.#pools.query<{ documents: string; files: string; stored: string }>(
      this.poolKey(tenant),
      `SELECT (SELECT count(*) FROM documents) AS documents, (SELECT count(*) FROM files) AS files,
              (SELECT coalesce(sum(size_bytes), 0) FROM files) AS stored`,
    );
    const row = counts.rows[0]!;
    return {
      databaseSizeBytes: Number(size.rows[0]!.size),
      documents: Number(row.documents),
      files: Number(row.files),
      storedBytes: Number(row.stored),
    };
  }

  /**
   * The pool manager's key of a tenant's database, for its traffic (the server's `url`, maybe a pooler),
   * as the tenant's own role when it has one (read with its row).
   */
  poolKey(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): PoolKey {
    const key: PoolKey = { server: this.#admin.serverUrl(tenant.server), database: tenant.databaseName, serverName: tenant.server };
    const secret = this.#ctx.options.tenantRoles ? this.#secrets.get(tenant.id) : undefined;
    if (secret) key.role = { user: tenant.databaseName, password: decryptSecret(this.#credentialsKey(), tenant.id, secret) };
    return key;
  }

  /** The encrypted role passwords of the tenants read (null: no role), for {@link poolKey}. */
  readonly #secrets = new Map<string, string | null>();

  /** SELECT of tenant rows (alias `t`), with their role's password when `tenantRoles` is on. */
  #select(): string {
    return this.#ctx.options.tenantRoles
      ? `SELECT ${tenantColumns('t')}, c.secret FROM tenants t LEFT JOIN tenant_credentials c ON c.tenant_id = t.id`
      : `SELECT ${tenantColumns('t')}, NULL AS secret FROM tenants t`;
  }

  /** The tenant of a row, its role's password kept for {@link poolKey}. */
  #remember(row: RowWithSecret): Tenant {
    if (this.#ctx.options.tenantRoles) this.#secrets.set(row.id, row.secret);
    return toTenant(row);
  }

  #credentialsKey(): Buffer {
    const key = this.#ctx.options.credentialsKey;
    if (!key) throw new TenantDbError('VALIDATION', 'tenantRoles needs credentialsKey');
    return key;
  }

  /**
   * Gives a tenant database its login role with a new random password: the encrypted password is stored
   * first, then the role made (or altered) to it, so a crash in between leaves a row repair can redo.
   */
  async #giveRole(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): Promise<void> {
    const password = newRolePassword();
    const secret = encryptSecret(this.#credentialsKey(), tenant.id, password);
    await this.#ctx.main.query(
      `INSERT INTO tenant_credentials (tenant_id, role_name, secret) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id) DO UPDATE SET secret = EXCLUDED.secret, next_secret = NULL, updated_at = now()`,
      [tenant.id, tenant.databaseName, secret],
    );
    await this.#admin.setTenantRole(tenant.server, tenant.databaseName, tenant.databaseName, scramVerifier(password));
    this.#secrets.set(tenant.id, secret);
  }

  /**
   * The tenant's login role, with its stored password, and the group's rights inside `database` of `server`
   * (a move's target): as provisioning gives them. A tenant without a role (made before `tenantRoles`) gets none.
   */
  async #roleOn(tenant: Pick<Tenant, 'id' | 'databaseName'>, server: string, database: string): Promise<void> {
    const { rows } = await this.#ctx.main.query<{ secret: string }>('SELECT secret FROM tenant_credentials WHERE tenant_id = $1', [tenant.id]);
    if (!rows[0]) return;
    await this.#templates.grantTenantRights(server, database);
    const password = decryptSecret(this.#credentialsKey(), tenant.id, rows[0].secret);
    await this.#admin.setTenantRole(server, tenant.databaseName, database, scramVerifier(password));
  }

  async rotateCredentials(id: string): Promise<void> {
    this.#ctx.assertOpen();
    if (!this.#ctx.options.tenantRoles) throw new TenantDbError('VALIDATION', 'rotateCredentials needs the tenantRoles option');
    const tenant = await this.get(id);
    if (tenant.status === 'dropping') throw new TenantDbError('CONFLICT', 'the tenant is being dropped');
    if (tenant.status !== 'ready') throw new TenantDbError('TENANT_NOT_READY', 'the tenant database is not ready');
    // One rotation of a tenant at a time, across processes: the stored password and the server's must end equal.
    await this.#ctx.locks.withLock(credentialsLock(tenant.id), async () => {
      const { rows } = await this.#ctx.main.query<{ secret: string }>('SELECT secret FROM tenant_credentials WHERE tenant_id = $1', [
        tenant.id,
      ]);
      if (!rows[0]) {
        // A tenant made before tenantRoles: its tables' rights for the group, then a role of its own.
        await this.#templates.grantTenantRights(tenant.server, tenant.databaseName);
        await this.#giveRole(tenant);
      } else {
        const password = newRolePassword();
        await this.#ctx.main.query('UPDATE tenant_credentials SET next_secret = $2, updated_at = now() WHERE tenant_id = $1', [
          tenant.id,
          encryptSecret(this.#credentialsKey(), tenant.id, password),
        ]);
        step('credentials:next', { tenantId: tenant.id, databaseName: tenant.databaseName, server: tenant.server });
        await this.#finishRotation(tenant, password);
      }
    });
    // New connections use the new password; those open stay authenticated and idle out of the old pool.
    this.#changed(tenant.id);
  }

  /** The server's password set to the rotation's new one, then the stored one replaced by it. */
  async #finishRotation(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>, password: string): Promise<void> {
    await this.#admin.setTenantRole(tenant.server, tenant.databaseName, tenant.databaseName, scramVerifier(password));
    const { rows } = await this.#ctx.main.query<{ secret: string }>(
      `UPDATE tenant_credentials SET secret = next_secret, next_secret = NULL, updated_at = now()
        WHERE tenant_id = $1 AND next_secret IS NOT NULL RETURNING secret`,
      [tenant.id],
    );
    if (rows[0]) this.#secrets.set(tenant.id, rows[0].secret);
  }

  /**
   * The pool manager's key of a tenant's database over the server's direct `adminUrl`, for its migrations:
   * another pool than {@link poolKey}'s, inside the same server's budget.
   */
  adminPoolKey(tenant: Pick<Tenant, 'server' | 'databaseName'>): PoolKey {
    return { server: this.#admin.adminServerUrl(tenant.server), database: tenant.databaseName, serverName: tenant.server };
  }

  async repair(): Promise<RepairResult> {
    this.#ctx.assertOpen();
    const result: RepairResult = { finished: [], removed: [], failed: [] };
    const { rows } = await this.#ctx.main.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE status <> 'ready'`);
    for (const row of rows) {
      // One row that cannot be repaired (its server no longer configured or unreachable) must not stop the
      // others, nor init(): it is reported and left for a later pass.
      try {
        const lock = await this.#ctx.locks.tryHold(provisioningLock(row.id));
        if (!lock) continue; // its creator is still at work
        try {
          const { rows: current } = await this.#ctx.main.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE id = $1`, [row.id]);
          const now = current[0];
          if (!now || now.status === 'ready') continue;
          if (now.status === 'dropping') {
            await this.finishDrop(toTenant(now));
            result.removed.push(now.id);
          } else if (now.status === 'provisioning' && (await this.#admin.databaseExists(now.server, now.database_name))) {
            if (this.#ctx.options.tenantRoles) await this.#giveRole(toTenant(now));
            await this.#finish(now);
            result.finished.push(now.id);
          } else {
            await this.#admin.dropDatabase(now.server, now.database_name);
            if (this.#ctx.options.tenantRoles) await this.#admin.dropRole(now.server, now.database_name);
            await this.#ctx.main.query('DELETE FROM tenants WHERE id = $1', [now.id]);
            this.#changed(now.id);
            result.removed.push(now.id);
          }
        } finally {
          await lock.release();
        }
      } catch (err) {
        const error = asTenantDbError(err);
        result.failed.push({ tenantId: row.id, error });
        this.#ctx.logger.warn({ tenantId: row.id, err: error.message }, 'could not repair a tenant left half way (provisioned or dropped)');
      }
    }
    if (this.#ctx.options.tenantRoles) await this.#repairRotations(result);
    const moves = await this.#mover.repair();
    result.failed.push(...moves.failed);
    if (moves.finished.length > 0 || moves.undone.length > 0) {
      result.moves = { finished: moves.finished, undone: moves.undone };
      this.#ctx.logger.info(result.moves, 'repaired tenant moves left half way');
    }
    if (result.finished.length || result.removed.length) {
      this.#ctx.logger.info({ finished: result.finished, removed: result.removed }, 'repaired tenants left half way (provisioned or dropped)');
    }
    return result;
  }

  /** Finishes the password rotations a crash stopped between storing the new password and moving it in. */
  async #repairRotations(result: RepairResult): Promise<void> {
    const { rows } = await this.#ctx.main.query<TenantRow & { next_secret: string }>(
      `SELECT ${tenantColumns('t')}, c.next_secret FROM tenant_credentials c JOIN tenants t ON t.id = c.tenant_id
        WHERE c.next_secret IS NOT NULL`,
    );
    for (const row of rows) {
      const tenant = toTenant(row);
      try {
        await this.#ctx.locks.withLock(credentialsLock(tenant.id), async () => {
          await this.#finishRotation(tenant, decryptSecret(this.#credentialsKey(), tenant.id, row.next_secret));
        });
        this.#changed(tenant.id);
      } catch (err) {
        const error = asTenantDbError(err);
        result.failed.push({ tenantId: tenant.id, error });
        this.#ctx.logger.warn({ tenantId: tenant.id, err: error.message }, "could not finish rotating a tenant role's password");
      }
    }
  }
}
