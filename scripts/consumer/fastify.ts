// A TypeScript consumer of `@org/tenantdb/fastify` (see index.ts). Needs fastify.
import Fastify from 'fastify';
import { createPlatform, type Document, type Page, type TenantContext } from '@org/tenantdb';
import { healthRoute, tenancyPlugin, type TenancyPluginOptions } from '@org/tenantdb/fastify';

const platform = createPlatform({ mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform', s3: { bucket: 'tenantdb' } });

const options: TenancyPluginOptions = {
  platform,
  tenant: (req) => {
    const header = req.headers['x-tenant-id'];
    return typeof header === 'string' ? header : undefined;
  },
  health: { path: '/healthz', timeoutMs: 1000 },
};

export async function build(): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify();
  await app.register(tenancyPlugin, options);
  // An app without tenancyPlugin (a separate probe port, say): the route on its own.
  const probe = Fastify();
  probe.get('/healthz', healthRoute(platform, { timeoutMs: 1000 }));
  await probe.ready();
  app.get('/documents', async (req): Promise<Page<Document>> => {
    // `req.tenant` comes from the package's augmentation of FastifyRequest.
    const ctx: TenantContext = req.tenant;
    return ctx.documents.list({ limit: 20 });
  });
  return app;
}
