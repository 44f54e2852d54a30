// A small documents service on Express: users, login, tenants, members with roles, and documents
// streamed from the request body to S3 without buffering. Start it with `npm run example:express`
// (embedded servers, data under .tenantdb/) or with TENANTDB_MAIN_URL and TENANTDB_S3_* set. With
// REDIS_URL set it also runs background jobs that keep their tenant (see examples/shared/jobs.ts).
import express from 'express';
import { TenantDbError, type Platform } from '@org/tenantdb';
import { errorHandler, tenancy } from '@org/tenantdb/express';
import { signToken, userFromAuthorization } from '../shared/auth.js';
import { startExampleJobs, type ExampleJobs } from '../shared/jobs.js';
import { startExamplePlatform } from '../shared/platform.js';

const secret = process.env.TOKEN_SECRET ?? 'dev-only-secret-change-me';

export interface AppOptions {
  /** Background jobs: with them, `POST /t/jobs` enqueues a summary of the tenant, run in the request's scope. */
  jobs?: ExampleJobs;
}

export function createApp(platform: Platform, { jobs }: AppOptions = {}): express.Express {
  const app = express();
  const json = express.json();
  const me = (req: express.Request): string | undefined => userFromAuthorization(req.header('authorization'), secret);

  app.post('/users', json, async (req, res) => {
    const { firstName, lastName, email, password } = req.body ?? {};
    res.status(201).json(await platform.users.create({ firstName, lastName, email, password }));
  });

  app.post('/login', json, async (req, res) => {
    const user = await platform.users.authenticate(req.body?.email, req.body?.password);
    res.json({ token: signToken(user.id, secret), user });
  });

  app.post('/tenants', json, async (req, res) => {
    const userId = me(req);
    if (!userId) throw new TenantDbError('INVALID_CREDENTIALS', 'log in first');
    res.status(201).json(await platform.tenants.create({ name: req.body?.name, createdBy: userId }));
  });

  // Everything under /t runs inside the tenant named by the x-tenant-id header, as the logged-in user.
  const t = express.Router();
  t.use(tenancy(platform, { tenant: (req) => req.header('x-tenant-id'), user: me }));

  t.post('/members', json, async (req, res) => {
    if (req.tenant.role !== 'admin') throw new TenantDbError('FORBIDDEN', 'only admins invite members');
    res.status(201).json(await platform.memberships.add(req.tenant.tenant.id, req.body?.userId, req.body?.role));
  });

  // The request itself is the body: streamed to S3 while hashed, never held in memory whole. A client that
  // disconnects mid-body aborts the upload (the request scope's signal): nothing is stored.
  t.put('/documents/:filename', async (req, res) => {
    const document = await req.tenant.documents.upload({
      filename: req.params.filename,
      body: req,
      mimeType: req.header('content-type'),
    });
    res.status(201).json(document);
  });

  t.get('/documents', async (req, res) => {
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    res.json(await req.tenant.documents.list({ cursor }));
  });

  t.get('/documents/:id', async (req, res) => {
    const { document, body } = await req.tenant.documents.download(req.params.id);
    res.setHeader('content-type', document.mimeType);
    res.setHeader('content-length', String(document.sizeBytes));
    body.pipe(res);
  });

  t.delete('/documents/:id', async (req, res) => {
    await req.tenant.documents.delete(req.params.id);
    res.status(204).end();
  });

  // The job keeps the request's tenant and user: the worker runs it in their scope, checked again then
  // (a user removed from the tenant meanwhile fails it with FORBIDDEN).
  if (jobs) {
    t.post('/jobs', json, async (req, res) => {
      const note = typeof req.body?.note === 'string' ? req.body.note : null;
      const job = await jobs.summaries.add('summary', { note });
      res.status(202).json({ id: job.id });
    });
  }

  app.use('/t', t);
  app.use(errorHandler());
  return app;
}

async function main(): Promise<void> {
  const { platform, stop } = await startExamplePlatform();
  const jobs = startExampleJobs(platform);
  const server = createApp(platform, { jobs }).listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : process.env.PORT;
    console.log(`listening on http://127.0.0.1:${port}`);
  });
  const shutdown = (): void => {
    server.close(() => void (jobs?.close() ?? Promise.resolve()).then(stop).then(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (import.meta.filename === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
