import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TenantDbError, type Platform, type Tenant, type TenantContext, type User } from '../../src/index.js';
import { errorHandler, tenancy, type TenancyPlatform } from '../../src/integrations/express.js';
import { tenancyPlugin } from '../../src/integrations/fastify.js';
import { listKeys, testS3Client, useTestPlatform, useTestS3Client } from '../support/env.js';
import { createdSince, listedUploads, unfinishedUploads, watchMultipart } from '../support/hostile-s3.js';
import { createTestUser } from '../support/users.js';

const MIB = 1024 * 1024;
const BODY_SIZE = 20 * MIB;

const env = useTestPlatform({ pool: { idleMs: 200 } });
const s3 = useTestS3Client();
const bucket = inject('s3Bucket');
// The platform's own S3 client, watched: which multipart uploads it started, and what it sent to end each.
const platformS3 = testS3Client();
const multipart = watchMultipart(platformS3);
let platform: Platform;
let tenant: Tenant;
let ada: User;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  platform = await env.initPlatform({ s3: { ...env.options().s3, client: platformS3 } });
  ada = await createTestUser(platform, 'Ada');
  tenant = await platform.tenants.create({ name: 'Disconnects', createdBy: ada.id });
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await platform.close();
  platformS3.destroy();
});

/** What the server side of one upload request did. */
interface ServerUpload {
  /** Settles with the document, or the error, once the upload is over. */
  settled: Promise<unknown>;
  signal: AbortSignal | undefined;
  bytesSent: number;
}

/** A test app's state: its uploads, and the tenant scopes open right now. */
interface Probe {
  uploads: ServerUpload[];
  openScopes: number;
}

/** The platform as the integrations see it, counting the scopes open at any moment. */
function countingPlatform(probe: Probe): TenancyPlatform {
  return {
    withTenant: (ref, fn, options) => {
      probe.openScopes++;
      return platform.withTenant(ref, fn, options).finally(() => probe.openScopes--);
    },
  };
}

/** Starts the upload of a request body inside the request's scope and records it in `probe`. */
function startUpload(probe: Probe, ctx: TenantContext, filename: string, body: Readable): Promise<unknown> {
  const record: ServerUpload = { settled: Promise.resolve(), signal: ctx.signal, bytesSent: 0 };
  const upload = ctx.documents.upload({ filename, body, onProgress: (p) => (record.bytesSent = p.bytesSent) });
  record.settled = upload.then(
    (doc) => doc,
    (err: unknown) => err,
  );
  probe.uploads.push(record);
  return upload;
}

async function expressServer(probe: Probe): Promise<{ port: number; close: () => Promise<void> }> {
  const app = express();
  app.use(tenancy(countingPlatform(probe), { tenant: (req) => req.header('x-tenant-id'), user: () => ada.id }));
  app.put('/documents/:name', async (req, res, next) => {
    try {
      res.status(201).json(await startUpload(probe, req.tenant, req.params.name, req));
    } catch (err) {
      next(err);
    }
  });
  app.use(errorHandler());
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function fastifyServer(probe: Probe): Promise<{ port: number; close: () => Promise<void> }> {
  const app = Fastify();
  await app.register(async (scope) => {
    await scope.register(tenancyPlugin, {
      platform: countingPlatform(probe),
      tenant: (req) => req.headers['x-tenant-id'] as string | undefined,
      user: () => ada.id,
    });
    // The raw request stream reaches the handler unread, as in examples/fastify.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.put('/documents/:name', async (req, reply) =>
      reply.status(201).send(await startUpload(probe, req.tenant, (req.params as { name: string }).name, req.raw)),
    );
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** Resolves once `check()` is true; fails after `timeoutMs`. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Over a raw socket: sends the headers of a PUT of `BODY_SIZE` bytes and body bytes until `stop()` says
 * so, then destroys the socket (no FIN, no more bytes): a client that went away mid-body.
 */
async function uploadThenDrop(port: number, filename: string, stop: (written: number) => boolean): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {}); // the server may reset it first
  socket.write(
    `PUT /documents/${filename} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-tenant-id: ${tenant.id}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${BODY_SIZE}\r\n\r\n`,
  );
  const chunk = randomBytes(256 * 1024);
  let written = 0;
  while (!stop(written) && written < BODY_SIZE - chunk.length) {
    written += chunk.length;
    if (!socket.write(chunk)) await once(socket, 'drain');
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.destroy();
  return written;
}

/** One complete upload (fetch), for the contrast: the request's signal stays unaborted. */
async function uploadWhole(port: number, filename: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/documents/${filename}`, {
    method: 'PUT',
    headers: { 'x-tenant-id': tenant.id, 'content-type': 'application/octet-stream' },
    body: randomBytes(64 * 1024),
  });
  await res.arrayBuffer();
  return res.status;
}

async function tenantRows(): Promise<number> {
  const { rows } = await platform.withTenant(tenant, (ctx) =>
    ctx.query<{ n: string }>('SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM files) AS n'),
  );
  return Number(rows[0]!.n);
}

describe.each([
  ['Express (body: req)', expressServer],
  ['Fastify (body: req.raw)', fastifyServer],
])('%s: a client that drops its socket mid-body', (_name, start) => {
  const probe: Probe = { uploads: [], openScopes: 0 };
  let server: { port: number; close: () => Promise<void> };
  beforeAll(async () => {
    server = await start(probe);
  });
  afterAll(() => server.close());

  const prefix = (): string => `${env.prefix}tenants/${tenant.id}/`;

  /**
   * Drops the client once `stop` says so, then checks that nothing is left: the upload failed as aborted,
   * no object, no rows, no multipart upload open (`multiparts` of them were started on the server: each
   * was sent an abort, none completed; where the server lists open uploads, it lists none; s3rver implements
   * neither the listing nor the abort, so there the abort sent is what can be checked), the scope ended
   * and its connections went back.
   */
  async function dropAndCheck(stop: (written: number) => boolean, multiparts: number): Promise<void> {
    const before = probe.uploads.length;
    const startedBefore = new Set(multipart.created.keys());
    const written = await uploadThenDrop(server.port, `dropped-${before}.bin`, stop);
    expect(written).toBeLessThan(BODY_SIZE);
    await eventually('the upload started', () => probe.uploads.length === before + 1);
    const upload = probe.uploads[before]!;
    // The upload settles (bounded): rejected by the request's signal, aborted when the response closed unfinished.
    const outcome = await Promise.race([upload.settled, new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000))]);
    expect(outcome).toBeInstanceOf(TenantDbError);
    expect(outcome).toMatchObject({ code: 'STORAGE', retryable: false, cause: { name: 'AbortError' } });
    expect(upload.signal?.aborted).toBe(true);
    expect((outcome as TenantDbError).cause).toBe(upload.signal?.reason);
    // Nothing stored: no object under the tenant's prefix (allowing the clean-up to land), no rows.
    await eventually('no object under the tenant prefix', async () => (await listKeys(s3, bucket, prefix())).length === 0);
    expect(await tenantRows()).toBe(0);
    const started = createdSince(multipart, startedBefore);
    expect(started).toHaveLength(multiparts);
    // Sent by the upload's clean-up before it settled: a short wait is plenty.
    await eventually('every multipart upload started was sent an abort', () => unfinishedUploads(multipart, started).length === 0, 3_000);
    expect(started.filter((id) => multipart.completed.has(id))).toEqual([]);
    const listed = await listedUploads(s3, bucket, prefix());
    if (listed !== 'not listable') expect(listed).toEqual([]);
    // The request's scope ended, and no connection is held: the idle pool closes (pool.idleMs 200).
    await eventually('the scope ended', () => probe.openScopes === 0);
    await eventually('every tenant connection closed', () => platform.stats().connections.open === 0);
    expect(unhandled).toEqual([]);
  }

  it('aborts the upload after 1 MiB, before any byte reached S3: nothing left behind', () => dropAndCheck((written) => written >= MIB, 0));

  it('aborts the upload once its multipart upload exists and the first 8 MiB part is on its way: nothing left behind, no open multipart upload', () => {
    const known = multipart.created.size;
    return dropAndCheck(() => multipart.created.size > known && (probe.uploads.at(-1)?.bytesSent ?? 0) >= 9 * MIB, 1);
  });

  // The client goes while CreateMultipartUpload is on its way: the server creates the upload. Were the SDK
  // call aborted by the request's signal, the library would never learn the upload's id nor abort it; it is
  // sent without the signal, and what it created is aborted. Made deterministic by withholding the answer
  // until the signal aborts (see watchMultipart).
  it('aborts the upload while CreateMultipartUpload is in flight: the upload the server created is aborted too', async () => {
    const known = multipart.created.size;
    multipart.withholdCreates = true;
    try {
      await dropAndCheck(() => multipart.created.size > known, 1);
    } finally {
      multipart.withholdCreates = false;
    }
  });

  it('leaves the signal alone when the response completes: a whole upload succeeds, its scope ends', async () => {
    const before = probe.uploads.length;
    expect(await uploadWhole(server.port, `whole-${before}.bin`)).toBe(201);
    const upload = probe.uploads[before]!;
    expect(await upload.settled).toMatchObject({ sizeBytes: 64 * 1024 });
    await eventually('the scope ended', () => probe.openScopes === 0);
    expect(upload.signal?.aborted).toBe(false);
    await platform.withTenant(tenant, async (ctx) => {
      for (const doc of (await ctx.documents.list({})).items) await ctx.documents.delete(doc.id);
    });
    expect(unhandled).toEqual([]);
  });
});
