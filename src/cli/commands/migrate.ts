import type { FleetRun, FleetRunInfo, FleetRunOptions, FleetSelection } from '../../index.js';
import type { CliArgs } from '../args.js';
import { EXIT_CODES } from '../cli-error.js';
import type { Command, CommandContext } from '../command-context.js';
import { errorJson, errorLine, plural } from '../output.js';

/** The tenants a fleet command selects: `--tenant`, `--server`, `--label`, `--created-before`, `--created-after`. */
export function selectionOf(args: CliArgs): FleetSelection {
  return {
    ...(args.tenants.length > 0 && { tenants: args.tenants }),
    ...(args.server !== undefined && { server: args.server }),
    ...(args.labels !== undefined && { labels: args.labels }),
    ...(args.createdBefore !== undefined && { createdBefore: args.createdBefore }),
    ...(args.createdAfter !== undefined && { createdAfter: args.createdAfter }),
  };
}

/** How a fleet command runs: `--concurrency`, `--canary`/`--waves`, `--max-failures`, `--max-failure-rate`. */
export function stagingOf(args: CliArgs): FleetRunOptions {
  return {
    ...(args.concurrency !== undefined && { concurrency: args.concurrency }),
    ...(args.waves !== undefined && { waves: args.waves }),
    ...(args.maxFailures !== undefined && { maxFailures: args.maxFailures }),
    ...(args.maxFailureRate !== undefined && { maxFailureRate: args.maxFailureRate }),
  };
}

/** The JSON form of a fleet run: the run as the library returns it, errors as `{ code, message, cause? }`. */
export function runJson(run: FleetRun, scrub: (text: string) => string): unknown {
  return {
    ...run,
    failed: run.failed.map((f) => ({ tenantId: f.tenantId, migration: f.migration, error: errorJson(f.error, scrub) })),
    tenants: run.tenants.map(({ error, ...t }) => (error ? { ...t, error: errorJson(error, scrub) } : t)),
  };
}

/** A run's status as printed: `completed`, or `halted (maxFailures)` with what halted it. */
export function statusText(run: Pick<FleetRunInfo, 'status' | 'haltedBy'>): string {
  return run.status === 'halted' ? `halted (${run.haltedBy ?? '?'})` : run.status;
}

/** `run ID (up): halted (maxFailures); 5 tenants: 1 succeeded, 1 failed, 0 skipped, 3 pending`. */
export function runHeadline(run: FleetRun): string {
  const { counts } = run;
  return (
    `run ${run.id} (${run.kind}): ${statusText(run)}; ${plural(counts.total, 'tenant')}: ${counts.succeeded} succeeded, ` +
    `${counts.failed} failed, ${counts.skipped} skipped, ${counts.pending} pending`
  );
}

/** What to do about a run that did not complete, for stderr. */
function whatNext(run: FleetRun): string {
  if (run.status === 'halted') {
    return `run ${run.id} ${statusText(run)} with ${plural(run.counts.pending, 'tenant')} pending: fix what failed, then "tenantdb migrate resume ${run.id}"`;
  }
  const retry = run.kind === 'up' ? `, then "tenantdb migrate tenants --only-failed ${run.id}"` : '';
  return `run ${run.id} ${run.status}: ${plural(run.counts.failed, 'tenant')} failed${retry ? `; fix them${retry}` : ''}`;
}

/**
 * Carries out a fleet run (what `start` begins, given the progress callbacks) with its progress per wave
 * and per tenant on stderr, prints its summary, and says why when it did not complete (exit code 1).
 */
export async function carryRun(
  cx: CommandContext,
  start: (callbacks: Pick<FleetRunOptions, 'onProgress' | 'onWave'>) => Promise<FleetRun>,
): Promise<{ run: FleetRun; exitCode: number }> {
  const progress = cx.progress('tenants');
  let run: FleetRun;
  try {
    run = await start(progress ? { onProgress: (e) => progress.onProgress(e), onWave: (e) => progress.onWave(e) } : {});
  } finally {
    progress?.finish();
  }
  cx.print(runHeadline(run));
  for (const f of run.failed) {
    cx.print(`  FAILED ${f.tenantId}${f.migration ? ` at ${f.migration}` : ''}: ${errorLine(f.error, cx.scrub)}`);
  }
  if (run.status === 'completed') return { run, exitCode: EXIT_CODES.OK };
  cx.warn(whatNext(run));
  return { run, exitCode: EXIT_CODES.FAILED };
}

/**
 * `tenantdb migrate [main|tenants] [selection, waves, stop rules] [--only-failed RUN]`: the main database,
 * then the selected tenants (every one by default) as a recorded run. Exit code 1 when the run did not
 * complete (a tenant failed, or a stop rule halted it).
 */
export const migrateCommand: Command = async (cx) => {
  const { args, platform } = cx;
  const target = args.operands[0];
  const json: { main?: { applied: string[] }; tenants?: unknown } = {};
  let exitCode: number = EXIT_CODES.OK;
  if (target !== 'tenants') {
    const applied = (await platform.migrations.main.up()).map((m) => m.name);
    json.main = { applied };
    cx.print(applied.length > 0 ? `main: applied ${applied.join(', ')}` : 'main: up to date');
  }
  if (target !== 'main') {
    const only = args.onlyFailed === undefined ? {} : { only: 'failed' as const, of: args.onlyFailed };
    const carried = await carryRun(cx, (callbacks) =>
      platform.migrations.tenants.up({ ...selectionOf(args), ...stagingOf(args), ...only, ...callbacks }),
    );
    json.tenants = runJson(carried.run, cx.scrub);
    exitCode = carried.exitCode;
  }
  return { json, exitCode };
};
