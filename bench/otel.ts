/**
 * Benchmark "otel" (issue 15): what instrumentation costs on the warm path, `withTenant(t, ctx =>
 * ctx.query('select 1'))` as in "warm", in four configurations on the same tenant database, pools of 8, 8 at
 * a time. First "off", "default" and "pg.Pool" interleaved round by round (the order shuffled each round),
 * then "sdk" against "off" again in pairs of their own:
 *
 * - off: every instrumentation branch skipped, the code path from before it was added (an internal switch
 *   of the benchmark's, `Symbol.for('@org/tenantdb/bench:instrumentation')`, not an option);
 * - default: `@opentelemetry/api` installed but no SDK registered, nobody subscribed to the channels (what
 *   an app that does not use OpenTelemetry runs); goal: within 1% of "off";
 * - sdk: a MeterProvider and a tracer provider passed with the `telemetry` option (spans sampled and handed to
 *   a batch processor and an exporter that drops them, an AsyncLocalStorage context manager registered), informational;
 * - pg.Pool: `pg.Pool.query`, the baseline of "warm".
 *
 * Rounds of 2,000 queries, 120 of them (`TENANTDB_BENCH_OTEL_ROUNDS`; 10 with `--quick`), and a quarter as many
 * pairs for the SDK. Ratios are medians of
 * the per-round ratios against "off", of the wall time and of this process's CPU time
 * (user + system): the servers run in processes of their own, so the CPU time is the library's and the
 * driver's work alone, and other programs on the machine sway it far less than the wall time. The CPU ratio
 * is the stricter one: the servers' share of each query is left out of its denominator.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import pg from 'pg';
import type { BenchEnv } from './bench-env.js';
import { median, percentile, runConcurrent } from './measure.js';
import { fmt, type BenchResult } from './report.js';

const CONCURRENCY = 8;
const POOL_SIZE = 8;
/** The goal: the default configuration within 1% of the code without instrumentation. */
const GOAL = 1.01;
/** The platform option that skips every instrumentation branch (read by createPlatform; see src/platform/platform.ts). */
const INSTRUMENTATION = Symbol.for('@org/tenantdb/bench:instrumentation');

/** A reader nobody collects: the SDK aggregates, nothing is exported. */
class IdleReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** An exporter that drops every span at once. */
const dropping: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
};

/** `offSdk` is "off" again, paired with `sdk` in a phase of their own. */
type Config = 'off' | 'offAgain' | 'default' | 'pg' | 'offSdk' | 'sdk';
const GOAL_PHASE = ['off', 'offAgain', 'default', 'pg'] as const;

/** A small seeded PRNG (mulberry32): the same shuffles every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy of `items` (Fisher–Yates). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** Runs benchmark "otel". */
export async function runOtel(env: BenchEnv): Promise<BenchResult> {
  // Short rounds, many of them: a burst of load from other programs falls on the configurations of a round alike.
  const queries = 2_000;
  const rounds = env.quick ? 10 : Number(process.env.TENANTDB_BENCH_OTEL_ROUNDS ?? 120);
  const [tenant] = await env.tenants(1);
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] });
  const pool = { maxConnectionsPerTenant: POOL_SIZE };
  const off = env.platform({ pool, [INSTRUMENTATION]: false } as Parameters<BenchEnv['platform']>[0]);
  const platforms = {
    off,
    // A second platform with instrumentation off: "off" against it is the noise floor of two identical setups.
    offAgain: env.platform({ pool, [INSTRUMENTATION]: false } as Parameters<BenchEnv['platform']>[0]),
    default: env.platform({ pool }),
    offSdk: off,
    sdk: env.platform({ pool, telemetry: { meterProvider, tracerProvider } }),
  };
  const raw = new pg.Pool({ connectionString: env.dbUrl(tenant!.databaseName), max: POOL_SIZE });
  raw.on('error', () => {});
  try {
    for (const platform of new Set(Object.values(platforms))) await platform.init();
    const cpu: Record<Config, number[]> = { off: [], offAgain: [], default: [], pg: [], offSdk: [], sdk: [] };
    const ms: Record<Config, number[]> = { off: [], offAgain: [], default: [], pg: [], offSdk: [], sdk: [] };
    const run = async (config: Config): Promise<number> => {
      const before = process.cpuUsage();
      const wall =
        config === 'pg'
          ? await runConcurrent(queries, CONCURRENCY, () => raw.query('select 1'))
          : await runConcurrent(queries, CONCURRENCY, () => platforms[config].withTenant(tenant!.id, (ctx) => ctx.query('select 1')));
      const used = process.cpuUsage(before);
      cpu[config].push((used.user + used.system) / 1000);
      ms[config].push(wall);
      return wall;
    };
    // Every connection opened on every side, the JIT warm.
    for (let i = 0; i < 2; i++) for (const config of [...GOAL_PHASE, 'sdk'] as const) await run(config);
    for (const config of Object.keys(ms) as Config[]) ms[config].length = cpu[config].length = 0;
    // First the goal's configurations, in an order shuffled each round (no configuration always follows the
    // same one); then the SDK against "off" in pairs, so that the garbage its spans leave for the collector
    // (whose threads count in this process's CPU time) weighs on neither of the first.
    const random = seeded(15);
    for (let round = 0; round < rounds; round++) {
      for (const config of shuffled(GOAL_PHASE, random)) await run(config);
    }
    for (let round = 0; round < Math.max(4, rounds / 4); round++) {
      for (const config of round % 2 ? (['sdk', 'offSdk'] as const) : (['offSdk', 'sdk'] as const)) await run(config);
    }
    const ratioOf = (samples: Record<Config, number[]>, config: Config, against: Config): number =>
      median(samples[config].map((t, i) => t / samples[against][i]!));
    const ratio = (config: Config, against: Config): number => ratioOf(ms, config, against);
    const cpuRatio = (config: Config, against: Config): string =>
      `wall ${fmt(ratio(config, against), 3)} ×, CPU time ${fmt(ratioOf(cpu, config, against), 3)} ×`;
    const ops = (config: Config): string => `${fmt(median(ms[config].map((t) => queries / (t / 1000))))} q/s`;
    const defaultRatio = ratio('default', 'off');
    // The fastest tenth of each configuration's rounds: what it costs when nothing else on the machine interferes.
    const total = (samples: Record<Config, number[]>, config: Config): number => sum(samples[config]) / sum(samples.off);
    const fastest = (samples: Record<Config, number[]>, config: Config): number => percentile(samples[config], 10) / percentile(samples.off, 10);
    return {
      id: 'otel',
      title: 'Instrumentation on the warm path',
      rows: [
        {
          figure: `withTenant + ctx.query, no OpenTelemetry SDK registered vs instrumentation off (pool ${POOL_SIZE}, concurrency ${CONCURRENCY})`,
          ours: `${ops('default')} (${cpuRatio('default', 'off')})`,
          baseline: ops('off'),
          ratio: defaultRatio,
          ratioLabel: '× time',
          goal: `≤ ${GOAL.toFixed(2)} × time`,
          met: defaultRatio <= GOAL,
        },
        {
          figure: 'same, with an SDK (metrics and spans, passed with the telemetry option) vs instrumentation off, in pairs after the rest',
          ours: `${ops('sdk')} (${cpuRatio('sdk', 'offSdk')})`,
          baseline: ops('offSdk'),
          ratio: ratio('sdk', 'offSdk'),
          ratioLabel: '× time',
          goal: '',
          met: null,
        },
        {
          figure: 'control: instrumentation off on a second platform vs off (two identical setups: the noise floor)',
          ours: `${ops('offAgain')} (${cpuRatio('offAgain', 'off')})`,
          baseline: ops('off'),
          ratio: ratio('offAgain', 'off'),
          ratioLabel: '× time',
          goal: '',
          met: null,
        },
        {
          figure: 'no SDK registered vs instrumentation off: the fastest tenth of the rounds (10th percentiles), wall and CPU time',
          ours: `wall ${fmt(fastest(ms, 'default'), 3)} ×, CPU time ${fmt(fastest(cpu, 'default'), 3)} ×`,
          baseline: 'off',
          ratio: fastest(cpu, 'default'),
          ratioLabel: '× CPU time',
          goal: '',
          met: null,
        },
        {
          figure: 'no SDK registered vs instrumentation off: all rounds together (total time ÷ total time), wall and CPU time',
          ours: `wall ${fmt(total(ms, 'default'), 3)} ×, CPU time ${fmt(total(cpu, 'default'), 3)} ×`,
          baseline: 'off',
          ratio: total(cpu, 'default'),
          ratioLabel: '× CPU time',
          goal: '',
          met: null,
        },
        {
          figure: 'instrumentation off vs pg.Pool.query (the "warm" figure before issue 15)',
          ours: ops('off'),
          baseline: ops('pg'),
          ratio: ratio('off', 'pg'),
          ratioLabel: '× time',
          goal: '',
          met: null,
        },
        {
          figure: 'no SDK registered vs pg.Pool.query (the "warm" figure now)',
          ours: ops('default'),
          baseline: ops('pg'),
          ratio: ratio('default', 'pg'),
          ratioLabel: '× time',
          goal: '',
          met: null,
        },
      ],
      details: {
        queriesPerRound: queries,
        rounds,
        concurrency: CONCURRENCY,
        poolSize: POOL_SIZE,
        ms,
        cpuMs: cpu,
        defaultCpuRatios: cpu.default.map((t, i) => t / cpu.off[i]!),
        defaultRatios: ms.default.map((t, i) => t / ms.off[i]!),
        sdkRatios: ms.sdk.map((t, i) => t / ms.offSdk[i]!),
      },
      notes: [],
    };
  } finally {
    await raw.end().catch(() => {});
    for (const platform of new Set(Object.values(platforms))) await platform.close();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    manager.disable();
    context.disable();
  }
}
