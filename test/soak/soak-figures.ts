/**
 * The soak's bookkeeping, sized before the measured run starts: a latency histogram of fixed buckets and a
 * least-squares slope. Nothing here grows with the number of calls, so the soak's own records cannot be
 * what the memory slope measures.
 */

/** Latencies in buckets 2% wide from 10 µs up: p50/p99 within 2%, in a few kilobytes allocated once. */
export class LatencyHistogram {
  static readonly #BASE_MS = 0.01;
  static readonly #GROWTH = 1.02;
  static readonly #LOG_GROWTH = Math.log(LatencyHistogram.#GROWTH);
  readonly #counts = new Float64Array(1_400);
  #total = 0;
  #maxMs = 0;

  record(ms: number): void {
    const i = Math.floor(Math.log(Math.max(ms, LatencyHistogram.#BASE_MS) / LatencyHistogram.#BASE_MS) / LatencyHistogram.#LOG_GROWTH);
    this.#counts[Math.min(i, this.#counts.length - 1)]!++;
    this.#total++;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  get count(): number {
    return this.#total;
  }

  get maxMs(): number {
    return this.#maxMs;
  }

  /** The upper edge of the bucket holding the `p`th percentile (0–100); NaN when empty. */
  percentile(p: number): number {
    if (this.#total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#total));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(LatencyHistogram.#BASE_MS * LatencyHistogram.#GROWTH ** (i + 1), this.#maxMs);
    }
    return this.#maxMs;
  }
}

/** The slope of the least-squares line through (`xs`, `ys`); NaN with fewer than two points. */
export function leastSquaresSlope(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2) return NaN;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i]!;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxy / sxx;
}

/** A two-column text table. */
export function table(title: string, rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return [title, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}
