import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TenantDbError } from '../errors.js';
import type { TenantContext } from '../scope/types.js';
import { checkTenancyOptions, enterRequestScope, errorResponse, type TenancyOptions, type TenancyPlatform } from './request-scope.js';

export type { TenancyOptions, TenancyPlatform } from './request-scope.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's tenant scope, set by `tenancyPlugin`: the same object `currentTenant()` returns. */
    tenant: TenantContext;
  }
}

/** Options of {@link tenancyPlugin}. */
export interface TenancyPluginOptions extends TenancyOptions<FastifyRequest> {
  platform: TenancyPlatform;
}

const plugin: FastifyPluginCallback<TenancyPluginOptions> = (app, options, done) => {
  checkTenancyOptions(options.platform, options);
  app.decorateRequest('tenant', null as unknown as TenantContext);
  // A callback-style hook: `next()` runs inside the scope, and so does the handler after it.
  app.addHook('preHandler', (req, reply, next) => {
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
