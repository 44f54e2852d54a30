import type { PlatformContext } from '../core/platform-context.js';
import { TenantDbError, isTenantDbError, type TenantDbErrorCode } from '../errors.js';
import { isUuid } from '../util/uuid.js';
import type {
  FleetHaltReason,
  FleetRecordedOptions,
  FleetRun,
  FleetRunInfo,
  FleetRunKind,
  FleetRunResume,
  FleetRunStatus,
  FleetRunTenant,
  FleetTenantOutcome,
} from './types.js';

/** A migration file of a run as recorded: its name and checksum. */
export interface RecordedMigration {
  name: string;
  checksum: string;
}

/** A run as it is first written. */
export interface NewRunRecord {
  id: string;
  kind: FleetRunKind;
  host: string;
  pid: number;
  options: FleetRecordedOptions;
  migrations: RecordedMigration[];
  waves: number;
  tenants: FleetRunTenant[];
}

/** A run read back, with what resume needs beside the public shape. */
export interface StoredRun {
  run: FleetRun;
  migrations: RecordedMigration[];
  waves: number;
}

/** The advisory lock a run's live process holds (see LockSession.tryHold). */
export function runLockKey(runId: string): string {
  return `tenantdb:run:${runId}`;
}

/** Whether a session holds the lock of `run_id`: LockSession's bigint key, split as pg_locks shows it. */
const LIVE = `EXISTS (
  SELECT 1 FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
     AND l.classid::int8 = ((hashtextextended('tenantdb:run:' || r.id::text, 0) >> 32) & 4294967295)
     AND l.objid::int8 = (hashtextextended('tenantdb:run:' || r.id::text, 0) & 4294967295))`;

const INFO_COLUMNS = `r.id::text, r.kind, r.status, r.halted_by, r.host, r.pid, r.resumes, r.options, r.migrations, r.waves,
  r.started_at, r.finished_at, ${LIVE} AS live`;

interface RunRow {
  id: string;
  kind: FleetRunKind;
  status: FleetRunStatus;
  halted_by: FleetHaltReason | null;
  host: string;
  pid: number;
  resumes: Array<{ host: string; pid: number; at: string }>;
  options: FleetRecordedOptions;
  migrations: RecordedMigration[];
  waves: number;
  started_at: Date;
  finished_at: Date | null;
  live: boolean;
}

interface TenantRow {
  tenant_id: string;
  database_name: string;
  server: string | null;
  wave: number;
  outcome: FleetTenantOutcome;
  applied: string[];
  migration: string | null;
  error: { code?: string; message?: string } | null;
  duration_ms: number | null;
}

/** How an error is recorded: its code (when it is the library's) and message, never its cause. */
function errorRecord(error: Error): { code?: string; message: string } {
  return { ...(isTenantDbError(error) && { code: error.code }), message: error.message };
}

function errorOf(recorded: { code?: string; message?: string }): Error {
  const message = recorded.message ?? 'failed';
  return recorded.code ? new TenantDbError(recorded.code as TenantDbErrorCode, message) : new Error(message);
}

function infoOf(row: RunRow, counts: FleetRunInfo['counts']): FleetRunInfo {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    live: row.live,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    host: row.host,
    pid: row.pid,
    resumes: row.resumes.map((r): FleetRunResume => ({ host: r.host, pid: r.pid, at: new Date(r.at) })),
    options: row.options,
    migrations: row.migrations.map((m) => m.name),
    ...(row.halted_by !== null && { haltedBy: row.halted_by }),
    counts,
  };
}

/** The counts and the `up`-style outcome lists of `tenants`. */
export function resultOf(tenants: readonly FleetRunTenant[]): Pick<FleetRun, 'counts' | 'total' | 'succeeded' | 'failed' | 'skipped'> {
  const counts = { total: tenants.length, succeeded: 0, failed: 0, skipped: 0, pending: 0 };
  const result: Pick<FleetRun, 'total' | 'succeeded' | 'failed' | 'skipped'> = { total: tenants.length, succeeded: [], failed: [], skipped: [] };
  for (const t of tenants) {
    counts[t.outcome]++;
    if (t.outcome === 'succeeded') result.succeeded.push(t.tenantId);
    else if (t.outcome === 'skipped') result.skipped.push(t.tenantId);
    else if (t.outcome === 'failed') {
      result.failed.push({ tenantId: t.tenantId, migration: t.migration ?? null, error: t.error ?? new Error('failed') });
    }
  }
  return { counts, ...result };
}

/**
 * The record of fleet runs in the main database (`migration_runs`, `migration_run_tenants`): written as a
 * run goes, read back by `run`, `runs` and `resume`.
 * @internal
 */
export class FleetRunRecords {
  readonly #ctx: PlatformContext;

  constructor(ctx: PlatformContext) {
    this.#ctx = ctx;
  }

  /** Writes a new run and every tenant it selected, in one transaction; returns its `startedAt` as recorded. */
  async create(record: NewRunRecord): Promise<Date> {
    const t = record.tenants;
    return this.#ctx.mainTransaction(async (client) => {
      const { rows } = await client.query<{ started_at: Date }>(
        `INSERT INTO migration_runs (id, kind, status, host, pid, options, migrations, waves)
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7) RETURNING started_at`,
        [record.id, record.kind, record.host, record.pid, JSON.stringify(record.options), JSON.stringify(record.migrations), record.waves],
      );
      const startedAt = rows[0]!.started_at;
      if (t.length === 0) return startedAt;
      await client.query(
        `INSERT INTO migration_run_tenants (run_id, position, tenant_id, database_name, server, wave, outcome, error)
         SELECT $1, p - 1, tenant_id, database_name, server, wave, outcome, error
           FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::jsonb[])
                WITH ORDINALITY AS x(tenant_id, database_name, server, wave, outcome, error, p)`,
        [
          record.id,
          t.map((x) => x.tenantId),
          t.map((x) => x.databaseName),
          t.map((x) => x.server),
          t.map((x) => x.wave),
          t.map((x) => x.outcome),
          t.map((x) => (x.error ? JSON.stringify(errorRecord(x.error)) : null)),
        ],
      );
      return startedAt;
    });
  }

  /** Records the outcomes of the tenants at these positions, in one statement. */
  async finishTenants(runId: string, finished: ReadonlyArray<{ position: number; tenant: FleetRunTenant }>): Promise<void> {
    if (finished.length === 0) return;
    const t = finished.map((f) => f.tenant);
    await this.#ctx.main.query(
      `UPDATE migration_run_tenants r
          SET outcome = x.outcome, applied = x.applied, migration = x.migration, error = x.error, duration_ms = x.duration_ms
         FROM unnest($2::int[], $3::text[], $4::jsonb[], $5::text[], $6::jsonb[], $7::int[])
              AS x(position, outcome, applied, migration, error, duration_ms)
        WHERE r.run_id = $1 AND r.position = x.position`,
      [
        runId,
        finished.map((f) => f.position),
        t.map((x) => x.outcome),
        t.map((x) => JSON.stringify(x.applied)),
        t.map((x) => x.migration ?? null),
        t.map((x) => (x.error ? JSON.stringify(errorRecord(x.error)) : null)),
        t.map((x) => x.durationMs),
      ],
    );
  }

  /** Records where a run ended (or, `running`, that it goes on); returns its `finishedAt` as recorded. */
  async setStatus(runId: string, status: FleetRunStatus, haltedBy?: FleetHaltReason): Promise<Date | null> {
    const { rows } = await this.#ctx.main.query<{ finished_at: Date | null }>(
      `UPDATE migration_runs SET status = $2, halted_by = $3,
              finished_at = CASE WHEN $2 = 'running' THEN NULL ELSE now() END
        WHERE id = $1 RETURNING finished_at`,
      [runId, status, haltedBy ?? null],
    );
    return rows[0]?.finished_at ?? null;
  }

  /** Records that this process resumes the run; returns the resume as recorded. */
  async addResume(runId: string, resume: { host: string; pid: number }): Promise<FleetRunResume> {
    const { rows } = await this.#ctx.main.query<{ at: string }>(
      `UPDATE migration_runs SET status = 'running', halted_by = NULL, finished_at = NULL,
              resumes = resumes || jsonb_build_array(jsonb_build_object('host', $2::text, 'pid', $3::int, 'at', now()))
        WHERE id = $1 RETURNING resumes -> -1 ->> 'at' AS at`,
      [runId, resume.host, resume.pid],
    );
    return { ...resume, at: new Date(rows[0]!.at) };
  }

  /** A run with its tenants; NOT_FOUND when there is none (an id that is not a uuid included). */
  async read(runId: string): Promise<StoredRun> {
    if (!isUuid(runId)) throw new TenantDbError('NOT_FOUND', 'no such migration run');
    const { rows } = await this.#ctx.main.query<RunRow>(`SELECT ${INFO_COLUMNS} FROM migration_runs r WHERE r.id = $1`, [runId]);
    const row = rows[0];
    if (!row) throw new TenantDbError('NOT_FOUND', 'no such migration run');
    const { rows: tenantRows } = await this.#ctx.main.query<TenantRow>(
      `SELECT tenant_id, database_name, server, wave, outcome, applied, migration, error, duration_ms
         FROM migration_run_tenants WHERE run_id = $1 ORDER BY position`,
      [runId],
    );
    const tenants = tenantRows.map(
      (t): FleetRunTenant => ({
        tenantId: t.tenant_id,
        databaseName: t.database_name,
        server: t.server,
        wave: t.wave,
        outcome: t.outcome,
        applied: t.applied,
        ...(t.outcome === 'failed' && { migration: t.migration }),
        ...(t.error !== null && { error: errorOf(t.error) }),
        durationMs: t.duration_ms,
      }),
    );
    const { counts, ...result } = resultOf(tenants);
    return { run: { ...infoOf(row, counts), ...result, tenants }, migrations: row.migrations, waves: row.waves };
  }

  /** The newest runs first, without their tenants. */
  async list(limit: number): Promise<FleetRunInfo[]> {
    const { rows } = await this.#ctx.main.query<RunRow & { counts: FleetRunInfo['counts'] }>(
      `SELECT ${INFO_COLUMNS},
              (SELECT jsonb_build_object(
                        'total', count(*),
                        'succeeded', count(*) FILTER (WHERE outcome = 'succeeded'),
                        'failed', count(*) FILTER (WHERE outcome = 'failed'),
                        'skipped', count(*) FILTER (WHERE outcome = 'skipped'),
                        'pending', count(*) FILTER (WHERE outcome = 'pending'))
                 FROM migration_run_tenants t WHERE t.run_id = r.id) AS counts
         FROM migration_runs r ORDER BY r.started_at DESC, r.id LIMIT $1`,
      [limit],
    );
    return rows.map((row) => infoOf(row, row.counts));
  }
}
