// A TypeScript consumer of `@org/tenantdb/express` (see index.ts). Needs express and @types/express.
import express from 'express';
import { createPlatform, type Document, type Page, type TenantContext } from '@org/tenantdb';
import { errorHandler, healthRoute, tenancy, type HealthRouteOptions, type TenancyOptions } from '@org/tenantdb/express';

const platform = createPlatform({ mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform', s3: { bucket: 'tenantdb' } });

const options: TenancyOptions<express.Request> = {
  tenant: (req) => req.header('x-tenant-id'),
  user: async (req) => req.header('x-user-id') ?? null,
};

const health: HealthRouteOptions = { timeoutMs: 1000 };
const app = express();
app.get('/healthz', healthRoute(platform, health));
app.use(tenancy(platform, options));
app.get('/documents', async (req, res) => {
  // `req.tenant` comes from the package's augmentation of Express.Request.
  const ctx: TenantContext = req.tenant;
  const page: Page<Document> = await ctx.documents.list({ limit: 20 });
  res.json(page);
});
app.use(errorHandler());

export default app;
