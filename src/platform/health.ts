import { performance } from 'node:perf_hooks';
import { timedClientClass } from '../connections/timed-client.js';
import type { PlatformContext } from '../core/platform-context.js';
import { TenantDbError, asTenantDbError, type TenantDbErrorCode } from '../errors.js';
import { destroySocket } from '../pools/pg-internals.js';
import { isMissingDatabase } from '../util/pg-errors.js';
import { withDatabase } from '../util/redact.js';

/** Options of `platform.health()`. */
export interface HealthOptions {
  /**
   * The bound of each check, in milliseconds (they run at once, so about the bound of the whole call); a
   * positive finite number. Default: {@link DEFAULT_HEALTH_TIMEOUT_MS}.
   */
  timeoutMs?: number;
}

/** Why a check failed: a {@link TenantDbErrorCode} and a message that holds no secret (no URL). */
export interface HealthCheckError {
  /** UNAVAILABLE (unreachable, or no answer within `timeoutMs`), DATABASE (refused, e.g. a bad password), STORAGE (S3 said no), CLOSED. */
  code: TenantDbErrorCode;
  message: string;
}

/** The outcome of one check. */
export interface HealthCheck {
  ok: boolean;
  /** How long the check took, in whole milliseconds (up to about `timeoutMs` for one that timed out). */
  latencyMs: number;
  /** Only when `ok` is false. */
  error?: HealthCheckError;
}

/** Every check of `platform.health()`. */
export interface HealthChecks {
  /** A connection to the main database (`mainUrl`) and `SELECT 1`. */
  main: HealthCheck;
  /** Each configured tenant server by name: a connection to its `adminUrl`'s `postgres` database and `SELECT 1`. */
  servers: Record<string, HealthCheck>;
  /** HeadBucket on the configured bucket. */
  s3: HealthCheck;
}

/** What `platform.health()` returns. */
export interface HealthReport {
  /** True when every check is ok. */
  ok: boolean;
  checks: HealthChecks;
}

/** The default `timeoutMs` of `platform.health()`. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 2000;

/** `options.timeoutMs`, checked (VALIDATION unless a positive finite number), or the default. @internal */
export function healthTimeoutMs(options: HealthOptions | undefined): number {
  const timeoutMs = options?.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TenantDbError('VALIDATION', 'health: timeoutMs must be a positive finite number of milliseconds');
  }
  return timeoutMs;
}

/** What the health checks reach: the platform's context and its S3 store's HeadBucket. @internal */
export interface HealthDeps {
  ctx: PlatformContext;
  /** HeadBucket on the platform's bucket through its store; rejects with a TenantDbError. */
  headBucket(signal: AbortSignal): Promise<void>;
}

/** A failed check's error: its code and message, nothing else (no cause, which may hold a URL). */
function checkError(what: string, err: unknown): HealthCheckError {
  if (isMissingDatabase(err)) return { code: 'DATABASE', message: `${what}: the database does not exist` };
  const e = asTenantDbError(err);
  return e instanceof TenantDbError
    ? { code: e.code, message: e.message }
    : { code: 'DATABASE', message: 'the check failed unexpectedly' };
}

/**
 * Runs `probe` bounded by `timeoutMs`: past it the signal aborts (the probe lets go of what it holds) and
 * the check fails UNAVAILABLE at once, whatever the probe does after. Never rejects.
 */
async function timedCheck(what: string, timeoutMs: number, probe: (signal: AbortSignal) => Promise<void>): Promise<HealthCheck> {
  const start = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<HealthCheckError>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ code: 'UNAVAILABLE', message: `${what} did not answer within ${timeoutMs} ms` });
    }, timeoutMs);
  });
  const probed = probe(controller.signal).then(
    () => undefined,
    (err: unknown) => checkError(what, err),
  );
  try {
    const error = await Promise.race([probed, timedOut]);
    const latencyMs = Math.round(performance.now() - start);
    return error ? { ok: false, latencyMs, error } : { ok: true, latencyMs };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connects to `url` on a connection of its own (no pool, so no connection budget), runs `SELECT 1` and
 * ends it. Aborting `signal` destroys the socket at once, connecting or mid-query: nothing outlives the check.
 */
async function probePostgres(url: string, what: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const Client = timedClientClass(timeoutMs, what);
  const client = new Client({ connectionString: url, application_name: 'tenantdb_health' });
  client.on('error', () => {});
  const abort = (): void => destroySocket(client);
  signal.addEventListener('abort', abort, { once: true });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    signal.removeEventListener('abort', abort);
    // A connection that arrived after the check gave up is closed as well.
    if (signal.aborted) destroySocket(client);
    else await client.end().catch(() => {});
  }
}

/** A report whose every check failed with `error` (a closed platform). */
function allFailed(ctx: PlatformContext, error: HealthCheckError): HealthReport {
  const failed = (): HealthCheck => ({ ok: false, latencyMs: 0, error });
  const servers = Object.fromEntries(Object.keys(ctx.options.tenantServers).map((name) => [name, failed()]));
  return { ok: false, checks: { main: failed(), servers, s3: failed() } };
}

/**
 * The main database, every tenant server and S3, checked at once, each bounded by `timeoutMs`. Never
 * rejects; a closed platform answers `ok: false`, every check failing CLOSED.
 * @internal
 */
export async function checkHealth({ ctx, headBucket }: HealthDeps, timeoutMs: number): Promise<HealthReport> {
  if (ctx.closed) return allFailed(ctx, { code: 'CLOSED', message: 'the platform was closed' });
  const { mainUrl, tenantServers } = ctx.options;
  const names = Object.keys(tenantServers);
  const [main, s3, ...servers] = await Promise.all([
    timedCheck('the main database', timeoutMs, (signal) => probePostgres(mainUrl, 'the main database', timeoutMs, signal)),
    timedCheck('S3', timeoutMs, headBucket),
    ...names.map((name) => {
      const what = `the tenant server ${JSON.stringify(name)}`;
      const { adminUrl } = tenantServers[name]!;
      return timedCheck(what, timeoutMs, async (signal) => probePostgres(withDatabase(adminUrl, 'postgres'), what, timeoutMs, signal));
    }),
  ]);
  const checks: HealthChecks = { main: main!, servers: Object.fromEntries(names.map((name, i) => [name, servers[i]!])), s3: s3! };
  return { ok: checks.main.ok && checks.s3.ok && servers.every((c) => c.ok), checks };
}
