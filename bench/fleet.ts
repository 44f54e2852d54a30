/**
 * `npm run bench:fleet [-- --tenants N] [-- --pairs N] [-- --overhead-at N] [-- --concurrency 4,8] [-- --quick]`:
 * the "runs" benchmark of `npm run bench` (bench/fleet-runs.ts) on its own, with its sizes as options:
 * `--tenants` (default 1 000), `--pairs` of a recorded and an unrecorded run (default 4), `--overhead-at` the
 * concurrency of those pairs (default 4), `--concurrency` the levels whose speed-up against concurrency 1 is
 * reported (default 4,8). Starts its servers like `npm run bench`,
 * prints its rows, writes no results.json, drops what it made. Not part of `npm test`; exits non-zero only
 * when something crashed.
 */
import { cleanUpOnce, createBenchEnv, type BenchEnv } from './bench-env.js';
import { runFleetRuns } from './fleet-runs.js';
import { measureLoad } from './measure.js';
import { fmt, markdownTable } from './report.js';
import { startBenchServers, type BenchServers } from './server-process.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? '');
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes positive integers`);
  return value;
}

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const quick = process.argv.includes('--quick');
const sizes = {
  tenants: positive('tenants', option('tenants', quick ? '100' : '1000')),
  pairs: positive('pairs', option('pairs', quick ? '1' : '4')),
  overheadAt: positive('overhead-at', option('overhead-at', '4')),
  levels: option('concurrency', '4,8').split(',').map((s) => positive('concurrency', s.trim())),
};

let servers: BenchServers | undefined;
let env: BenchEnv | undefined;
const cleanUp = cleanUpOnce(() => ({ env, servers }), log);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up…`);
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

let code = 0;
try {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  servers = await startBenchServers(log);
  env = await createBenchEnv(servers, quick, log);
  log(`main database ${env.mainDb}; ${env.postgresVersion.split(' on ')[0]}; tenants ${sizes.tenants}, pairs ${sizes.pairs} at concurrency ${sizes.overheadAt}, speed-ups at ${sizes.levels.join(',')}`);
  await env.tenants(sizes.tenants);
  await env.admin.query('CHECKPOINT');
  const load = measureLoad();
  const result = await runFleetRuns(env, sizes);
  result.load = load.stop();
  console.log(`\n${markdownTable([result])}\n`);
  const l = result.load;
  console.log(`Load: ${fmt(l.seconds, 0)} s; CPU busy ${fmt(l.machineCores, 2)} cores (this benchmark ${fmt(l.benchCores, 2)}, other programs ${fmt(l.otherCores, 2)})`);
  for (const note of result.notes) console.log(`Note: ${note}`);
  const d = result.details;
  console.log(JSON.stringify({ overheads: d.overheads, speedUps: d.speedUps, baselinePerSecond: d.baselinePerSecond }));
} catch (err) {
  code = 1;
  log(`crashed: ${(err as Error)?.stack ?? String(err)}`);
}
await cleanUp();
process.exit(code);
