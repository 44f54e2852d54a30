/**
 * What every benchmark gets: the servers, a main database and S3 prefix unique to this run, platforms
 * on them, an admin pool, and a fleet of tenants created on demand. `close()` drops every database the
 * run created, deletes its objects and closes what it opened.
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import type { Platform, PlatformOptions, Tenant } from '../src/index.js';
import { createPlatform } from './library.js';
import { now, runConcurrent } from './measure.js';
import type { BenchServers } from './server-process.js';
import { ensureBucket } from '../scripts/dev-servers.js';

/** The environment of one benchmark run. */
export interface BenchEnv {
  /** `--quick`: smaller sizes, for a smoke run. */
  readonly quick: boolean;
  readonly servers: BenchServers;
  /** The run's main database. */
  readonly mainDb: string;
  /** The run's S3 bucket and key prefix. */
  readonly bucket: string;
  readonly prefix: string;
  /** The server's `max_connections`. */
  readonly maxConnections: number;
  /** `SELECT version()`. */
  readonly postgresVersion: string;
  /** The platform the fleet is created with (default pool options, initialised). */
  readonly main: Platform;
  /** A pool (4 connections) on the server's `postgres` database, for CREATE/DROP DATABASE and pg_stat_activity. */
  readonly admin: pg.Pool;
  log(line: string): void;
  /** The server's URL pointing at `database`. */
  dbUrl(database: string): string;
  /** Platform options on the run's main database and prefix, with `extra` on top. */
  options(extra?: Partial<PlatformOptions>): PlatformOptions;
  /** A new platform on the run's main database, closed by `close()`. */
  platform(extra?: Partial<PlatformOptions>): Platform;
  /** An S3 client on the server, with the checksum settings S3-compatible servers need. Destroy it after use. */
  s3Client(): S3Client;
  /**
   * At least `n` tenants in the registry (the missing ones created with `tenants.create`, 8 at a time);
   * returns the first `n` by creation order.
   */
  tenants(n: number): Promise<Tenant[]>;
  /** Registers a database created outside the platform (a baseline), for `close()` to drop. */
  trackDatabase(name: string): void;
  /** Drops every database and object of the run and closes every platform and pool. Idempotent. */
  close(): Promise<void>;
}

/**
 * The clean-up of a benchmark process: closes the environment (when there is one yet), then stops the
 * servers; once, however often it is called. `current` gives them as they are when it runs.
 */
export function cleanUpOnce(
  current: () => { env: BenchEnv | undefined; servers: BenchServers | undefined },
  log: (line: string) => void,
): () => Promise<void> {
  let cleaning: Promise<void> | undefined;
  return () => {
    cleaning ??= (async () => {
      const { env, servers } = current();
      if (env) await env.close().catch((err: unknown) => log(`clean-up failed: ${String(err)}`));
      await servers?.stop();
    })();
    return cleaning;
  };
}

/** Tenant names: zero-padded, so that creation order and name order agree. */
const tenantName = (i: number): string => `bench ${String(i).padStart(5, '0')}`;

/** `name` quoted as an identifier. */
const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** Sets up the run's main database, bucket and admin pool on `servers`. */
export async function createBenchEnv(servers: BenchServers, quick: boolean, log: (line: string) => void): Promise<BenchEnv> {
  const run = randomBytes(4).toString('hex');
  const mainDb = `bench_${run}`;
  const prefix = `${mainDb}/`;
  const bucket = process.env.TENANTDB_TEST_S3_BUCKET ?? 'tenantdb-bench';
  const dbUrl = (database: string): string => {
    const u = new URL(servers.pgUrl);
    u.pathname = `/${database}`;
    return u.toString();
  };
  const s3Client = (): S3Client =>
    new S3Client({
      endpoint: servers.s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: servers.s3Credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  await ensureBucket(bucket, servers.s3Endpoint, servers.s3Credentials);

  const admin = new pg.Pool({ connectionString: servers.pgUrl, max: 4 });
  admin.on('error', () => {}); // a backend killed under an idle admin client is not the benchmark's concern
  const maxConnections = Number((await admin.query<{ max_connections: string }>('SHOW max_connections')).rows[0]!.max_connections);
  const postgresVersion = (await admin.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;

  const platforms: Platform[] = [];
  const extraDatabases = new Set<string>();
  const options = (extra: Partial<PlatformOptions> = {}): PlatformOptions => ({
    mainUrl: dbUrl(mainDb),
    s3: {
      bucket,
      endpoint: servers.s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: servers.s3Credentials,
      prefix,
    },
    ...extra,
  });
  const platform = (extra?: Partial<PlatformOptions>): Platform => {
    const p = createPlatform(options(extra));
    platforms.push(p);
    return p;
  };
  const main = platform();
  await main.init();

  let growing: Promise<unknown> = Promise.resolve();
  const tenants = (n: number): Promise<Tenant[]> => {
    // One top-up at a time: two callers must not both create the missing tenants.
    const result = growing.then(async () => {
      const existing = await main.tenants.list({ includeInactive: true });
      const missing = n - existing.length;
      if (missing > 0) {
        log(`creating ${missing} tenants (8 in parallel)…`);
        const t0 = now();
        await runConcurrent(missing, 8, (i) => main.tenants.create({ name: tenantName(existing.length + i) }));
        log(`  ${missing} tenants in ${((now() - t0) / 1000).toFixed(1)} s`);
      }
      const all = missing > 0 ? await main.tenants.list({ includeInactive: true }) : existing;
      return all.slice(0, n);
    });
    growing = result.catch(() => {});
    return result;
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await Promise.allSettled(platforms.map((p) => p.close()));
      // Every database the run made: tenants, templates (the registry says which), baselines, the main one.
      const names = new Set(extraDatabases);
      const registry = new pg.Client({ connectionString: dbUrl(mainDb) });
      registry.on('error', () => {});
      try {
        await registry.connect();
        for (const table of ['tenants', 'tenant_templates']) {
          const { rows } = await registry
            .query<{ name: string }>(`SELECT database_name AS name FROM ${table}`)
            .catch(() => ({ rows: [] as { name: string }[] }));
          for (const r of rows) names.add(r.name);
        }
      } catch {
        // no main database yet: nothing registered
      } finally {
        await registry.end().catch(() => {});
      }
      const list = [...names];
      if (list.length) log(`dropping ${list.length} databases…`);
      await runConcurrent(list.length, 4, (i) => admin.query(`DROP DATABASE IF EXISTS ${ident(list[i]!)} WITH (FORCE)`).catch(() => {}));
      await admin.query(`DROP DATABASE IF EXISTS ${ident(mainDb)} WITH (FORCE)`).catch(() => {});
      await deletePrefix(bucket, prefix).catch((err: unknown) => log(`could not delete objects under ${prefix}: ${String(err)}`));
      await admin.end().catch(() => {});
    })();
    return closing;
  };

  const deletePrefix = async (bucketName: string, keyPrefix: string): Promise<void> => {
    const client = s3Client();
    try {
      // ListObjects V1: s3rver's V2 continuation tokens fail on Node 20's OpenSSL; a deleted page is never listed again.
      for (;;) {
        const page = await client.send(new ListObjectsCommand({ Bucket: bucketName, Prefix: keyPrefix }));
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length === 0) return;
        await client.send(new DeleteObjectsCommand({ Bucket: bucketName, Delete: { Objects: keys } }));
      }
    } finally {
      client.destroy();
    }
  };

  return {
    quick,
    servers,
    mainDb,
    bucket,
    prefix,
    maxConnections,
    postgresVersion,
    main,
    admin,
    log,
    dbUrl,
    options,
    platform,
    s3Client,
    tenants,
    trackDatabase: (name) => void extraDatabases.add(name),
    close,
  };
}
