/**
 * Benchmark 3, provisioning: `tenants.create` (a clone of the migrated template) against what it
 * replaces, `CREATE DATABASE` plus running every tenant migration on the new database with the same
 * engine. Median and p95 one at a time, then tenants per second with 8 in parallel.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { clientConnector, createSqlUmzug, loadMigrationFiles } from '../src/migrations/sql-migrations.js';
import { silentLogger } from '../src/util/logger.js';
import type { BenchEnv } from './bench-env.js';
import { alternate, median, now, percentile, runConcurrent } from './measure.js';
import { fmt, type BenchResult } from './report.js';

const GOAL_MEDIAN_MS = 50;
const PARALLEL = 8;
/** The platform's default `tenantSpares`. */
const SPARES = 2;

/** Runs benchmark 3; the tenants it creates join the run's fleet. */
export async function runProvisioning(env: BenchEnv): Promise<BenchResult> {
  const pairs = env.quick ? 8 : 30;
  const perRound = env.quick ? 16 : 40;
  const files = await loadMigrationFiles('tenant', []);
  const run = randomBytes(3).toString('hex');
  let seq = 0;
  let baseSeq = 0;
  const baselineNames: string[] = [];
  // The baseline's own connections, one per parallel worker and opened beforehand: nothing but its 8 workers limits it.
  const basePool = new pg.Pool({ connectionString: env.servers.pgUrl, max: PARALLEL });
  basePool.on('error', () => {});
  await Promise.all(Array.from({ length: PARALLEL }, () => basePool.query('select 1')));

  // The main platform keeps the default spares: between two measured creates, wait (untimed) until its
  // spares are all cloned again, so that each create finds one (tenants created now and then) and no
  // background clone runs during the other side's measurement.
  const mainPool = new pg.Pool({ connectionString: env.options().mainUrl, max: 1 });
  mainPool.on('error', () => {});
  const sparesReady = async (): Promise<void> => {
    for (let i = 0; i < 500; i++) {
      const { rows } = await mainPool.query<{ n: number }>('SELECT count(*) FILTER (WHERE ready)::int AS n FROM tenant_spares');
      if (rows[0]!.n >= SPARES) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  // The template exists once init() ran; the first create still warms the admin pool and the registry.
  const create = (platform: typeof env.main) => async (): Promise<number> => {
    const t0 = now();
    await platform.tenants.create({ name: `bench prov ${String(seq++).padStart(4, '0')}` });
    return now() - t0;
  };
  const ours = async (): Promise<number> => {
    await sparesReady();
    const ms = await create(env.main)();
    await sparesReady();
    return ms;
  };
  // The same without spares: every create clones the template.
  const onDemand = env.platform({ tenantSpares: 0 });
  await onDemand.init();
  const cold = create(onDemand);
  const baseline = async (): Promise<number> => {
    const name = `bench_base_${run}_${baseSeq++}`;
    env.trackDatabase(name);
    baselineNames.push(name);
    const t0 = now();
    await basePool.query(`CREATE DATABASE "${name}"`);
    const umzug = createSqlUmzug({ connect: clientConnector(env.dbUrl(name)), files, family: 'tenant', logger: silentLogger });
    await umzug.up();
    return now() - t0;
  };

  let one: { a: number[]; b: number[] };
  let clone: { a: number[]; b: number[] };
  let parallel: { a: number[]; b: number[] };
  try {
    await alternate(2, ours, baseline); // warm-up
    one = await alternate(pairs, ours, baseline);
    clone = await alternate(pairs, cold, baseline);
    parallel = await alternate(
      2,
      async () => perRound / ((await runConcurrent(perRound, PARALLEL, () => ours())) / 1000),
      async () => perRound / ((await runConcurrent(perRound, PARALLEL, () => baseline())) / 1000),
    );
  } finally {
    await basePool.end().catch(() => {});
    await mainPool.end().catch(() => {});
  }

  // The baselines' databases are not tenants: drop them now rather than carry them into later benchmarks.
  await runConcurrent(baselineNames.length, 4, (i) => env.admin.query(`DROP DATABASE IF EXISTS "${baselineNames[i]}" WITH (FORCE)`));

  const oursMedian = median(one.a);
  const baseMedian = median(one.b);
  const oursP95 = percentile(one.a, 95);
  const baseP95 = percentile(one.b, 95);
  const oursRate = median(parallel.a);
  const baseRate = median(parallel.b);
  return {
    id: 'provisioning',
    title: 'Provisioning',
    rows: [
      {
        figure: `tenants.create (a spare ready) vs CREATE DATABASE + ${files.length} migration(s): median`,
        ours: `${fmt(oursMedian, 1)} ms`,
        baseline: `${fmt(baseMedian, 1)} ms`,
        ratio: oursMedian / baseMedian,
        ratioLabel: '× time',
        goal: `median ≤ ${GOAL_MEDIAN_MS} ms`,
        met: oursMedian <= GOAL_MEDIAN_MS,
      },
      {
        figure: 'same: p95',
        ours: `${fmt(oursP95, 1)} ms`,
        baseline: `${fmt(baseP95, 1)} ms`,
        ratio: oursP95 / baseP95,
        ratioLabel: '× time',
        goal: '',
        met: null,
      },
      {
        figure: `tenants.create cloning on demand (tenantSpares 0) vs the same baseline: median`,
        ours: `${fmt(median(clone.a), 1)} ms`,
        baseline: `${fmt(median(clone.b), 1)} ms`,
        ratio: median(clone.a) / median(clone.b),
        ratioLabel: '× time',
        goal: `median ≤ ${GOAL_MEDIAN_MS} ms`,
        met: median(clone.a) <= GOAL_MEDIAN_MS,
      },
      {
        figure: `${PARALLEL} in parallel (spares used up at once): tenants per second`,
        ours: `${fmt(oursRate, 1)} /s`,
        baseline: `${fmt(baseRate, 1)} /s`,
        ratio: oursRate / baseRate,
        ratioLabel: '× rate',
        goal: '',
        met: null,
      },
    ],
    details: {
      samplesPerSide: pairs,
      migrations: files.map((f) => f.name),
      oursMs: one.a,
      baselineMs: one.b,
      onDemandMs: clone.a,
      onDemandBaselineMs: clone.b,
      parallel: PARALLEL,
      tenantsPerRound: perRound,
      oursPerSecond: parallel.a,
      baselinePerSecond: parallel.b,
    },
    notes: [],
  };
}
