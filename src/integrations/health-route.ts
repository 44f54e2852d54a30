import { TenantDbError } from '../errors.js';
import { healthTimeoutMs, type HealthOptions, type HealthReport } from '../platform/health.js';

/** The part of a platform a health route uses. */
export interface HealthPlatform {
  health(options?: HealthOptions): Promise<HealthReport>;
}

/** Options of a health route: those of `platform.health()` (`timeoutMs`, default 2000). */
export type HealthRouteOptions = HealthOptions;

/** The HTTP answer of a health route, the same in both integrations. */
export interface HealthResponse {
  /** 200 when every check is ok, else 503. */
  status: number;
  /** `Cache-Control: no-store`: a cached answer would hide an outage. */
  headers: Record<string, string>;
  body: HealthReport;
}

/** Checks a health route's platform and options at once (VALIDATION), as the tenancy integrations do. @internal */
export function checkHealthRoute(platform: unknown, options: HealthRouteOptions | undefined): HealthOptions {
  if (typeof (platform as HealthPlatform | undefined)?.health !== 'function') {
    throw new TenantDbError('VALIDATION', 'a health route needs a platform from createPlatform()');
  }
  return { timeoutMs: healthTimeoutMs(options) };
}

/** Runs the checks and makes the answer: 200 and the report when ok, 503 and the report otherwise. @internal */
export async function healthResponse(platform: HealthPlatform, options: HealthOptions): Promise<HealthResponse> {
  const report = await platform.health(options);
  return { status: report.ok ? 200 : 503, headers: { 'cache-control': 'no-store' }, body: report };
}
