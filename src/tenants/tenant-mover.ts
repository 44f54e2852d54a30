import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { PlatformContext } from '../core/platform-context.js';
import { TenantDbError, asTenantDbError, isTransientError } from '../errors.js';
import type { PoolKey } from '../pools/types.js';
import { PG, constraintOf, sqlState } from '../util/pg-errors.js';
import { withDatabase } from '../util/redact.js';
import { quoteDatabaseName, quoteIdent } from '../util/sql.js';
import { step, type StepName } from '../util/steps.js';
import { credentialsLock } from './credentials.js';
import { dumpSchema, dumpToolsMatch, restoreSection } from './pg-dump.js';
import { applySchema, copyRows, copySequences, readSchema, schemaFingerprint, type TenantSchema } from './schema-copy.js';
import type { ServerAdmin } from './server-admin.js';
import { tenantColumns, toTenant, type TenantRow } from './tenant-row.js';
import type { MoveMethod, MoveProgressEvent, MoveResult, MoveTenantOptions, Tenant } from './types.js';

/**
 * What a move needs of the tenant scopes of its own process: to hold new scopes of the tenant while writes
 * are blocked, and to let them go (they read the registry again) once the move switched or was undone.
 * @internal
 */
export interface MoveGate {
  /** Holds new scopes of the tenant; resolves once its running scopes finished, or after `drainMs`. */
  block(tenantId: string, drainMs: number): Promise<void>;
  /** Lets the held scopes go on; they read the tenant's row again. */
  unblock(tenantId: string): void;
}

/** What the mover needs of the tenants service. @internal */
export interface MoverTenants {
  get(id: string): Promise<Tenant>;
  poolKey(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): PoolKey;
  adminPoolKey(tenant: Pick<Tenant, 'server' | 'databaseName'>): PoolKey;
  endPool(key: PoolKey): Promise<void>;
  /** The tenant's row changed: caches forget it. */
  changed(id: string): void;
  /**
   * With `tenantRoles`: gives the tenant's login role (its stored password) and its rights on `database` of
   * `server`, as at provisioning. Nothing for a tenant that has no role.
   */
  giveRole(tenant: Pick<Tenant, 'id' | 'databaseName'>, server: string, database: string): Promise<void>;
}

/** What `repair()` did to moves a crash stopped half way. @internal */
export interface MoveRepairResult {
  finished: string[];
  undone: string[];
  failed: { tenantId: string; error: Error }[];
}

/** A `tenant_moves` row. */
interface MoveRow {
  tenant_id: string;
  source: string;
  target: string;
  /** The database on the target until the switch renames it (see {@link moveName}). */
  database_name: string;
  method: MoveMethod;
  phase: 'copying' | 'blocked' | 'renaming' | 'switched';
}

/** Held by the moving process for the whole move, on its lock session: repair that can take it knows the mover is gone. */
const moveLock = (id: string): string => `tenantdb:move:${id}`;

/**
 * The name of a move's own objects: the target database until the switch, and the publication, the
 * subscription and the replication slot of the logical path. One per tenant (one move at a time), so repair
 * finds them from the id alone.
 */
const moveName = (tenantId: string): string => `tenantdb_move_${tenantId.replace(/-/g, '').toLowerCase()}`;

/** The move's fence table (see TenantMover.#waitForFence), in the source database and the target's while they replicate. */
const fenceTableOf = (move: Pick<MoveRow, 'database_name'>): string => `public.${quoteIdent(move.database_name)}`;

const POLL_MS = 20;
/** The lag (a fence's round trip) under which the logical path blocks writes, and how many times it measures. */
const CLOSE_ENOUGH_MS = 50;
const PRE_BLOCK_ROUNDS = 5;
/** How long the block waits for the sessions it ended to be gone. */
const TERMINATE_TIMEOUT_MS = 10_000;
/** How long dropping a replication slot waits for its walsender to let it go. */
const SLOT_TIMEOUT_MS = 10_000;

/** Failures to set up logical replication: the move, undone, goes on as a copy. */
const cannotReplicate = new WeakSet<Error>();

/** A direct connection to one database, ended by `release`. */
interface Direct {
  client: pg.ClientBase;
  release(): Promise<void>;
}

/**
 * `tenants.move`: moves a tenant's database to another tenant server with PostgreSQL's logical replication
 * when the source can publish to the target, else with a copy through the driver; blocks the tenant's writes
 * for the final steps only (the whole copy on the copy path), switches the registry in one transaction, and
 * undoes everything on a failure. Every step is recorded in `tenant_moves`, so `repair()` finishes (after the
 * switch) or undoes (before it) a move whose process died.
 * @internal
 */
export class TenantMover {
  readonly #ctx: PlatformContext;
  readonly #admin: ServerAdmin;
  readonly #tenants: MoverTenants;
  readonly #gate: MoveGate;

  constructor(deps: { ctx: PlatformContext; admin: ServerAdmin; tenants: MoverTenants; gate: MoveGate }) {
    this.#ctx = deps.ctx;
    this.#admin = deps.admin;
    this.#tenants = deps.tenants;
    this.#gate = deps.gate;
  }

  /** Whether a move of the tenant is under way (any process): its row in `tenant_moves`. */
  async isMoving(tenantId: string): Promise<boolean> {
    const { rowCount } = await this.#ctx.main.query('SELECT 1 FROM tenant_moves WHERE tenant_id = $1', [tenantId]);
    return rowCount === 1;
  }

  async move(id: string, to: string, options: MoveTenantOptions = {}): Promise<MoveResult> {
    this.#ctx.assertOpen();
    const started = performance.now();
    if (typeof options !== 'object' || options === null) throw new TenantDbError('VALIDATION', 'move options must be an object');
    if (options.method !== undefined && options.method !== 'auto' && options.method !== 'copy') {
      throw new TenantDbError('VALIDATION', "move method must be 'auto' or 'copy'");
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new TenantDbError('VALIDATION', 'onProgress must be a function');
    for (const bound of ['drainTimeoutMs', 'syncTimeoutMs'] as const) {
      const value = options[bound];
      if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
        throw new TenantDbError('VALIDATION', `${bound} must be a non-negative integer`);
      }
    }
    if (typeof to !== 'string') throw new TenantDbError('VALIDATION', 'the target server must be a server name');
    const targetServer = this.#ctx.connections.server(to); // VALIDATION for an unknown name
    const tenant = await this.#tenants.get(id);
    if (tenant.server === to) throw new TenantDbError('VALIDATION', `the tenant is already on the server ${JSON.stringify(to)}`);
    if (this.#ctx.connections.server(tenant.server).adminUrl === targetServer.adminUrl) {
      throw new TenantDbError('VALIDATION', 'the two server names are the same PostgreSQL server');
    }
    if (tenant.status === 'dropping') throw new TenantDbError('CONFLICT', 'the tenant is being dropped');
    if (tenant.status !== 'ready') throw new TenantDbError('TENANT_NOT_READY', 'the tenant database is not ready');
    const lock = await this.#ctx.locks.tryHold(moveLock(tenant.id));
    if (!lock) throw new TenantDbError('CONFLICT', 'the tenant is already being moved');
    try {
      // A rotation during the move would set a password the target never gets.
      const credentials = this.#ctx.options.tenantRoles ? await this.#ctx.locks.tryHold(credentialsLock(tenant.id)) : undefined;
      if (this.#ctx.options.tenantRoles && !credentials) throw new TenantDbError('CONFLICT', "the tenant's credentials are being rotated");
      try {
        this.#step('move:locked', tenant, to);
        try {
          return await this.#move(tenant, to, options, started);
        } catch (err) {
          if (!cannotReplicate.has(err as Error)) throw err;
          // Undone already: copy instead.
          const cause = (err as Error).cause;
          this.#ctx.logger.warn(
            { tenantId: tenant.id, err: cause instanceof Error ? cause.message : String(cause) },
            'logical replication could not be set up for a move: copying instead (writes blocked for the whole copy)',
          );
          return await this.#move(tenant, to, { ...options, method: 'copy' }, started);
        }
      } finally {
        await credentials?.release();
      }
    } finally {
      await lock.release();
    }
  }

  async #move(tenant: Tenant, to: string, options: MoveTenantOptions, started: number): Promise<MoveResult> {
    const progress = (event: Omit<MoveProgressEvent, 'tenantId'>): void => {
      try {
        options.onProgress?.({ tenantId: tenant.id, ...event });
      } catch {
        // The caller's listener must not break the move.
      }
    };
    progress({ phase: 'preparing' });
    if (await this.#admin.databaseExists(to, tenant.databaseName)) {
      throw new TenantDbError('CONFLICT', `the target server already has a database named ${tenant.databaseName}`);
    }
    const name = moveName(tenant.id);
    const cleanUps: (() => Promise<unknown>)[] = [];
    const source = await this.#open(tenant.server, tenant.databaseName);
    let row: MoveRow | undefined;
    let blockedAt: number | undefined;
    let renamed = false;
    let switched = false;
    try {
      const fingerprint = await schemaFingerprint(source.client);
      const schema = await readSchema(source.client);
      // pg_dump's schema when its version matches both servers': it copies every kind of object.
      const dump = (await dumpToolsMatch(await Promise.all([tenant.server, to].map((server) => this.#major(server)))))
        ? await this.#dumpSchema(tenant)
        : undefined;
      if (!dump && schema.unsupported.length > 0) {
        const list = schema.unsupported.slice(0, 5).join(', ');
        throw new TenantDbError(
          'VALIDATION',
          `the tenant database has objects a move without pg_dump (of the servers' version) cannot copy: ${list}${schema.unsupported.length > 5 ? ', …' : ''}`,
        );
      }
      cleanUps.push(async () => dump && (await rm(dump.folder, { recursive: true, force: true })));
      const logical = options.method === 'copy' ? 'copy' : await this.#chooseMethod(tenant.server, to, schema);
      const method: MoveMethod = logical === 'copy' && dump ? 'dump' : logical;
      row = await this.#register(tenant, to, name, method);
      const move = row;
      const where = { tenantId: tenant.id, databaseName: tenant.databaseName, server: to };
      step('move:registered', where);
      progress({ phase: 'preparing', method });

      await this.#admin.createDatabase(to, name, 'template0');
      step('move:created', where);
      const counts = { tables: schema.tables.length, rows: 0, sequences: 0 };
      const target = await this.#open(to, name);
      const targetUrl = this.#admin.databaseUrl(to, name);
      /** The schema's part before the rows (tables, sequences), or after them (keys, indexes, triggers, foreign keys). */
      const build = (part: 'pre-data' | 'post-data'): Promise<void> =>
        dump ? restoreSection(targetUrl, dump.file, part) : applySchema(target.client, part === 'pre-data' ? schema.preData : schema.postData);
      try {
        progress({ phase: 'schema', method });
        const block = async (): Promise<void> => {
          blockedAt = performance.now();
          await this.#block(move, tenant, source, options.drainTimeoutMs ?? 2_000);
          // Rows replicate, DDL does not: a migration that ran since the schema was read would be lost.
          if ((await schemaFingerprint(source.client)) !== fingerprint) {
            throw new TenantDbError('CONFLICT', "the tenant's schema changed during the move (a migration ran?); move it again");
          }
          step('move:blocked', where);
          progress({ phase: 'blocked', method });
        };
        if (method === 'logical') {
          await build('pre-data');
          await build('post-data');
          await this.#replicate(move, tenant, schema, source, target, options.syncTimeoutMs ?? 600_000, progress, block);
          counts.sequences = await copySequences(source.client, target.client, schema.sequences);
          await this.#dropSubscription(target.client, name);
          await target.client.query(`DROP TABLE ${fenceTableOf(move)}`);
        } else {
          // The tables before the block (the block checks the schema did not change since).
          await build('pre-data');
          await block();
          await source.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          counts.rows = await copyRows(source.client, target.client, schema.tables, (table, rows) =>
            progress({ phase: 'copying', method, table, rows }),
          );
          await source.client.query('COMMIT');
          await build('post-data');
          if (this.#ctx.options.tenantRoles) await this.#tenants.giveRole(tenant, to, name);
          step('move:copied', where);
          counts.sequences = await copySequences(source.client, target.client, schema.sequences);
        }
        step('move:caught-up', where);
        progress({ phase: 'caught-up', method });
      } finally {
        await target.release();
      }
      await source.release();

      await this.#setPhase(tenant.id, 'renaming');
      await this.#admin.query(to, `ALTER DATABASE ${quoteDatabaseName(name)} RENAME TO ${quoteDatabaseName(tenant.databaseName)}`);
      renamed = true;
      step('move:renamed', where);
      const moved = await this.#switch(move);
      switched = true;
      step('move:switched', where);
      const blockedMs = performance.now() - (blockedAt ?? performance.now());
      this.#gate.unblock(tenant.id);
      progress({ phase: 'switched', method });
      await this.#cleanUp(move, tenant).then(
        () => progress({ phase: 'cleaned', method }),
        (err: unknown) =>
          // The move is done: the source's leftovers go at the next repair().
          this.#ctx.logger.warn({ tenantId: tenant.id, err: asTenantDbError(err).message }, 'moved a tenant, but could not drop its old database yet'),
      );
      progress({ phase: 'done', method });
      return {
        tenant: moved,
        from: tenant.server,
        to,
        method,
        durationMs: performance.now() - started,
        blockedMs,
        tables: counts.tables,
        rows: counts.rows,
        sequences: counts.sequences,
      };
    } catch (err) {
      await source.release();
      if (!switched) await this.#undoAfterFailure(tenant, to, row, renamed);
      throw moveError(err);
    } finally {
      for (const clean of cleanUps) await clean().catch(() => {});
    }
  }

  /** The server's major version. */
  async #major(server: string): Promise<number> {
    const { rows } = await this.#admin.query<{ major: number }>(server, `SELECT current_setting('server_version_num')::int / 10000 AS major`);
    return rows[0]!.major;
  }

  /** The tenant's schema by pg_dump, in a file of a temp folder (removed after the move). */
  async #dumpSchema(tenant: Tenant): Promise<{ folder: string; file: string }> {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-move-'));
    const file = path.join(folder, 'schema.dump');
    try {
      await dumpSchema(this.#admin.databaseUrl(tenant.server, tenant.databaseName), file);
    } catch (err) {
      await rm(folder, { recursive: true, force: true });
      throw err;
    }
    return { folder, file };
  }

  /** Logical replication when the source publishes (`wal_level = logical`) and every table can be replicated; else a copy. */
  async #chooseMethod(source: string, target: string, schema: TenantSchema): Promise<MoveMethod> {
    const { rows } = await this.#admin.query<{ wal_level: string }>(source, 'SHOW wal_level');
    if (rows[0]?.wal_level !== 'logical') return 'copy';
    // Updates and deletes of a table without a replica identity could not be published (and would fail on the source).
    if (schema.withoutReplicaIdentity.length > 0) return 'copy';
    // A subscription to a publication of its own server would wait on itself for its slot.
    const ids = await Promise.all(
      [source, target].map((server) =>
        this.#admin
          .query<{ id: string }>(server, 'SELECT system_identifier::text AS id FROM pg_control_system()')
          .then((r) => r.rows[0]?.id, () => undefined),
      ),
    );
    return ids[0] !== undefined && ids[0] === ids[1] ? 'copy' : 'logical';
  }

  async #register(tenant: Tenant, to: string, name: string, method: MoveMethod): Promise<MoveRow> {
    try {
      const { rows } = await this.#ctx.main.query<MoveRow>(
        `INSERT INTO tenant_moves (tenant_id, source, target, database_name, method, phase) VALUES ($1, $2, $3, $4, $5, 'copying')
         RETURNING tenant_id, source, target, database_name, method, phase`,
        [tenant.id, tenant.server, to, name, method],
      );
      return rows[0]!;
    } catch (err) {
      if (sqlState(err) === PG.UNIQUE_VIOLATION && constraintOf(err) === 'tenant_moves_pkey') {
        throw new TenantDbError('CONFLICT', 'the tenant is already being moved', { cause: err });
      }
      throw err;
    }
  }

  async #setPhase(tenantId: string, phase: MoveRow['phase']): Promise<void> {
    await this.#ctx.main.query('UPDATE tenant_moves SET phase = $2, updated_at = now() WHERE tenant_id = $1', [tenantId, phase]);
  }

  /** A direct connection (the admin URL) to a database of a server, outside every pool. */
  async #open(server: string, database: string): Promise<Direct> {
    const { client, release } = await this.#ctx.connections.direct(this.#admin.databaseUrl(server, database))();
    let released = false;
    return {
      client,
      release: async () => {
        if (released) return;
        released = true;
        await release();
      },
    };
  }

  /**
   * Blocks the tenant's writes: this process's new scopes wait, its running ones may finish (`drainMs`), then
   * the source database refuses connections (`ALLOW_CONNECTIONS false`, which binds superusers too) and every
   * client session on it but the mover's ends; returns once they are gone, so that no commit can follow.
   */
  async #block(move: MoveRow, tenant: Tenant, source: Direct, drainMs: number): Promise<void> {
    await this.#setPhase(tenant.id, 'blocked');
    await this.#gate.block(tenant.id, drainMs);
    const db = quoteDatabaseName(tenant.databaseName);
    await this.#admin.query(move.source, `ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false`);
    const { rows } = await source.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const others = `FROM pg_stat_activity WHERE datname = $1 AND pid <> $2 AND backend_type = 'client backend'`;
    const args = [tenant.databaseName, rows[0]!.pid];
    await this.#admin.query(move.source, `SELECT pg_terminate_backend(pid) ${others}`, args);
    const deadline = Date.now() + TERMINATE_TIMEOUT_MS;
    while ((await this.#admin.query(move.source, `SELECT 1 ${others}`, args)).rowCount! > 0) {
      if (Date.now() > deadline) throw new TenantDbError('UNAVAILABLE', 'the sessions of the tenant database did not end in time');
      await sleep(5);
    }
  }

  /**
   * The logical path: the schema on the target, a publication of every table on the source, a subscription
   * that copies and follows it; once in sync, `block()`, then waits until the target confirmed every write
   * committed before it.
   */
  async #replicate(
    move: MoveRow,
    tenant: Tenant,
    schema: TenantSchema,
    source: Direct,
    target: Direct,
    timeoutMs: number,
    progress: (event: Omit<MoveProgressEvent, 'tenantId'>) => void,
    block: () => Promise<void>,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const name = quoteIdent(move.database_name);
    const fenceTable = fenceTableOf(move);
    if (this.#ctx.options.tenantRoles) await this.#tenants.giveRole(tenant, move.target, move.database_name);
    for (const side of [source, target]) await side.client.query(`CREATE TABLE ${fenceTable} (token text PRIMARY KEY)`);
    // The target connects to the source as the source's admin URL says (see README: network and rights).
    const url = new URL(withDatabase(this.#admin.adminServerUrl(move.source), tenant.databaseName));
    // A source the target cannot reach fails the subscription in time (then the move copies), not after TCP's minutes.
    if (!url.searchParams.has('connect_timeout')) {
      url.searchParams.set('connect_timeout', String(Math.ceil(this.#ctx.options.pool.connectTimeoutMs / 1000)));
    }
    const conninfo = url.toString();
    try {
      await source.client.query(`CREATE PUBLICATION ${name} FOR ALL TABLES`);
      await target.client.query(
        `CREATE SUBSCRIPTION ${name} CONNECTION ${target.client.escapeLiteral(conninfo)} PUBLICATION ${name}
         WITH (copy_data = true)`,
      );
    } catch (err) {
      // No right to publish or subscribe, the target cannot reach the source, no walsender or slot free…
      const error = new TenantDbError('UNAVAILABLE', 'logical replication from the source to the target could not be set up', { cause: err });
      cannotReplicate.add(error);
      throw error;
    }
    const tables = schema.tables.length;
    let reported = -1;
    for (;;) {
      const { rows } = await target.client.query<{ total: number; ready: number }>(
        `SELECT count(*)::int AS total, count(*) FILTER (WHERE r.srsubstate = 'r')::int AS ready
           FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`,
        [move.database_name],
      );
      const { total, ready } = rows[0]!;
      if (ready !== reported) progress({ phase: 'syncing', method: 'logical', tablesDone: ready, tables });
      reported = ready;
      if (total > tables && ready === total) break;
      if (Date.now() > deadline) throw new TenantDbError('UNAVAILABLE', 'the initial copy of the tenant database took too long');
      await sleep(POLL_MS * 5);
    }
    // Close to the source before blocking, so that the block is short: while the target needs more than a
    // moment to apply what the source committed meanwhile, measure again (a few times at most).
    for (let round = 0; round < PRE_BLOCK_ROUNDS; round++) {
      const started = performance.now();
      await this.#waitForFence(source.client, target.client, fenceTable, deadline);
      if (performance.now() - started < CLOSE_ENOUGH_MS) break;
    }
    step('move:copied', { tenantId: tenant.id, databaseName: tenant.databaseName, server: move.target });
    await block();
    await this.#waitForFence(source.client, target.client, fenceTable, deadline);
  }

  /**
   * Writes a fence row into the move's fence table on the source and waits until the target applied it:
   * logical replication applies transactions in commit order, so the target then holds every write the
   * source committed before it. (The slot's confirmed position is no proof: it can pass changes the target
   * received and has not applied yet.)
   */
  async #waitForFence(source: pg.ClientBase, target: pg.ClientBase, table: string, deadline: number): Promise<void> {
    const token = randomUUID();
    // Flushed at once, and all the source's WAL before it (a server at synchronous_commit = off would leave it
    // to the WAL writer, up to wal_writer_delay later): a walsender sends only flushed WAL.
    await source.query(`SET synchronous_commit = on`);
    await source.query(`INSERT INTO ${table} (token) VALUES ($1)`, [token]);
    while ((await target.query(`SELECT 1 FROM ${table} WHERE token = $1`, [token])).rowCount === 0) {
      if (Date.now() > deadline) throw new TenantDbError('UNAVAILABLE', 'the target did not catch up with the source in time');
      await sleep(2);
    }
  }

  /** Disables and drops the subscription in the target database, leaving its slot on the source (see #dropSlot). */
  async #dropSubscription(target: pg.ClientBase, name: string): Promise<void> {
    const { rowCount } = await target.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [name]);
    if (rowCount !== 1) return;
    const sub = quoteIdent(name);
    // Its commit flushes the target's WAL, and with it every change the subscription applied (whatever the
    // server's synchronous_commit): the switch that follows never points at writes a crash could lose.
    await target.query('SET synchronous_commit = on');
    await target.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
    await target.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
    await target.query(`DROP SUBSCRIPTION ${sub}`);
  }

  /** Drops the move's replication slot on the source, ending the walsender that may still hold it. */
  async #dropSlot(move: MoveRow): Promise<void> {
    const deadline = Date.now() + SLOT_TIMEOUT_MS;
    for (;;) {
      const { rows } = await this.#admin.query<{ pid: number | null }>(
        move.source,
        'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
        [move.database_name],
      );
      if (rows.length === 0) return;
      try {
        if (rows[0]!.pid !== null) await this.#admin.query(move.source, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await this.#admin.query(move.source, 'SELECT pg_drop_replication_slot($1)', [move.database_name]);
        return;
      } catch (err) {
        // Still active (its walsender not gone yet), or dropped meanwhile: look again.
        if (Date.now() > deadline) throw err;
        await sleep(POLL_MS);
      }
    }
  }

  /** The registry names the target, and the move's row says so, in one transaction. */
  async #switch(move: MoveRow): Promise<Tenant> {
    const tenant = await this.#ctx.mainTransaction(async (client) => {
      const { rows } = await client.query<TenantRow>(
        `UPDATE tenants SET server = $3, updated_at = now() WHERE id = $1 AND server = $2 AND status = 'ready' RETURNING ${tenantColumns()}`,
        [move.tenant_id, move.source, move.target],
      );
      // Dropped (or moved by hand) meanwhile: not a tenant to switch any more.
      if (!rows[0]) throw new TenantDbError('CONFLICT', 'the tenant was dropped or changed while it was being moved');
      await client.query(`UPDATE tenant_moves SET phase = 'switched', updated_at = now() WHERE tenant_id = $1`, [move.tenant_id]);
      return toTenant(rows[0]);
    });
    this.#tenants.changed(move.tenant_id);
    return tenant;
  }

  /** After the switch: this process's pools of the old database end, its slot and the database go, then the move's row. */
  async #cleanUp(move: MoveRow, tenant: Pick<Tenant, 'id' | 'databaseName'>): Promise<void> {
    const old = { id: tenant.id, server: move.source, databaseName: tenant.databaseName };
    await this.#tenants.endPool(this.#tenants.poolKey(old));
    await this.#tenants.endPool(this.#tenants.adminPoolKey(old));
    if (move.method === 'logical') await this.#dropSlot(move);
    await this.#admin.dropDatabase(move.source, tenant.databaseName);
    if (this.#ctx.options.tenantRoles) await this.#admin.dropRole(move.source, tenant.databaseName);
    await this.#ctx.main.query(`DELETE FROM tenant_moves WHERE tenant_id = $1 AND phase = 'switched'`, [tenant.id]);
    step('move:cleaned', { tenantId: tenant.id, databaseName: tenant.databaseName, server: move.target });
  }

  /**
   * Undoes a move that stopped before its switch: the subscription, the target database (under its move name,
   * or under the tenant's once `renamed`), the slot and the publication go, the source accepts connections
   * again, the row goes. Never throws: what it cannot undo (a server down) stays for repair().
   */
  async #undo(move: MoveRow, databaseName: string, renamed: boolean): Promise<void> {
    const onTarget = renamed ? databaseName : move.database_name;
    if (move.method === 'logical' && (await this.#admin.databaseExists(move.target, onTarget))) {
      const target = await this.#open(move.target, onTarget);
      try {
        await this.#dropSubscription(target.client, move.database_name);
      } finally {
        await target.release();
      }
    }
    await this.#admin.dropDatabase(move.target, onTarget);
    // The tenant's role on the target was the move's (the tenant's database did not exist there).
    if (this.#ctx.options.tenantRoles) await this.#admin.dropRole(move.target, databaseName);
    if (move.method === 'logical') await this.#dropSlot(move);
    await this.#admin.query(move.source, `ALTER DATABASE ${quoteDatabaseName(databaseName)} WITH ALLOW_CONNECTIONS true`);
    if (move.method === 'logical') {
      const source = await this.#open(move.source, databaseName);
      try {
        await source.client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(move.database_name)}; DROP TABLE IF EXISTS ${fenceTableOf(move)}`);
      } finally {
        await source.release();
      }
    }
    await this.#ctx.main.query('DELETE FROM tenant_moves WHERE tenant_id = $1', [move.tenant_id]);
  }

  /** {@link #undo} after a failure in this process (unless the switch may have happened: then repair decides). */
  async #undoAfterFailure(tenant: Tenant, to: string, row: MoveRow | undefined, renamed: boolean): Promise<void> {
    try {
      if (row) {
        // A switch whose COMMIT was sent and not answered may have happened: undoing it would lose writes.
        const { rows } = await this.#ctx.main.query<{ server: string }>('SELECT server FROM tenants WHERE id = $1', [tenant.id]);
        if (rows[0]?.server === to) return;
        await this.#undo(row, tenant.databaseName, renamed);
      }
    } catch (err) {
      this.#ctx.logger.warn(
        { tenantId: tenant.id, err: asTenantDbError(err).message },
        'a failed move could not be undone yet; repair() (or init()) finishes undoing it',
      );
    } finally {
      this.#gate.unblock(tenant.id);
    }
  }

  /** Finishes (after the switch) or undoes (before it) the moves whose process died. Never throws half way. */
  async repair(): Promise<MoveRepairResult> {
    const result: MoveRepairResult = { finished: [], undone: [], failed: [] };
    const { rows } = await this.#ctx.main.query<{ tenant_id: string }>('SELECT tenant_id FROM tenant_moves ORDER BY started_at');
    for (const { tenant_id: id } of rows) {
      try {
        const lock = await this.#ctx.locks.tryHold(moveLock(id));
        if (!lock) continue; // its mover is still at work
        try {
          const outcome = await this.#repairOne(id);
          if (outcome) result[outcome].push(id);
        } finally {
          await lock.release();
        }
      } catch (err) {
        const error = asTenantDbError(err);
        result.failed.push({ tenantId: id, error });
        this.#ctx.logger.warn({ tenantId: id, err: error.message }, 'could not repair a tenant move left half way');
      }
    }
    return result;
  }

  async #repairOne(id: string): Promise<'finished' | 'undone' | undefined> {
    const { rows } = await this.#ctx.main.query<MoveRow & { server: string; db: string }>(
      `SELECT m.tenant_id, m.source, m.target, m.database_name, m.method, m.phase, t.server, t.database_name AS db
         FROM tenant_moves m JOIN tenants t ON t.id = m.tenant_id WHERE m.tenant_id = $1`,
      [id],
    );
    const move = rows[0];
    if (!move) return undefined;
    const tenant = { id, databaseName: move.db };
    if (move.phase === 'switched' || move.server === move.target) {
      await this.#cleanUp(move, tenant);
      this.#tenants.changed(id);
      return 'finished';
    }
    if (move.phase === 'renaming' && !(await this.#admin.databaseExists(move.target, move.database_name))) {
      if (await this.#admin.databaseExists(move.target, move.db)) {
        // Renamed, then died before the switch: the target is whole (writes were blocked), so switch.
        await this.#switch(move);
        await this.#cleanUp(move, tenant);
        return 'finished';
      }
      await this.#undo(move, move.db, false);
    } else {
      await this.#undo(move, move.db, false);
    }
    this.#tenants.changed(id);
    return 'undone';
  }

  #step(name: StepName, tenant: Tenant, to: string): void {
    step(name, { tenantId: tenant.id, databaseName: tenant.databaseName, server: to });
  }
}

/** A move's failure as the caller sees it: the library's own errors as they are, else UNAVAILABLE (a server unreachable) or DATABASE. */
function moveError(err: unknown): Error {
  if (err instanceof TenantDbError) return err;
  if (isTransientError(err)) return new TenantDbError('UNAVAILABLE', 'the move failed: a server could not be reached; the tenant stays where it was', { cause: err });
  return asTenantDbError(err);
}
