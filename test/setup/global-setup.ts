import type { TestProject } from 'vitest/node';
import {
  containerRuntimeAnswers,
  ensureBucket,
  startPgBouncer,
  startPostgres,
  startS3,
  type RunningServer,
} from '../../scripts/dev-servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the test PostgreSQL server's `postgres` database. */
    pgUrl: string;
    s3Endpoint: string;
    s3Bucket: string;
    s3Credentials: { accessKeyId: string; secretAccessKey: string };
    /** URL of the `postgres` database through a session-mode PgBouncer in front of `pgUrl`; empty when none runs. */
    pgbouncerSessionUrl: string;
    /** URL of the `postgres` database through a transaction-mode PgBouncer in front of `pgUrl`; empty when none runs. */
    pgbouncerTransactionUrl: string;
    /** Why the PgBouncer tests are skipped; empty when both PgBouncers run. */
    pgbouncerSkipReason: string;
  }
}

/**
 * Starts one PostgreSQL and one S3 server for the whole run, and a session-mode and a transaction-mode
 * PgBouncer in front of that PostgreSQL when PgBouncer is installed; every test file gets their addresses.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The AWS SDK warns once per process that future versions will need Node 22; we pin for Node 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const started: RunningServer[] = [];
  // Stopped before the servers they pool, so no pooled connection is cut by the server's shutdown.
  const poolers: RunningServer[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= Promise.allSettled(poolers.map((s) => s.stop()))
      .then(() => Promise.allSettled(started.map((s) => s.stop())))
      .then(() => undefined));
  // Interrupted runs (Ctrl-C, CI timeout) still stop the servers and remove their temp folders.
  const onSignal = (signal: NodeJS.Signals): void => {
    void stopAll().finally(() => process.kill(process.pid, signal));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const containers =
    !process.env.TENANTDB_TEST_PG_URL || !process.env.TENANTDB_TEST_S3_ENDPOINT ? await containerRuntimeAnswers() : false;
  const log = (line: string): void => void process.stderr.write(`[tenantdb test] ${line}\n`);
  const results = await Promise.allSettled([startPostgres({ log }, containers), startS3({ log }, containers)]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  const [pg, s3] = started as [RunningServer, RunningServer];
  log(`PostgreSQL: ${pg.kind}; S3: ${s3.kind}`);

  // Two real PgBouncers in front of the server, one per pool mode; none when it is not installed.
  const bouncers = await Promise.allSettled(
    (['session', 'transaction'] as const).map((mode) => startPgBouncer({ serverUrl: pg.url, mode, log })),
  );
  for (const r of bouncers) if (r.status === 'fulfilled' && r.value) poolers.push(r.value);
  const bouncerFailed = bouncers.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bouncerFailed) {
    await stopAll();
    throw bouncerFailed.reason;
  }
  const [session, transaction] = bouncers.map((r) => (r as PromiseFulfilledResult<RunningServer | undefined>).value);
  const pgbouncerSkipReason = session && transaction ? '' : 'PgBouncer: not installed, PgBouncer tests are skipped (apt-get install -y pgbouncer)';
  if (pgbouncerSkipReason) log(pgbouncerSkipReason);

  const bucket = process.env.TENANTDB_TEST_S3_BUCKET ?? 'tenantdb-test';
  const credentials = s3.credentials!;
  await ensureBucket(bucket, s3.url, credentials);

  project.provide('pgUrl', pg.url);
  project.provide('s3Endpoint', s3.url);
  project.provide('s3Bucket', bucket);
  project.provide('s3Credentials', credentials);
  project.provide('pgbouncerSessionUrl', session?.url ?? '');
  project.provide('pgbouncerTransactionUrl', transaction?.url ?? '');
  project.provide('pgbouncerSkipReason', pgbouncerSkipReason);

  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  };
}
