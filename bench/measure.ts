/**
 * Timing, statistics and load helpers shared by the benchmarks. Every figure is compared with a
 * baseline measured in the same run, alternated with it, so a noisy machine slows both sides alike.
 */
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';

/** Milliseconds, monotonic. */
export const now = (): number => performance.now();

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The nearest-rank percentile `p` (0–100) of `values` (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** The arithmetic mean of `values` (NaN when empty). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * Runs `task(i)` for i = 0 … total-1 with `concurrency` workers and returns the wall time in ms.
 * A task that throws fails the whole run (tasks that expect errors catch them themselves).
 */
export async function runConcurrent(total: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = now();
  const worker = async (): Promise<void> => {
    while (next < total) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return now() - start;
}

/**
 * Runs `a` and `b` for `pairs` pairs, alternating which goes first (AB, BA, AB, …), so that a drift
 * in the machine's load weighs on both sides alike. Returns each side's samples, pair by pair.
 */
export async function alternate<T>(
  pairs: number,
  a: (pair: number) => Promise<T>,
  b: (pair: number) => Promise<T>,
): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let pair = 0; pair < pairs; pair++) {
    if (pair % 2 === 0) {
      out.a.push(await a(pair));
      out.b.push(await b(pair));
    } else {
      out.b.push(await b(pair));
      out.a.push(await a(pair));
    }
  }
  return out;
}

/** Peak resident set size while it ran, against the RSS when it started (bytes). */
export interface RssReport {
  start: number;
  peak: number;
  growth: number;
}

/** Samples `process.memoryUsage().rss` every `intervalMs` until `stop()`. */
export function sampleRss(intervalMs = 50): { stop(): RssReport } {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { start, peak, growth: peak - start };
    },
  };
}

/** A seeded PRNG (mulberry32): the same sequence on both sides of a comparison. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` indices in [0, n) drawn from a Zipf distribution of exponent `s` (index 0 hottest): a few hot
 * tenants and a long tail.
 */
export function zipfSequence(n: number, count: number, s: number, seed: number): number[] {
  const cumulative: number[] = [];
  let sum = 0;
  for (let k = 1; k <= n; k++) cumulative.push((sum += 1 / k ** s));
  const random = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo);
  }
  return out;
}

/** How busy the machine was while a benchmark ran: all of it, and this benchmark's own processes. */
export interface LoadReport {
  /** Wall time in seconds. */
  seconds: number;
  /** CPU cores' worth of work done by the whole machine (0 … cores). */
  machineCores: number;
  /** Of which this benchmark (its process and every descendant: the server process, PostgreSQL and its backends). */
  benchCores: number;
  /** The rest: other programs on the machine (e.g. other test suites). */
  otherCores: number;
  /** 1-minute load average at the start and at the end. */
  loadavg1: [number, number];
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * CPU ticks of this process and all its descendants. A process that exited was reaped by its parent,
 * whose cutime/cstime then hold its ticks, so the sum only grows.
 */
function treeTicks(): number | undefined {
  try {
    const procs = new Map<number, { ppid: number; ticks: number }>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(rest[i] ?? 0), 0);
      procs.set(Number(entry), { ppid: Number(rest[1]), ticks });
    }
    const children = new Map<number, number[]>();
    for (const [pid, { ppid }] of procs) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    let sum = 0;
    const stack = [process.pid];
    while (stack.length) {
      const pid = stack.pop()!;
      sum += procs.get(pid)?.ticks ?? 0;
      stack.push(...(children.get(pid) ?? []));
    }
    return sum;
  } catch {
    return undefined;
  }
}

/** Starts measuring the machine's load; `stop()` reports it. Linux only (elsewhere the CPU figures are NaN). */
export function measureLoad(): { stop(): LoadReport } {
  const t0 = now();
  const m0 = machineTicks();
  const b0 = treeTicks();
  const l0 = os.loadavg()[0]!;
  return {
    stop() {
      const seconds = (now() - t0) / 1000;
      const m1 = machineTicks();
      const b1 = treeTicks();
      const machine = m0 && m1 ? (m1.busy - m0.busy) / CLOCK_TICKS / seconds : NaN;
      const bench = b0 !== undefined && b1 !== undefined ? (b1 - b0) / CLOCK_TICKS / seconds : NaN;
      return {
        seconds,
        machineCores: machine,
        benchCores: bench,
        otherCores: Math.max(0, machine - bench),
        loadavg1: [l0, os.loadavg()[0]!],
      };
    },
  };
}

/** Lets sockets and timers of the previous step settle (and the GC catch up when exposed). */
export async function settle(ms = 200): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Peak counts of `pg_stat_activity`: backends on `databases`, and client backends in all. */
export interface ActivityPeaks {
  tenants: number;
  clients: number;
  samples: number;
}

/**
 * Polls `pg_stat_activity` every `everyMs` on a connection of its own (open it before the load) for the
 * peak counts, calling `onTick` after each sample; `stop()` ends it and returns the peaks.
 */
export async function startActivitySampler(
  url: string,
  databases: string[],
  options: { everyMs: number; onTick?: () => void },
): Promise<{ stop(): Promise<ActivityPeaks> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  let stopped = false;
  const peaks: ActivityPeaks = { tenants: 0, clients: 0, samples: 0 };
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ tenants: number; clients: number }>(
        `SELECT count(*) FILTER (WHERE datname = ANY($1))::int AS tenants,
                count(*) FILTER (WHERE backend_type = 'client backend')::int AS clients
           FROM pg_stat_activity`,
        [databases],
      );
      peaks.tenants = Math.max(peaks.tenants, rows[0]!.tenants);
      peaks.clients = Math.max(peaks.clients, rows[0]!.clients);
      peaks.samples++;
      options.onTick?.();
      await new Promise((resolve) => setTimeout(resolve, options.everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      try {
        await loop;
      } finally {
        await client.end().catch(() => {});
      }
      return peaks;
    },
  };
}
