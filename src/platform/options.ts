import type { S3Client } from '@aws-sdk/client-s3';
import { TenantDbError } from '../errors.js';

/** A pino-compatible logger. The library is silent unless one is given. */
export interface Logger {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

/** Where documents' bytes go. */
export interface S3Options {
  /** The bucket every object goes into. Required. */
  bucket: string;
  /** An S3-compatible endpoint (MinIO, s3rver, …). Default: AWS S3 for `region`. */
  endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Path-style addressing (needed by most S3-compatible servers). Default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Default: the AWS SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Prepended to every key, e.g. `'app1/'`. Default: `''`. */
  prefix?: string;
  /** An S3Client to use instead of building one from the options above. */
  client?: S3Client;
  /** Bytes per multipart part of an upload; at least 5 MiB. Default: 8 MiB. */
  partSize?: number;
  /**
   * Parts of one upload in flight at once. Memory per upload stays near `partSize × (queueSize + 2)`;
   * more parts in flight help against a distant store. Default: 2.
   */
  queueSize?: number;
}

/** Bounds of the tenant pool manager. */
export interface PoolOptions {
  /** Tenant pools kept open at most (least recently used is evicted). Default: 50. */
  maxTenantPools?: number;
  /** Connections one tenant pool opens at most. Default: 4. */
  maxConnectionsPerTenant?: number;
  /** Hard ceiling on open connections to tenant databases, across every pool. Default: 50. */
  maxConnections?: number;
  /** An idle pool closes after this many milliseconds. Default: 30 000. */
  idleMs?: number;
  /** How long a caller waits for a connection when the budget is full, before TENANT_NOT_READY. Default: 30 000. */
  acquireTimeoutMs?: number;
}

/** Options of {@link createPlatform}. */
export interface PlatformOptions {
  /** The main database, e.g. `postgres://postgres@127.0.0.1:5432/saas_platform`; `init()` creates it if missing. */
  mainUrl: string;
  /** The object store for documents. */
  s3: S3Options;
  /** Named PostgreSQL servers tenants live on (URLs without a database). Default: `{ default: <server of mainUrl> }`. */
  tenantServers?: Record<string, string>;
  /** Bounds of the tenant pool manager. */
  pool?: PoolOptions;
  /** Document rules. */
  documents?: {
    /** Upload size limit in bytes, enforced on the bytes streamed. Default: none. */
    maxBytes?: number;
  };
  /** Extra folders of the host app's own tenant migrations, run after the built-in ones. */
  tenantMigrations?: string[];
  /** Extra folders of the host app's own main-database migrations, run after the built-in ones. */
  mainMigrations?: string[];
  /**
   * Tenant databases kept cloned ahead of need, per tenant server: `tenants.create` then renames one
   * (under a millisecond) instead of cloning the template, and a new spare is cloned in the background.
   * 0 clones on demand. Default: 2.
   */
  tenantSpares?: number;
  /**
   * How long a process may use what it read of a tenant (active? ready?) before reading it again, in
   * milliseconds. Changes made through this platform take effect at once; those made by another process
   * within this time. 0 reads the registry on every `withTenant`. Default: 1000.
   */
  tenantCacheMs?: number;
  /** A pino-compatible logger. Default: silent. */
  logger?: Logger;
}

/** {@link PlatformOptions} with every default filled in. */
export interface ResolvedOptions {
  mainUrl: string;
  s3: S3Options & { prefix: string };
  tenantServers: Record<string, string>;
  pool: Required<PoolOptions>;
  documents: { maxBytes: number | undefined };
  tenantMigrations: string[];
  mainMigrations: string[];
  tenantCacheMs: number;
  tenantSpares: number;
  logger: Logger;
}

const noop = (): void => {};
/** The logger used when none is given. */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

function fail(message: string): never {
  throw new TenantDbError('VALIDATION', message);
}

function postgresUrl(value: unknown, what: string): URL {
  if (typeof value !== 'string' || value.length === 0) fail(`${what} is required`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`${what} is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    fail(`${what} must be a postgres:// URL`);
  }
  return url;
}

function positiveInt(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    fail(`${what} must be a positive integer`);
  }
  return value;
}

function nonNegativeInt(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(`${what} must be a non-negative integer`);
  return value;
}

/** The server part of a URL (the same URL with no database). */
function serverOf(url: URL): string {
  const server = new URL(url.toString());
  server.pathname = '';
  return server.toString().replace(/\/$/, '');
}

/**
 * Checks options and fills in defaults. Throws VALIDATION synchronously on anything wrong.
 * @internal
 */
export function resolveOptions(options: PlatformOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options are required');
  const main = postgresUrl(options.mainUrl, 'mainUrl');
  if (main.pathname.replace(/^\//, '') === '') fail('mainUrl must name a database');

  const s3 = options.s3;
  if (typeof s3 !== 'object' || s3 === null) fail('s3 is required');
  if (typeof s3.bucket !== 'string' || s3.bucket.length === 0) fail('s3.bucket is required');
  if (s3.prefix !== undefined && typeof s3.prefix !== 'string') fail('s3.prefix must be a string');

  const tenantServers: Record<string, string> = {};
  for (const [name, url] of Object.entries(options.tenantServers ?? {})) {
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) fail(`tenantServers: bad server name ${JSON.stringify(name)}`);
    tenantServers[name] = serverOf(postgresUrl(url, `tenantServers.${name}`));
  }
  tenantServers.default ??= serverOf(main);

  const pool = options.pool ?? {};
  const resolvedPool: Required<PoolOptions> = {
    maxTenantPools: positiveInt(pool.maxTenantPools, 'pool.maxTenantPools', 50),
    maxConnectionsPerTenant: positiveInt(pool.maxConnectionsPerTenant, 'pool.maxConnectionsPerTenant', 4),
    maxConnections: positiveInt(pool.maxConnections, 'pool.maxConnections', 50),
    idleMs: positiveInt(pool.idleMs, 'pool.idleMs', 30_000),
    acquireTimeoutMs: positiveInt(pool.acquireTimeoutMs, 'pool.acquireTimeoutMs', 30_000),
  };

  const maxBytes = options.documents?.maxBytes;
  if (maxBytes !== undefined) positiveInt(maxBytes, 'documents.maxBytes', 0);

  const folders = (value: unknown, what: string): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
      fail(`${what} must be an array of folder paths`);
    }
    return [...value];
  };

  return {
    mainUrl: main.toString(),
    s3: { ...s3, prefix: s3.prefix ?? '' },
    tenantServers,
    pool: resolvedPool,
    documents: { maxBytes },
    tenantMigrations: folders(options.tenantMigrations, 'tenantMigrations'),
    mainMigrations: folders(options.mainMigrations, 'mainMigrations'),
    tenantCacheMs: nonNegativeInt(options.tenantCacheMs, 'tenantCacheMs', 1000),
    tenantSpares: nonNegativeInt(options.tenantSpares, 'tenantSpares', 2),
    logger: options.logger ?? silentLogger,
  };
}
