/**
 * Benchmark 4, fleet migration: one new migration over 1,000 tenants at concurrency 1, 4, 8 and 16,
 * in tenants per second, each level's speed-up against concurrency 1. Concurrency 1 runs first and
 * last and its mean is the baseline, so a drift in load weighs on both ends. Each round is a new platform
 * whose tenant migrations folder holds one more file; its template is rebuilt by `init()`, outside the timing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchEnv } from './bench-env.js';
import { mean, now } from './measure.js';
import { fmt, type BenchResult, type ResultRow } from './report.js';

const LEVELS = [1, 4, 8, 16];
/** "Close to linear": at least this share of the ideal speed-up, min(concurrency, cores). */
const LINEAR_SHARE = 0.8;

/** Runs benchmark 4 (run it after the others: each round rebuilds the tenant template). */
export async function runFleetMigration(env: BenchEnv): Promise<BenchResult> {
  const count = env.quick ? 100 : 1_000;
  await env.tenants(count);
  const total = (await env.main.tenants.list({ includeInactive: true })).length;
  // The server's cores: the embedded server runs on this machine (an env server is assumed to, too).
  const cores = os.cpus().length;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-bench-migrations-'));
  const rounds: Array<{ concurrency: number; ms: number; perSecond: number; succeeded: number; failed: number }> = [];
  try {
    const order = [...LEVELS, 1];
    for (const [round, concurrency] of order.entries()) {
      const name = `${String(100 + round).padStart(4, '0')}_bench_r${round}_c${concurrency}`;
      await writeFile(
        path.join(dir, `${name}.sql`),
        `CREATE TABLE bench_r${round} (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');\n` +
          `CREATE INDEX bench_r${round}_note_idx ON bench_r${round} (note);\n`,
      );
      const platform = env.platform({
        tenantMigrations: [dir],
        pool: { maxConnections: Math.max(20, concurrency), maxConnectionsPerTenant: 1 },
      });
      try {
        await platform.init();
        const t0 = now();
        const result = await platform.migrations.tenants.up({ concurrency });
        const ms = now() - t0;
        if (result.failed.length > 0) {
          env.log(`  fleet migration c=${concurrency}: ${result.failed.length} failed, first: ${result.failed[0]!.error.message}`);
        }
        rounds.push({
          concurrency,
          ms,
          perSecond: result.succeeded.length / (ms / 1000),
          succeeded: result.succeeded.length,
          failed: result.failed.length,
        });
        env.log(`  fleet migration c=${concurrency}: ${fmt(result.succeeded.length / (ms / 1000), 1)} tenants/s`);
      } finally {
        await platform.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const base = mean(rounds.filter((r) => r.concurrency === 1).map((r) => r.perSecond));
  const rows: ResultRow[] = LEVELS.map((concurrency) => {
    const r = rounds.find((x) => x.concurrency === concurrency)!;
    const speedUp = r.perSecond / base;
    const wanted = LINEAR_SHARE * Math.min(concurrency, cores);
    return {
      figure: `1 migration over ${fmt(total)} tenants, concurrency ${concurrency}: tenants/s`,
      ours: `${fmt(r.perSecond, 1)} /s`,
      baseline: `${fmt(base, 1)} /s (c=1)`,
      ratio: speedUp,
      ratioLabel: '× speed-up',
      goal: concurrency === 1 ? '' : `≥ ${wanted.toFixed(2)} (${LINEAR_SHARE} × min(c, ${cores} cores))`,
      met: concurrency === 1 ? null : speedUp >= wanted,
    };
  });
  const failed = rounds.reduce((n, r) => n + r.failed, 0);
  return {
    id: 'fleet',
    title: 'Fleet migration',
    rows,
    details: { tenants: total, cores, rounds, baselinePerSecond: base },
    notes: failed ? [`fleet migration: ${failed} tenant migrations failed (see results.json)`] : [],
  };
}
