import { randomBytes } from 'node:crypto';
import { S3Client, ListObjectsCommand, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { createPlatform, type Platform, type PlatformOptions } from '../../src/index.js';

/** URL of the test server's `postgres` database. */
export function serverUrl(): string {
  return inject('pgUrl');
}

/** The test server's URL pointing at `database`. */
export function dbUrl(database: string): string {
  const u = new URL(inject('pgUrl'));
  u.pathname = `/${database}`;
  return u.toString();
}

/** A client on the harness' S3 server, with the checksum settings S3-compatible servers need. */
export function testS3Client(): S3Client {
  return new S3Client({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: inject('s3Credentials'),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Per test file (or describe block): a {@link testS3Client} that is destroyed after it. */
export function useTestS3Client(): S3Client {
  const client = testS3Client();
  afterAll(() => client.destroy());
  return client;
}

/** Runs one query on the server's `postgres` database with a short-lived client. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params?: unknown[],
  database = 'postgres',
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: dbUrl(database) });
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

/** True when the test server has a database called `name`. */
export async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/** Drops a database and everything registered in it as a tenant or template database. */
export async function dropPlatformDatabases(mainDb: string): Promise<void> {
  const names: string[] = [];
  if (await databaseExists(mainDb)) {
    // Either table may not exist yet, depending on how far the file's platform got.
    for (const table of ['tenants', 'tenant_templates', 'tenant_spares']) {
      const listed = await adminQuery<{ name: string }>(`SELECT database_name AS name FROM ${table}`, [], mainDb).catch(
        () => ({ rows: [] as { name: string }[] }),
      );
      names.push(...listed.rows.map((r) => r.name));
    }
  }
  for (const name of [...names, mainDb]) {
    await adminQuery(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  }
}

/**
 * Deletes every object under a key prefix. Lists with V1 (ListObjects): s3rver's V2 continuation tokens
 * fail on Node 20's OpenSSL, and a deleted page is never listed again, so no marker is needed.
 */
export async function deletePrefix(client: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
}

/**
 * Every key under a prefix, sorted. Pages with V1 (ListObjects) and its `Marker`, for the reason
 * {@link deletePrefix} gives.
 */
export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: marker }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    if (!page.IsTruncated || !page.Contents?.length) return keys.sort();
    marker = keys.at(-1);
  }
}

/** Drops `mainDb` with its tenant and template databases, and deletes every object under `prefix` (default `<mainDb>/`). */
export async function cleanUpPlatform(mainDb: string, prefix = `${mainDb}/`): Promise<void> {
  await dropPlatformDatabases(mainDb);
  const s3 = testS3Client();
  try {
    await deletePrefix(s3, inject('s3Bucket'), prefix);
  } finally {
    s3.destroy();
  }
}

/**
 * The environment variables that point a child process (the CLI, an example, the demo) at the harness'
 * servers, with `mainDb` as its main database and `prefix` (default `<mainDb>/`) as its key prefix.
 */
export function harnessProcessEnv(mainDb: string, prefix = `${mainDb}/`): Record<string, string> {
  const credentials = inject('s3Credentials');
  return {
    TENANTDB_MAIN_URL: dbUrl(mainDb),
    TENANTDB_S3_BUCKET: inject('s3Bucket'),
    TENANTDB_S3_ENDPOINT: inject('s3Endpoint'),
    TENANTDB_S3_REGION: 'us-east-1',
    TENANTDB_S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
}

/** A name unique to this run, lower-case ASCII, safe as a database name. */
export function uniqueName(tag: string): string {
  return `${tag}_${randomBytes(4).toString('hex')}`;
}

/**
 * Per test file: a unique main database and S3 key prefix, and platforms on them that are closed and
 * cleaned up (databases dropped, objects deleted) after the file. `initPlatform()` is `platform()` with
 * `init()` already run.
 */
export function useTestPlatform(defaults: Partial<PlatformOptions> = {}): {
  mainDb: string;
  mainUrl: string;
  prefix: string;
  options(extra?: Partial<PlatformOptions>): PlatformOptions;
  platform(extra?: Partial<PlatformOptions>): Platform;
  initPlatform(extra?: Partial<PlatformOptions>): Promise<Platform>;
} {
  const mainDb = uniqueName('tdbt');
  const mainUrl = dbUrl(mainDb);
  const prefix = `${mainDb}/`;
  const platforms: Platform[] = [];
  const options = (extra: Partial<PlatformOptions> = {}): PlatformOptions => ({
    mainUrl,
    s3: {
      bucket: inject('s3Bucket'),
      endpoint: inject('s3Endpoint'),
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: inject('s3Credentials'),
      prefix,
    },
    ...defaults,
    ...extra,
  });
  afterAll(async () => {
    await Promise.allSettled(platforms.map((p) => p.close()));
    await cleanUpPlatform(mainDb, prefix);
  });
  const platform = (extra?: Partial<PlatformOptions>): Platform => {
    const p = createPlatform(options(extra));
    platforms.push(p);
    return p;
  };
  return {
    mainDb,
    mainUrl,
    prefix,
    options,
    platform,
    async initPlatform(extra) {
      const p = platform(extra);
      await p.init();
      return p;
    },
  };
}
