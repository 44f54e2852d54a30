/**
 * `npm run bench:move [-- --rows N] [-- --writers N] [-- --pause-ms N]`: the move benchmark of `npm run bench`
 * (bench/tenant-move.ts) on its own, with its sizes as options: `--rows` (default 200 000), `--writers`
 * (default 4), `--pause-ms` between a writer's inserts (default none). Prints its rows; writes no
 * results.json. Not part of `npm test`; exits non-zero only when something crashed.
 */
import { measureMove } from './tenant-move.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

const result = await measureMove({
  rows: option('rows', 200_000),
  writers: option('writers', 4),
  pauseMs: process.argv.includes('--pause-ms') ? option('pause-ms', 0) : 0,
  log: (line) => console.log(line.trimStart()),
});
for (const row of result.rows) {
  const goal = row.met === null ? '' : ` (${row.goal}: ${row.met ? 'met' : 'MISSED'})`;
  console.log(`${row.figure}: logical ${row.ours}, copy ${row.baseline}${goal}`);
}
for (const note of result.notes) console.log(`Note: ${note}`);
