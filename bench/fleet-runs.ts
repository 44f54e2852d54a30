/**
 * Benchmark "runs", fleet runs as recorded: one new migration over the fleet with waves (5, '10%', the rest),
 * as `platform.migrations.tenants.up({ waves })` runs it, reporting
 * (a) the speed-up of each concurrency against concurrency 1, and
 * (b) what recording the run costs (`migration_runs` / `migration_run_tenants` in the main database, written
 *     by src/migrations/fleet-run-records.ts) against the same run unrecorded (the platform's internal
 *     `Symbol.for('@org/tenantdb/bench:record-runs')` option, not public API). Goal: under 5% of the time.
 * Concurrency 1 runs once, recorded; the overhead is measured at one concurrency (the default, 4) in pairs of
 * a recorded and an unrecorded run, alternating which goes first (AB, BA, …); each pair's times are compared
 * with each other and the median of the pairs reported, so that a drift in load weighs on both sides. Each round is a new platform whose tenant migrations folder holds one more file;
 * its template is rebuilt by `init()`, outside the timing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PlatformOptions } from '../src/index.js';
import type { BenchEnv } from './bench-env.js';
import { median, now, settle } from './measure.js';
import { fmt, type BenchResult, type ResultRow } from './report.js';

/** The waves of every round: a canary of 5, then a tenth, then the rest. */
const WAVES = [5, '10%', '100%'] as const;
/** The recording overhead's goal: at most this share of the unrecorded run's time. */
const OVERHEAD_GOAL = 0.05;
/** The platform option that turns recording off (read by createPlatform; see src/platform/platform.ts). */
const RECORD_RUNS = Symbol.for('@org/tenantdb/bench:record-runs');

/** How big the benchmark is. */
export interface FleetRunsSizes {
  /** Tenants in the fleet (all of them are migrated each round). */
  tenants: number;
  /** Pairs of rounds, recorded and unrecorded, at `overheadAt`. */
  pairs: number;
  /** The concurrency the recording overhead is measured at (the default of `up`: 4). */
  overheadAt: number;
  /** The concurrencies whose speed-up against concurrency 1 is reported (recorded runs). */
  levels: number[];
}

/** The sizes of `npm run bench` (`--quick`: a smoke run); `npm run bench:fleet` takes its own. */
export function fleetRunsSizes(quick: boolean): FleetRunsSizes {
  return { tenants: quick ? 100 : 1_000, pairs: quick ? 1 : 2, overheadAt: 4, levels: [4] };
}

interface Round {
  pair: number;
  concurrency: number;
  recorded: boolean;
  ms: number;
  perSecond: number;
  succeeded: number;
  failed: number;
  status: string;
}

const spread = (values: number[]): string => `${fmt(Math.min(...values) * 100, 1)} … ${fmt(Math.max(...values) * 100, 1)}%`;

/** Runs benchmark "runs" (after the others: each round rebuilds the tenant template). */
export async function runFleetRuns(env: BenchEnv, sizes: FleetRunsSizes = fleetRunsSizes(env.quick)): Promise<BenchResult> {
  await env.tenants(sizes.tenants);
  const total = (await env.main.tenants.list({ includeInactive: true })).length;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-bench-runs-'));
  const rounds: Round[] = [];
  let round = 0;
  const once = async (pair: number, concurrency: number, recorded: boolean): Promise<Round> => {
    const name = `${String(300 + round).padStart(4, '0')}_bench_runs_r${round}`;
    round++;
    await writeFile(
      path.join(dir, `${name}.sql`),
      `CREATE TABLE ${name.slice(5)} (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');\n` +
        `CREATE INDEX ${name.slice(5)}_note_idx ON ${name.slice(5)} (note);\n`,
    );
    const platform = env.platform({
      tenantMigrations: [dir],
      pool: { maxConnections: Math.max(20, concurrency), maxConnectionsPerTenant: 1 },
      ...(!recorded && { [RECORD_RUNS]: false }),
    } as Partial<PlatformOptions>);
    try {
      await platform.init();
      await settle();
      const t0 = now();
      const run = await platform.migrations.tenants.up({ concurrency, waves: [...WAVES] });
      const ms = now() - t0;
      if (run.failed.length > 0) {
        env.log(`  runs c=${concurrency}: ${run.failed.length} failed, first: ${run.failed[0]!.error.message}`);
      }
      const r: Round = {
        pair,
        concurrency,
        recorded,
        ms,
        perSecond: run.succeeded.length / (ms / 1000),
        succeeded: run.succeeded.length,
        failed: run.failed.length,
        status: run.status,
      };
      rounds.push(r);
      env.log(`  runs c=${concurrency} ${recorded ? 'recorded  ' : 'unrecorded'}: ${fmt(ms / 1000, 2)} s, ${fmt(r.perSecond, 1)} tenants/s (${run.status})`);
      return r;
    } finally {
      await platform.close();
    }
  };
  try {
    // Concurrency 1 (recorded, the speed-ups' baseline) first; then the pairs, alternating which side goes
    // first (AB, BA, …); then the other levels, recorded, once each.
    await once(-1, 1, true);
    for (let pair = 0; pair < sizes.pairs; pair++) {
      await once(pair, sizes.overheadAt, pair % 2 === 0);
      await once(pair, sizes.overheadAt, pair % 2 !== 0);
    }
    for (const concurrency of new Set(sizes.levels)) {
      if (concurrency !== 1 && concurrency !== sizes.overheadAt) await once(-1, concurrency, true);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const base = rounds.find((r) => r.concurrency === 1)!.perSecond;
  const recordedAt = (concurrency: number): Round[] => rounds.filter((r) => r.recorded && r.concurrency === concurrency);
  const wavesText = `waves (5, 10%, rest) over ${fmt(total)} tenants`;
  const rows: ResultRow[] = [];
  const levels = [...new Set([...sizes.levels, sizes.overheadAt])].filter((c) => c !== 1).sort((a, b) => a - b);
  const speedUps: Record<string, number> = {};
  for (const concurrency of levels) {
    const rate = median(recordedAt(concurrency).map((r) => r.perSecond));
    speedUps[concurrency] = rate / base;
    rows.push({
      figure: `(a) 1 migration, ${wavesText}, recorded, concurrency ${concurrency}: tenants/s`,
      ours: `${fmt(rate, 1)} /s`,
      baseline: `${fmt(base, 1)} /s (c=1)`,
      ratio: rate / base,
      ratioLabel: '× speed-up',
      goal: '',
      met: null,
    });
  }
  // Each pair's recorded time over its unrecorded time, less 1.
  const pairs = Array.from({ length: sizes.pairs }, (_, p) => rounds.filter((r) => r.pair === p));
  const overheads = pairs.map((two) => two.find((r) => r.recorded)!.ms / two.find((r) => !r.recorded)!.ms - 1);
  const overhead = median(overheads);
  rows.push({
    figure:
      `(b) the same, concurrency ${sizes.overheadAt}: recorded vs unrecorded run, wall time ` +
      `(${sizes.pairs} pair${sizes.pairs === 1 ? '' : 's'}, overhead per pair ${spread(overheads)})`,
    ours: `${fmt(median(pairs.map((two) => two.find((r) => r.recorded)!.ms)) / 1000, 2)} s`,
    baseline: `${fmt(median(pairs.map((two) => two.find((r) => !r.recorded)!.ms)) / 1000, 2)} s`,
    ratio: 1 + overhead,
    ratioLabel: '× time',
    goal: `≤ ${1 + OVERHEAD_GOAL} × time`,
    met: overhead <= OVERHEAD_GOAL,
  });
  const failed = rounds.reduce((n, r) => n + r.failed, 0);
  const notes = failed ? [`fleet runs: ${failed} tenant migrations failed (see results.json)`] : [];
  if (sizes.pairs < 3) {
    notes.push(`fleet runs: ${sizes.pairs} pair(s) per concurrency; \`npm run bench:fleet\` runs more for a steadier overhead figure`);
  }
  return {
    id: 'runs',
    title: 'Fleet runs',
    rows,
    details: { tenants: total, waves: WAVES, sizes, rounds, baselinePerSecond: base, speedUps, overheads, overhead },
    notes,
  };
}
