import type { FleetRun, FleetRunInfo, FleetRunTenant, TenantMigrationStatus } from '../../index.js';
import { assignWaves } from '../../migrations/fleet-plan.js';
import { EXIT_CODES } from '../cli-error.js';
import type { Command, CommandContext } from '../command-context.js';
import { errorJson, errorLine, formatTable, plural, shortDate } from '../output.js';
import { carryRun, runHeadline, runJson, selectionOf, stagingOf, statusText } from './migrate.js';

/** At most this many tenants named on one line of the human plan; the rest are counted. */
const NAMES_PER_LINE = 10;

/** `a, b, c … and 7 more`. */
function names(list: string[]): string {
  const shown = list.slice(0, NAMES_PER_LINE).join(', ');
  return list.length > NAMES_PER_LINE ? `${shown} … and ${list.length - NAMES_PER_LINE} more` : shown;
}

/** A tenant of a plan: its status row and the wave a run would put it in. */
interface Planned {
  tenantId: string;
  databaseName: string;
  server: string;
  wave: number;
}

/**
 * `tenantdb migrate plan [selection] [--canary N] [--waves LIST]`: a dry run. The selected tenants grouped
 * by the migrations they have pending, and the waves a run with the same flags would have. Changes nothing;
 * exit code 1 when some tenant's migrations could not be read.
 */
export const migratePlanCommand: Command = async (cx) => {
  const { args, platform, print, scrub } = cx;
  const rows: TenantMigrationStatus[] = await platform.migrations.tenants.status(selectionOf(args));
  const waveOf = assignWaves(rows.length, args.waves);
  const planned = rows.map((r, i): Planned & { row: TenantMigrationStatus } => ({
    tenantId: r.tenantId,
    databaseName: r.databaseName,
    server: r.server,
    wave: waveOf[i]!,
    row: r,
  }));
  const groups = new Map<string, { pending: string[]; tenants: Planned[] }>();
  for (const { row, ...tenant } of planned.filter((p) => p.row.error === undefined)) {
    const key = row.pending.join('\n');
    const group = groups.get(key) ?? { pending: row.pending, tenants: [] };
    group.tenants.push(tenant);
    groups.set(key, group);
  }
  const unread = planned.flatMap(({ row, ...tenant }) =>
    row.error ? [{ ...tenant, reachable: row.reachable, error: errorJson(row.error, scrub) }] : [],
  );
  const waves = [...new Set(waveOf)].map((wave) => ({ wave, tenants: planned.filter((p) => p.wave === wave).map((p) => p.tenantId) }));
  const behind = rows.filter((r) => r.pending.length > 0).length;

  const read = unread.length > 0 ? `, ${unread.length} not read` : '';
  print(`plan: ${plural(rows.length, 'tenant')}, ${behind} with migrations pending${read}; a run would have ${plural(waves.length, 'wave')}`);
  const label = (p: Planned): string => p.databaseName || p.tenantId;
  for (const group of groups.values()) {
    const what = group.pending.length > 0 ? `pending ${group.pending.join(', ')}` : 'up to date';
    print(`  ${what}: ${plural(group.tenants.length, 'tenant')}`);
    print(`    ${names(group.tenants.map(label))}`);
  }
  for (const u of unread) print(`  not read: ${label(u)}: ${u.reachable ? `${u.error.code} ${u.error.message}` : 'unreachable'}`);
  for (const w of waves) {
    const databases = planned.filter((p) => p.wave === w.wave).map(label);
    print(`  wave ${w.wave}: ${plural(databases.length, 'tenant')}: ${names(databases)}`);
  }
  print('nothing was changed (a dry run)');
  const json = { total: rows.length, pending: behind, groups: [...groups.values()], waves, unread };
  return { json, ...(unread.length > 0 && { exitCode: EXIT_CODES.FAILED }) };
};

/** `tenantdb migrate resume RUN [--concurrency N]`: carries on a halted or dead run. */
export const migrateResumeCommand: Command = async (cx) => {
  const { args, platform } = cx;
  const concurrency = args.concurrency === undefined ? {} : { concurrency: args.concurrency };
  const { run, exitCode } = await carryRun(cx, (callbacks) => platform.migrations.tenants.resume(args.operands[0]!, { ...concurrency, ...callbacks }));
  return { json: { run: runJson(run, cx.scrub) }, exitCode };
};

/** `tenantdb migrate down --to NAME [selection, waves, stop rules]`: reverts the selected tenants to before NAME. */
export const migrateDownCommand: Command = async (cx) => {
  const { args, platform } = cx;
  const to = args.to === '0' ? 0 : args.to!;
  const { run, exitCode } = await carryRun(cx, (callbacks) =>
    platform.migrations.tenants.down({ to, ...selectionOf(args), ...stagingOf(args), ...callbacks }),
  );
  return { json: { run: runJson(run, cx.scrub) }, exitCode };
};

/** `tenantdb migrate revert RUN [waves, stop rules]`: takes back what run RUN applied. */
export const migrateRevertCommand: Command = async (cx) => {
  const { args, platform } = cx;
  const { run, exitCode } = await carryRun(cx, (callbacks) =>
    platform.migrations.tenants.revert(args.operands[0]!, { ...stagingOf(args), ...callbacks }),
  );
  return { json: { run: runJson(run, cx.scrub) }, exitCode };
};

/** The options a run was started with, as `waves 5,10%,100%; maxFailures 1; server eu1`. */
function optionsLine(run: FleetRunInfo): string {
  const entries = Object.entries(run.options).map(([key, value]) =>
    `${key} ${Array.isArray(value) ? value.join(',') : typeof value === 'object' ? JSON.stringify(value) : String(value)}`,
  );
  return entries.join('; ');
}

function printRun(cx: CommandContext, run: FleetRun): void {
  const { print, scrub } = cx;
  print(runHeadline(run));
  print(`  started ${shortDate(run.startedAt)} by ${run.host} pid ${run.pid}; ${run.finishedAt ? `ended ${shortDate(run.finishedAt)}` : 'not ended'}${run.live ? '; live' : ''}`);
  for (const r of run.resumes) print(`  resumed ${shortDate(r.at)} by ${r.host} pid ${r.pid}`);
  print(`  options: ${optionsLine(run)}`);
  print(`  migrations: ${run.migrations.join(', ') || '-'}`);
  const cell = (t: FleetRunTenant): string =>
    t.error ? `${t.migration ? `${t.migration}: ` : ''}${errorLine(t.error, scrub)}` : t.applied.join(', ') || '-';
  const rows = run.tenants.map((t) => [
    t.tenantId,
    t.databaseName || '-',
    String(t.wave),
    t.outcome,
    t.durationMs === null ? '-' : `${t.durationMs} ms`,
    cell(t),
  ]);
  for (const line of formatTable(['tenant', 'database', 'wave', 'outcome', 'took', 'applied / error'], rows)) print(`  ${line}`);
}

/**
 * `tenantdb runs [--limit N]`: the newest fleet runs with their counts; `tenantdb runs RUN`: one run with
 * every tenant's outcome.
 */
export const runsCommand: Command = async (cx) => {
  const { args, platform, print } = cx;
  const id = args.operands[0];
  if (id !== undefined) {
    const run = await platform.migrations.tenants.run(id);
    printRun(cx, run);
    return { json: { run: runJson(run, cx.scrub) } };
  }
  const runs = await platform.migrations.tenants.runs(args.limit === undefined ? {} : { limit: args.limit });
  if (runs.length === 0) print('no migration runs');
  else {
    const rows = runs.map((r) => [
      r.id,
      r.kind,
      statusText(r),
      r.live ? 'yes' : 'no',
      shortDate(r.startedAt),
      String(r.counts.total),
      String(r.counts.succeeded),
      String(r.counts.failed),
      String(r.counts.skipped),
      String(r.counts.pending),
    ]);
    const headers = ['id', 'kind', 'status', 'live', 'started', 'tenants', 'succeeded', 'failed', 'skipped', 'pending'];
    for (const line of formatTable(headers, rows)) print(line);
  }
  return { json: { runs } };
};
