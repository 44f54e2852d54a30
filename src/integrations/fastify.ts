import type { FastifyPluginCallback, FastifyRequest, RouteHandlerMethod } from 'fastify';
import fp from 'fastify-plugin';
import { TenantDbError } from '../errors.js';
import type { TenantContext } from '../scope/types.js';
import { checkHealthRoute, healthResponse, type HealthPlatform, type HealthRouteOptions } from './health-route.js';
import { checkTenancyOptions, enterRequestScope, errorResponse, type TenancyOptions, type TenancyPlatform } from './request-scope.js';

export type { TenancyOptions, TenancyPlatform } from './request-scope.js';
export type { HealthPlatform, HealthRouteOptions } from './health-route.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's tenant scope, set by `tenancyPlugin`: the same object `currentTenant()` returns. */
    tenant: TenantContext;
  }
}

/** The `health` option of {@link tenancyPlugin}: a health route, outside the tenancy. */
export interface TenancyHealthOptions extends HealthRouteOptions {
  /** The route's path. Default: `/healthz`. */
  path?: string;
}

/** Options of {@link tenancyPlugin}. */
export interface TenancyPluginOptions extends TenancyOptions<FastifyRequest> {
  platform: TenancyPlatform & Partial<HealthPlatform>;
  /**
   * Also registers `GET <path>` (see {@link healthRoute}), which needs no tenant: 200 with
   * `platform.health()`'s report when every check is ok, else 503.
   */
  health?: TenancyHealthOptions;
}

/**
 * Fastify handler of a health route: runs `platform.health(options)` and answers 200 with the report as
 * JSON when every check is ok, else 503 with the same report; `Cache-Control: no-store`. Under
 * {@link tenancyPlugin} use its `health` option instead, which leaves the route out of the tenancy. A bad
 * `timeoutMs` throws VALIDATION at once.
 *
 * @example
 * ```ts
 * app.get('/healthz', healthRoute(platform, { timeoutMs: 1000 }));
 * ```
 */
export function healthRoute(platform: HealthPlatform, options?: HealthRouteOptions): RouteHandlerMethod {
  const checked = checkHealthRoute(platform, options);
  return async (_req, reply) => {
    const { status, headers, body } = await healthResponse(platform, checked);
    return reply.status(status).headers(headers).send(body);
  };
}

const plugin: FastifyPluginCallback<TenancyPluginOptions> = (app, options, done) => {
  checkTenancyOptions(options.platform, options);
  // The health route is marked in its config (fastify binds handlers, so the handler itself cannot tell it).
  const mark = Symbol('tenantdb.health');
  if (options.health !== undefined) {
    const config = { [mark]: true };
    app.get(options.health.path ?? '/healthz', { config }, healthRoute(options.platform as HealthPlatform, options.health));
  }
  app.decorateRequest('tenant', null as unknown as TenantContext);
  // A callback-style hook: `next()` runs inside the scope, and so does the handler after it.
  app.addHook('preHandler', (req, reply, next) => {
    // The health route names no tenant.
    if ((req.routeOptions.config as unknown as Record<symbol, unknown>)[mark] === true) {
      next();
      return;
    }
    enterRequestScope(options.platform, options, req, req.raw, reply.raw, (ctx) => {
      req.tenant = ctx;
      next();
    }).catch((err: unknown) => next(err as Error));
  });
  const previous = app.errorHandler;
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof TenantDbError) {
      const { status, headers, body } = errorResponse(err);
      return reply.status(status).headers(headers).send(body);
    }
    return previous.call(app, err, req, reply);
  });
  done();
};

/**
 * Fastify plugin: every route registered in the same scope runs inside `platform.withTenant`, with the
 * scope as `req.tenant`; `TenantDbError`s become their HTTP status with `{ error: { code, message, retryable } }` (and
 * `Retry-After: 1` when `retryable`).
 *
 * @example
 * ```ts
 * await app.register(tenancyPlugin, { platform, tenant: (req) => req.headers['x-tenant-id'] as string });
 * app.get('/documents', (req) => req.tenant.documents.list({}));
 * ```
 */
export const tenancyPlugin = fp(plugin, { name: '@org/tenantdb', fastify: '5.x' });
