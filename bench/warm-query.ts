/**
 * Benchmark 1, warm query: `withTenant(t, ctx => ctx.query('select 1'))` against `pg.Pool.query` on
 * the same tenant database, same pool size, 8 at a time, both warmed up first and then alternated.
 */
import pg from 'pg';
import type { BenchEnv } from './bench-env.js';
import { alternate, median, runConcurrent } from './measure.js';
import { fmt, type BenchResult } from './report.js';

const CONCURRENCY = 8;
const POOL_SIZE = 8;
// Issue 11: at most 1.05 × on Node 24; 1.10 × on older Node, whose AsyncLocalStorage pays a hook on every promise.
const GOAL = Number(process.versions.node.split('.')[0]) >= 24 ? 1.05 : 1.1;

/** Runs benchmark 1. */
export async function runWarmQuery(env: BenchEnv): Promise<BenchResult> {
  const queries = env.quick ? 2_000 : 10_000;
  const pairs = env.quick ? 3 : 8;
  const [tenant] = await env.tenants(1);
  const platform = env.platform({ pool: { maxConnectionsPerTenant: POOL_SIZE } });
  await platform.init();
  const raw = new pg.Pool({ connectionString: env.dbUrl(tenant!.databaseName), max: POOL_SIZE });
  raw.on('error', () => {});
  try {
    const ours = (): Promise<number> =>
      runConcurrent(queries, CONCURRENCY, () => platform.withTenant(tenant!.id, (ctx) => ctx.query('select 1')));
    const base = (): Promise<number> => runConcurrent(queries, CONCURRENCY, () => raw.query('select 1'));

    await alternate(2, ours, base); // opens every connection on both sides, warms the JIT
    const { a, b } = await alternate(pairs, ours, base);
    const ratios = a.map((ms, i) => ms / b[i]!);
    const timeRatio = median(ratios);
    const oursOps = median(a.map((ms) => queries / (ms / 1000)));
    const baseOps = median(b.map((ms) => queries / (ms / 1000)));
    return {
      id: 'warm',
      title: 'Warm query',
      rows: [
        {
          figure: `withTenant + ctx.query vs pg.Pool.query, pool ${POOL_SIZE}, concurrency ${CONCURRENCY}`,
          ours: `${fmt(oursOps)} q/s`,
          baseline: `${fmt(baseOps)} q/s`,
          ratio: timeRatio,
          ratioLabel: '× time',
          goal: `≤ ${GOAL.toFixed(2)} × time`,
          met: timeRatio <= GOAL,
        },
      ],
      details: {
        queriesPerRound: queries,
        pairs,
        concurrency: CONCURRENCY,
        poolSize: POOL_SIZE,
        oursMs: a,
        baselineMs: b,
        timeRatios: ratios,
        poolStats: platform.stats(),
      },
      notes: [],
    };
  } finally {
    await raw.end().catch(() => {});
    await platform.close();
  }
}
