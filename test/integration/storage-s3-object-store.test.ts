import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../src/util/logger.js';
import {
  fileObjectKey,
  parseFileObjectKey,
  tenantFilesPrefix,
  tenantPrefix,
  tenantsPrefix,
} from '../../src/storage/object-keys.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from '../../src/storage/s3-object-store.js';
import { deletePrefix, testS3Client, uniqueName } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { bytesOf } from '../support/streams.js';

const bucket = inject('s3Bucket');
const root = `${uniqueName('objstore')}/`;
const admin = testS3Client();
const stores: S3ObjectStore[] = [];

function makeStore(extra: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore {
  const store = new S3ObjectStore(
    { bucket, endpoint: inject('s3Endpoint'), region: 'us-east-1', credentials: inject('s3Credentials'), ...extra },
    silentLogger,
  );
  stores.push(store);
  return store;
}

afterAll(async () => {
  for (const s of stores) s.close();
  await deletePrefix(admin, bucket, root);
  admin.destroy();
});

async function keysUnder(store: S3ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys;
}

describe('S3ObjectStore', () => {
  const store = makeStore();

  it('puts, heads, gets and deletes an object', async () => {
    const key = `${root}basic/one`;
    const bytes = randomBytes(1234);
    const put = await store.put(key, Readable.from([bytes]), { contentType: 'application/pdf' });
    expect(put.size).toBe(1234);

    const info = await store.head(key);
    expect(info?.size).toBe(1234);
    expect(info?.lastModified).toBeInstanceOf(Date);
    const raw = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(raw.ContentType).toBe('application/pdf');

    expect(await bytesOf(await store.get(key))).toEqual(bytes);

    await store.delete(key);
    expect(await store.head(key)).toBeNull();
  });

  it('stores an empty body as an empty object', async () => {
    const key = `${root}basic/empty`;
    expect((await store.put(key, Readable.from([], { objectMode: false }))).size).toBe(0);
    expect((await bytesOf(await store.get(key))).length).toBe(0);
  });

  it('reports a missing key: head null, get NOT_FOUND, delete succeeds', async () => {
    const key = `${root}basic/missing`;
    expect(await store.head(key)).toBeNull();
    expect(await rejectionCode(store.get(key))).toBe('NOT_FOUND');
    await expect(store.delete(key)).resolves.toBeUndefined();
  });

  it('releases the connection when a reader abandons a download', async () => {
    const key = `${root}basic/abandoned`;
    await store.put(key, Readable.from([randomBytes(3 * 1024 * 1024)]));
    for (let i = 0; i < 60; i++) {
      const body = await store.get(key);
      body.destroy();
    }
    // 60 abandoned downloads over a 50-socket pool: if they held their sockets, this would wait forever.
    expect((await bytesOf(await store.get(key))).length).toBe(3 * 1024 * 1024);
  });

  it('lists the objects under a prefix in key order with their sizes, across pages', async () => {
    const small = makeStore({ listPageSize: 2 });
    const prefix = `${root}list/`;
    for (const [name, size] of [['c', 3], ['a', 1], ['b', 2], ['d/e', 4], ['e', 5]] as const) {
      await store.put(`${prefix}${name}`, Readable.from([Buffer.alloc(size)]));
    }
    await store.put(`${root}list-other`, Readable.from([Buffer.alloc(1)]));
    const listed: Array<{ key: string; size: number }> = [];
    for await (const o of small.list(prefix)) {
      expect(o.lastModified).toBeInstanceOf(Date);
      listed.push({ key: o.key, size: o.size });
    }
    expect(listed).toEqual([
      { key: `${prefix}a`, size: 1 },
      { key: `${prefix}b`, size: 2 },
      { key: `${prefix}c`, size: 3 },
      { key: `${prefix}d/e`, size: 4 },
      { key: `${prefix}e`, size: 5 },
    ]);
  });

  it('deletes every object under a prefix, more than one page of them, and nothing else', async () => {
    const prefix = `${root}many/`;
    const count = 1100; // more than one 1000-key page, so both ListObjects and DeleteObjects page
    const keys = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(
        keys.slice(i, i + 100).map((Key) => admin.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }))),
      );
    }
    const neighbour = `${root}many-neighbour`; // shares the text but not the folder
    await store.put(neighbour, Readable.from([Buffer.from('keep')]));

    expect(await store.deletePrefix(prefix)).toBe(count);
    expect(await keysUnder(store, prefix)).toEqual([]);
    expect(await store.head(neighbour)).not.toBeNull();
    expect(await store.deletePrefix(prefix)).toBe(0);
  });

  it('pages deletePrefix by the list page size', async () => {
    const paged = makeStore({ listPageSize: 3 });
    const prefix = `${root}paged/`;
    for (let i = 0; i < 10; i++) await store.put(`${prefix}${i}`, Readable.from([Buffer.from('x')]));
    expect(await paged.deletePrefix(prefix)).toBe(10);
    expect(await keysUnder(store, prefix)).toEqual([]);
  });

  it('refuses an empty prefix for deletePrefix (VALIDATION), which would empty the bucket', async () => {
    expect(await rejectionCode(store.deletePrefix(''))).toBe('VALIDATION');
  });

  it('presigns a GET URL that serves the bytes, with the download name and type', async () => {
    const key = `${root}presign/file`;
    const bytes = randomBytes(4096);
    await store.put(key, Readable.from([bytes]));
    const url = await store.presign(key, { expiresIn: 60, filename: 'résumé "final".pdf', contentType: 'application/pdf' });
    expect(url).toMatch(/^https?:\/\//);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    const disposition = res.headers.get('content-disposition') ?? '';
    expect(disposition).toContain('attachment');
    expect(disposition).toContain("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf");

    const plain = await fetch(await store.presign(key, { expiresIn: 60 }));
    expect(Buffer.from(await plain.arrayBuffer())).toEqual(bytes);
  });

  it('refuses a presign lifetime outside 1 s to 7 days (VALIDATION)', async () => {
    const key = `${root}presign/file`;
    for (const expiresIn of [0, -1, 1.5, 7 * 24 * 3600 + 1, Number.NaN, undefined]) {
      expect(await rejectionCode(store.presign(key, { expiresIn: expiresIn as number }))).toBe('VALIDATION');
    }
  });

  it('aborts stale multipart uploads where the server lists them, and says 0 honestly where it does not', async () => {
    const prefix = `${root}mpu/`;
    const key = `${prefix}stale`;
    const created = await admin.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    let listable = true;
    try {
      await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    } catch (err) {
      if ((err as Error).name !== 'NotImplemented') throw err;
      listable = false;
    }
    // Nothing is stale yet when the cut-off lies before the upload started.
    expect(await store.abortStaleUploads(prefix, new Date(Date.now() - 3_600_000))).toBe(0);
    const aborted = await store.abortStaleUploads(prefix, new Date(Date.now() + 60_000));
    if (listable) {
      expect(aborted).toBe(1);
      const left = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      expect(left.Uploads ?? []).toEqual([]);
    } else {
      // s3rver implements neither ListMultipartUploads nor AbortMultipartUpload.
      expect(aborted).toBe(0);
      await admin.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId })).catch(() => {});
    }
  });

  it('turns SDK failures into STORAGE with the cause kept', async () => {
    const nowhere = makeStore({ bucket: `missing-${randomBytes(4).toString('hex')}` });
    const key = `${root}x`;
    for (const attempt of [
      () => nowhere.put(key, Readable.from([Buffer.from('x')])),
      () => nowhere.get(key),
      () => nowhere.delete(key),
      () => nowhere.deletePrefix(root),
      () => keysUnder(nowhere, root),
    ]) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e as { code?: string; cause?: unknown },
      );
      expect(err?.code).toBe('STORAGE');
      expect(err?.cause).toBeInstanceOf(Error);
    }
  });

  it('uses an injected S3Client and leaves it open on close()', async () => {
    const client = testS3Client();
    try {
      const injected = new S3ObjectStore({ bucket, client }, silentLogger);
      expect(injected.client).toBe(client);
      const key = `${root}injected/one`;
      await injected.put(key, Readable.from([Buffer.from('via injected client')]));
      injected.close();
      injected.close(); // idempotent
      expect(await rejectionCode(injected.head(key))).toBe('CLOSED');
      // The host's client still works after the store is closed.
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ContentLength).toBe('via injected client'.length);
    } finally {
      client.destroy();
    }
  });

  it('rejects bad options with VALIDATION at construction', () => {
    const base = { bucket, endpoint: inject('s3Endpoint') };
    for (const bad of [
      { ...base, bucket: '' },
      { ...base, partSize: 1024 },
      { ...base, queueSize: 0 },
      { ...base, listPageSize: 1001 },
      { ...base, socketTimeoutMs: -5 },
    ]) {
      expect(() => new S3ObjectStore(bad, silentLogger)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });
});

describe('object keys', () => {
  const store = makeStore();
  const prefix = `${root}keys/`;

  it('builds <prefix>tenants/<tenant id>/files/<file id>, in lower case', () => {
    const tenant = '6F1C2D3E-0000-4000-8000-00000000000A';
    const file = '0b7e0000-1111-4222-8333-444455556666';
    expect(tenantsPrefix('app/')).toBe('app/tenants/');
    expect(tenantPrefix('app/', tenant)).toBe('app/tenants/6f1c2d3e-0000-4000-8000-00000000000a/');
    expect(tenantFilesPrefix('', tenant)).toBe('tenants/6f1c2d3e-0000-4000-8000-00000000000a/files/');
    expect(fileObjectKey('app/', tenant, file)).toBe(`app/tenants/6f1c2d3e-0000-4000-8000-00000000000a/files/${file}`);
  });

  it('refuses ids that are not UUIDs (VALIDATION): a key never comes from a filename', () => {
    const ok = randomUUID();
    for (const bad of ['', 'report.pdf', '../x', `${ok}/..`, `${ok} `, 'x'.repeat(36)]) {
      expect(() => fileObjectKey('', ok, bad)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
      expect(() => tenantPrefix('', bad)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });

  it('parses back only keys it built', () => {
    const tenantId = randomUUID();
    const fileId = randomUUID();
    expect(parseFileObjectKey('p/', fileObjectKey('p/', tenantId, fileId))).toEqual({ tenantId, fileId });
    for (const other of [
      fileObjectKey('q/', tenantId, fileId),
      `p/tenants/${tenantId}/files/${fileId}/extra`,
      `p/tenants/${tenantId}/other/${fileId}`,
      `p/tenants/not-a-uuid/files/${fileId}`,
      `p/tenants/${tenantId}/files/report.pdf`,
      'p/elsewhere',
    ]) {
      expect(parseFileObjectKey('p/', other)).toBeNull();
    }
  });

  it('keeps each tenant under its own prefix in the store', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const fileA = randomUUID();
    const fileB = randomUUID();
    await store.put(fileObjectKey(prefix, a, fileA), Readable.from([Buffer.from('same bytes')]));
    await store.put(fileObjectKey(prefix, b, fileB), Readable.from([Buffer.from('same bytes')]));
    const listedA = (await keysUnder(store, tenantPrefix(prefix, a))).map((k) => parseFileObjectKey(prefix, k));
    expect(listedA).toEqual([{ tenantId: a, fileId: fileA }]);

    expect(await store.deletePrefix(tenantPrefix(prefix, a))).toBe(1);
    expect(await store.head(fileObjectKey(prefix, b, fileB))).not.toBeNull();
  });
});
