// The same documents service as examples/express, on Fastify. Start it with `npm run example:fastify`
// (embedded servers, data under .tenantdb/) or with TENANTDB_MAIN_URL and TENANTDB_S3_* set.
import Fastify, { type FastifyInstance } from 'fastify';
import { HTTP_STATUS, TenantDbError, type Platform, type Role } from '@org/tenantdb';
import { tenancyPlugin } from '@org/tenantdb/fastify';
import { signToken, userFromAuthorization } from '../shared/auth.js';
import { startExamplePlatform } from '../shared/platform.js';

const secret = process.env.TOKEN_SECRET ?? 'dev-only-secret-change-me';

type Body = Record<string, string | undefined> | undefined;

export async function createApp(platform: Platform): Promise<FastifyInstance> {
  const app = Fastify();
  const me = (authorization: string | undefined): string | undefined => userFromAuthorization(authorization, secret);

  // Routes outside the tenancy plugin's scope map the library's errors the same way it does.
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof TenantDbError) {
      return reply.status(HTTP_STATUS[err.code]).send({ error: { code: err.code, message: err.message } });
    }
    return reply.send(err);
  });

  app.post('/users', async (req, reply) => {
    const { firstName, lastName, email, password } = (req.body as Body) ?? {};
    return reply.status(201).send(await platform.users.create({ firstName: firstName!, lastName: lastName!, email: email!, password: password! }));
  });

  app.post('/login', async (req) => {
    const body = req.body as Body;
    const user = await platform.users.authenticate(body?.email ?? '', body?.password ?? '');
    return { token: signToken(user.id, secret), user };
  });

  app.post('/tenants', async (req, reply) => {
    const userId = me(req.headers.authorization);
    if (!userId) throw new TenantDbError('INVALID_CREDENTIALS', 'log in first');
    return reply.status(201).send(await platform.tenants.create({ name: (req.body as Body)?.name ?? '', createdBy: userId }));
  });

  // Everything under /t runs inside the tenant named by the x-tenant-id header, as the logged-in user.
  await app.register(
    async (t) => {
      await t.register(tenancyPlugin, {
        platform,
        tenant: (req) => req.headers['x-tenant-id'] as string | undefined,
        user: (req) => me(req.headers.authorization),
      });

      t.post('/members', async (req, reply) => {
        if (req.tenant.role !== 'admin') throw new TenantDbError('FORBIDDEN', 'only admins invite members');
        const body = req.body as Body;
        return reply.status(201).send(await platform.memberships.add(req.tenant.tenant.id, body?.userId ?? '', body?.role as Role));
      });

      t.get('/documents', (req) => req.tenant.documents.list({ cursor: (req.query as Body)?.cursor }));

      t.get('/documents/:id', async (req, reply) => {
        const { document, body } = await req.tenant.documents.download((req.params as { id: string }).id);
        return reply.type(document.mimeType).header('content-length', document.sizeBytes).send(body);
      });

      t.delete('/documents/:id', async (req, reply) => {
        await req.tenant.documents.delete((req.params as { id: string }).id);
        return reply.status(204).send();
      });

      // Uploads: any content type reaches the handler as the raw request stream, never buffered whole. A client
      // that disconnects mid-body aborts the upload (the request scope's signal): nothing is stored.
      await t.register(async (uploads) => {
        uploads.removeAllContentTypeParsers();
        uploads.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
        uploads.put('/documents/:filename', async (req, reply) => {
          const document = await req.tenant.documents.upload({
            filename: (req.params as { filename: string }).filename,
            body: req.raw,
            mimeType: req.headers['content-type'],
          });
          return reply.status(201).send(document);
        });
      });
    },
    { prefix: '/t' },
  );
  return app;
}

async function main(): Promise<void> {
  const { platform, stop } = await startExamplePlatform();
  const app = await createApp(platform);
  app.addHook('onClose', () => stop());
  const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
  console.log(`listening on ${address}`);
  const shutdown = (): void => void app.close().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (import.meta.filename === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
