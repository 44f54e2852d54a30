import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { TenantDbError } from '../errors.js';
import type { TenantContext } from '../scope/types.js';
import { checkHealthRoute, healthResponse, type HealthPlatform, type HealthRouteOptions } from './health-route.js';
import { checkTenancyOptions, enterRequestScope, errorResponse, type TenancyOptions, type TenancyPlatform } from './request-scope.js';

export type { TenancyOptions, TenancyPlatform } from './request-scope.js';
export type { HealthPlatform, HealthRouteOptions } from './health-route.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request's tenant scope, set by `tenancy()`: the same object `currentTenant()` returns. */
      tenant: TenantContext;
    }
  }
}

/**
 * Express middleware: resolves the request's tenant (and acting user), then runs the rest of the
 * request inside `platform.withTenant`, with the scope as `req.tenant`.
 *
 * @example
 * ```ts
 * app.use(tenancy(platform, { tenant: (req) => req.header('x-tenant-id'), user: (req) => req.session?.userId }));
 * app.get('/documents', async (req, res) => res.json(await req.tenant.documents.list({})));
 * app.use(errorHandler());
 * ```
 */
export function tenancy(platform: TenancyPlatform, options: TenancyOptions<Request>): RequestHandler {
  checkTenancyOptions(platform, options);
  return (req, res, next) => {
    enterRequestScope(platform, options, req, req, res, (ctx) => {
      req.tenant = ctx;
      next();
    }).catch(next);
  };
}

/**
 * Express error handler: a `TenantDbError` becomes its HTTP status (see the README's table) with the
 * body `{ error: { code, message, retryable } }`, and `Retry-After: 1` when `retryable`; any other error
 * passes on untouched.
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!(err instanceof TenantDbError) || res.headersSent) {
      next(err);
      return;
    }
    const { status, headers, body } = errorResponse(err);
    res.status(status).set(headers).json(body);
  };
}

/**
 * Express handler of a health route: runs `platform.health(options)` and answers 200 with the report as
 * JSON when every check is ok, else 503 with the same report; `Cache-Control: no-store`. Mount it before
 * `tenancy()`, which would otherwise ask the probe for a tenant. A bad `timeoutMs` throws VALIDATION at once.
 *
 * @example
 * ```ts
 * app.get('/healthz', healthRoute(platform, { timeoutMs: 1000 }));
 * app.use(tenancy(platform, { tenant: (req) => req.header('x-tenant-id') }));
 * ```
 */
export function healthRoute(platform: HealthPlatform, options?: HealthRouteOptions): RequestHandler {
  const checked = checkHealthRoute(platform, options);
  return (_req, res, next) => {
    healthResponse(platform, checked).then(({ status, headers, body }) => {
      res.status(status).set(headers).json(body);
    }, next);
  };
}
