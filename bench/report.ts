/** The benchmarks' common result shape, the printed table and `bench/results.json`. */
import { writeFile } from 'node:fs/promises';
import type { LoadReport } from './measure.js';

/** One line of the table: a figure of ours beside its baseline. */
export interface ResultRow {
  figure: string;
  ours: string;
  baseline: string;
  /** Ours against the baseline, in the sense `ratioLabel` says (e.g. time ratio, speed-up). */
  ratio: number | null;
  ratioLabel?: string;
  /** The goal in words, or '' when the row is informational. */
  goal: string;
  /** Whether the goal is met; null when the row has no goal. */
  met: boolean | null;
}

/** What one benchmark returns. */
export interface BenchResult {
  id: string;
  title: string;
  rows: ResultRow[];
  /** The raw figures (samples, counts, settings), for results.json. */
  details: Record<string, unknown>;
  /** Remarks printed under the table (e.g. why a goal is missed). */
  notes: string[];
  load?: LoadReport;
}

/** What `bench/results.json` holds. */
export interface BenchReport {
  command: string;
  options: { quick: boolean; only: string[] | null };
  startedAt: string;
  finishedAt: string;
  machine: Record<string, unknown>;
  benchmarks: BenchResult[];
  goals: { met: number; missed: number };
}

/** `x` with `digits` decimals and thousands separators. */
export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio with 2 decimals. */
export function ratio(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '' : x.toFixed(2);
}

function metText(met: boolean | null): string {
  return met === null ? '' : met ? 'met' : 'MISSED';
}

/** Each benchmark's number in issue 7 (they run in another order: provisioning makes the fleet, fleet goes last). */
const ISSUE_NUMBER: Record<string, number> = { warm: 1, many: 2, provisioning: 3, fleet: 4, upload: 5 };

/** The results as a Markdown table in the issue's order (what README's Performance section shows). */
export function markdownTable(results: BenchResult[]): string {
  const lines = [
    '| # | benchmark | figure | ours | baseline | ratio | goal | result |',
    '|---|---|---|--:|--:|--:|---|---|',
  ];
  const ordered = [...results].sort((a, b) => (ISSUE_NUMBER[a.id] ?? 99) - (ISSUE_NUMBER[b.id] ?? 99));
  for (const r of ordered) {
    for (const row of r.rows) {
      const cells = [
        String(ISSUE_NUMBER[r.id] ?? ''),
        r.title,
        row.figure,
        row.ours,
        row.baseline,
        row.ratio === null ? '' : `${ratio(row.ratio)}${row.ratioLabel ? ` ${row.ratioLabel}` : ''}`,
        row.goal,
        metText(row.met),
      ];
      lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** The load each benchmark ran under, one line each. */
export function loadLines(results: BenchResult[]): string[] {
  return results
    .filter((r) => r.load)
    .map((r) => {
      const l = r.load!;
      return `${r.id}: ${fmt(l.seconds, 1)} s; CPU busy ${fmt(l.machineCores, 2)} cores (this benchmark ${fmt(l.benchCores, 2)}, other programs ${fmt(l.otherCores, 2)}); load average ${fmt(l.loadavg1[0], 2)} → ${fmt(l.loadavg1[1], 2)}`;
    });
}

/** Writes the report as pretty JSON. */
export async function writeReport(path: string, report: BenchReport): Promise<void> {
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** Counts the goals met and missed. */
export function goalCounts(results: BenchResult[]): { met: number; missed: number } {
  const rows = results.flatMap((r) => r.rows);
  return { met: rows.filter((r) => r.met === true).length, missed: rows.filter((r) => r.met === false).length };
}
