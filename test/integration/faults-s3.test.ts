import { randomBytes, randomUUID } from 'node:crypto';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { errorName } from '../../src/storage/sdk-errors.js';
import { LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';
import { listKeys, useTestPlatform } from '../support/env.js';
import { rejectionCode, rejectionOf } from '../support/errors.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-s3.js';
import { startPrivateS3, type PrivateS3 } from '../support/private-s3.js';

const MIB = 1024 * 1024;
const BUCKET = 'faults';

/**
 * S3 failing under the documents API, on an s3rver of each test's own behind a fault proxy (which also gives
 * s3rver the ListMultipartUploads and AbortMultipartUpload it lacks). Uploads cut by a stopped server are in
 * documents-s3-failure.test.ts and s3-outage.test.ts; these check what is left behind: open multipart
 * uploads, rows, objects.
 */
describe('faults: S3 down, failing or read-only', () => {
  const env = useTestPlatform();
  const user = randomUUID();
  const cleanups: Array<() => Promise<void>> = [];
  let tenant: Tenant;

  interface FaultS3 {
    s3: PrivateS3;
    proxy: FaultProxy;
    platform: Platform;
    /** A client through the proxy, as the platform's. */
    client: S3Client;
  }

  async function faultS3(): Promise<FaultS3> {
    const s3 = await startPrivateS3(BUCKET);
    const proxy = await startFaultProxy(s3.endpoint, s3.directory);
    const client = new S3Client({ endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS });
    const platform = env.platform({
      s3: {
        bucket: BUCKET,
        endpoint: proxy.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: LOCAL_S3_CREDENTIALS,
        prefix: env.prefix,
        partSize: 5 * MIB,
      },
    });
    cleanups.push(async () => {
      await platform.close();
      client.destroy();
      await proxy.close();
      await s3.dispose();
    });
    return { s3, proxy, platform, client };
  }

  /** The multipart uploads S3 reports as open under the platform's prefix. */
  async function openUploads(client: S3Client): Promise<string[]> {
    const res = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: env.prefix }));
    return (res.Uploads ?? []).map((u) => u.Key!);
  }

  async function rowCount(platform: Platform): Promise<{ documents: number; files: number }> {
    const { rows } = await platform.withTenant(tenant, (ctx) =>
      ctx.query<{ documents: number; files: number }>(
        'SELECT (SELECT count(*) FROM documents)::int AS documents, (SELECT count(*) FROM files)::int AS files',
      ),
    );
    return rows[0]!;
  }

  function upload(platform: Platform, filename: string, body: unknown): Promise<unknown> {
    return platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename, body: body as Buffer, userId: user }));
  }

  beforeAll(async () => {
    const setup = await env.initPlatform();
    tenant = await setup.tenants.create({ name: 'Faults S3' });
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0)) await fn();
  });

  it('S3 gone mid-upload: STORAGE and no rows; the multipart upload it could not abort is aborted by the sweep once S3 is back', async () => {
    const { s3, proxy, platform, client } = await faultS3();
    async function* body(): AsyncGenerator<Uint8Array> {
      // Part 1 goes once a byte of part 2 has come; S3 stops once it is stored.
      for (let i = 0; i < 6; i++) yield randomBytes(MIB);
      await proxy.waitFor((r) => r.op === 'UploadPart' && r.status === 200);
      await s3.stop();
      for (let i = 0; i < 6; i++) yield randomBytes(MIB);
    }
    const err = await rejectionOf(upload(platform, 'cut.bin', body()));
    expect(err.code).toBe('STORAGE');
    expect(err.cause).toBeInstanceOf(Error);
    // It tried to abort, and could not: S3 was down.
    expect(proxy.log.filter((r) => r.op === 'AbortMultipartUpload').map((r) => r.status)).not.toHaveLength(0);
    expect(proxy.log.filter((r) => r.op === 'AbortMultipartUpload').every((r) => r.status === 0)).toBe(true);
    expect(await rowCount(platform)).toEqual({ documents: 0, files: 0 });

    await s3.restart();
    const left = await openUploads(client);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^${env.prefix}tenants/${tenant.id}/files/`));
    expect(await platform.storage.sweep({ olderThanMs: 0 })).toMatchObject({ objectsDeleted: 0, uploadsAborted: 1 });
    expect(await openUploads(client)).toEqual([]);
    expect(await proxy.openUploads(BUCKET)).toEqual([]);
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([]);
  });

  it('an UploadPart that fails: STORAGE (retryable), the library aborts its own multipart upload, nothing is left', async () => {
    const { proxy, platform, client } = await faultS3();
    // Part 1 is stored; part 2 fails every time the SDK sends it.
    proxy.failPart = (n) => n >= 2;
    const err = await rejectionOf(upload(platform, 'part-fails.bin', randomBytes(12 * MIB)));
    expect(err.code).toBe('STORAGE');
    expect(err.retryable).toBe(true);
    expect(errorName(err.cause)).toBe('InternalError');
    expect(proxy.log.some((r) => r.op === 'UploadPart' && r.partNumber === 1 && r.status === 200)).toBe(true);
    expect(proxy.log.filter((r) => r.op === 'AbortMultipartUpload').map((r) => r.status)).toEqual([204]);
    expect(await openUploads(client)).toEqual([]);
    expect(await proxy.openUploads(BUCKET)).toEqual([]);
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([]);
    expect(await rowCount(platform)).toEqual({ documents: 0, files: 0 });
  });

  it('S3 down during a delete: the document and its file row go, delete resolves, and the sweep removes the object once S3 is back', async () => {
    const { s3, platform, client } = await faultS3();
    const doc = (await upload(platform, 'delete-me.txt', Buffer.from('delete me'))) as { id: string; fileId: string };
    const key = `${env.prefix}tenants/${tenant.id}/files/${doc.fileId}`;
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([key]);

    await s3.stop();
    // The rows are the truth: they go in one transaction, then the object's delete fails and is left to
    // the sweep. No row refers to an object that may be gone.
    await platform.withTenant(tenant, (ctx) => ctx.documents.delete(doc.id));
    expect(await rejectionCode(platform.withTenant(tenant, (ctx) => ctx.documents.get(doc.id)))).toBe('NOT_FOUND');
    expect(await rowCount(platform)).toEqual({ documents: 0, files: 0 });

    await s3.restart();
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([key]);
    expect(await platform.storage.sweep({ olderThanMs: 0 })).toMatchObject({ objectsDeleted: 1 });
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([]);
  });

  it('a read-only bucket: uploads fail with STORAGE (AccessDenied, not retryable), nothing half written; writable again, they work', async () => {
    const { proxy, platform, client } = await faultS3();
    proxy.readOnly = true;
    for (const [name, body] of [
      ['small.txt', Buffer.from('small')],
      ['large.bin', randomBytes(11 * MIB)],
    ] as const) {
      const err = await rejectionOf(upload(platform, name, body));
      expect(err.code).toBe('STORAGE');
      expect(err.retryable).toBe(false);
      expect(errorName(err.cause)).toBe('AccessDenied');
    }
    // Both kinds of write were refused: PutObject for the small body, CreateMultipartUpload for the large one.
    expect(proxy.log.filter((r) => r.status === 403).map((r) => r.op)).toEqual(expect.arrayContaining(['PutObject', 'CreateMultipartUpload']));
    expect(await rowCount(platform)).toEqual({ documents: 0, files: 0 });
    expect(await listKeys(client, BUCKET, env.prefix)).toEqual([]);
    expect(await openUploads(client)).toEqual([]);

    proxy.readOnly = false;
    const doc = (await upload(platform, 'small.txt', Buffer.from('small'))) as { id: string };
    expect(await rowCount(platform)).toEqual({ documents: 1, files: 1 });
    expect(await listKeys(client, BUCKET, env.prefix)).toHaveLength(1);
    await platform.withTenant(tenant, (ctx) => ctx.documents.delete(doc.id));
  });
});
