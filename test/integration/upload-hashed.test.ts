import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uploadHashed } from '../../src/documents/hashing-upload.js';
import { silentLogger } from '../../src/util/logger.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { deletePrefix, testS3Client, uniqueName } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';

const MIB = 1024 * 1024;
const bucket = inject('s3Bucket');
const root = `${uniqueName('upload')}/`;
const admin = testS3Client();
const store = new S3ObjectStore(
  { bucket, endpoint: inject('s3Endpoint'), region: 'us-east-1', credentials: inject('s3Credentials') },
  silentLogger,
);

afterAll(async () => {
  store.close();
  await deletePrefix(admin, bucket, root);
  admin.destroy();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys;
}

/** `mib` MiB of pseudo-random bytes, a MiB at a time, each MiB different, length unknown to the reader. */
function generated(mib: number, onChunk?: (bytes: Buffer) => void): AsyncGenerator<Uint8Array> {
  const seed = randomBytes(MIB);
  return (async function* () {
    for (let i = 0; i < mib; i++) {
      const chunk = Buffer.from(seed);
      chunk.writeUInt32BE(i, 0);
      chunk.writeUInt32BE((i * 2654435761) >>> 0, MIB - 4);
      onChunk?.(chunk);
      yield chunk;
    }
  })();
}

describe('uploadHashed on S3', () => {
  it('streams 40 MB of unknown length (multipart) and downloads it byte-identical, with matching digests', async () => {
    const key = `${root}big`;
    const sentMd5 = createHash('md5');
    const sentSha = createHash('sha256');
    const result = await uploadHashed(
      store,
      key,
      generated(40, (b) => {
        sentMd5.update(b);
        sentSha.update(b);
      }),
      { contentType: 'application/octet-stream' },
    );
    expect(result).toEqual({ md5: sentMd5.digest('hex'), sha256: sentSha.digest('hex'), size: 40 * MIB });

    const gotMd5 = createHash('md5');
    const gotSha = createHash('sha256');
    let size = 0;
    for await (const chunk of await store.get(key)) {
      gotMd5.update(chunk as Buffer);
      gotSha.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    expect(size).toBe(40 * MIB);
    expect(gotMd5.digest('hex')).toBe(result.md5);
    expect(gotSha.digest('hex')).toBe(result.sha256);
  });

  it('stores small bodies of every kind with the given content type', async () => {
    const bytes = Buffer.from('hello, tenant ✓');
    const expectedMd5 = createHash('md5').update(bytes).digest('hex');
    const bodies = [bytes, new Uint8Array(bytes), bytes.toString(), Readable.from([bytes]), generatedFrom(bytes)];
    for (const [i, body] of bodies.entries()) {
      const key = `${root}small/${i}`;
      const r = await uploadHashed(store, key, body, { contentType: 'text/plain; charset=utf-8' });
      expect(r.md5).toBe(expectedMd5);
      expect(r.size).toBe(bytes.length);
      const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ContentType).toBe('text/plain; charset=utf-8');
    }
  });

  it('stores an empty body', async () => {
    const r = await uploadHashed(store, `${root}empty`, '');
    expect(r).toEqual({
      md5: 'd41d8cd98f00b204e9800998ecf8427e',
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      size: 0,
    });
    expect((await store.head(`${root}empty`))?.size).toBe(0);
  });

  it('refuses a small body over maxBytes with VALIDATION and leaves no object', async () => {
    const prefix = `${root}over-small/`;
    const err = await rejectionOf(uploadHashed(store, `${prefix}k`, Buffer.alloc(1001), { maxBytes: 1000 }));
    expect(err.code).toBe('VALIDATION');
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('refuses a multipart-sized stream over maxBytes with VALIDATION, mid-upload, and leaves no object', async () => {
    const prefix = `${root}over-big/`;
    let produced = 0;
    const err = await rejectionOf(
      uploadHashed(store, `${prefix}k`, generated(30, () => (produced += 1)), { maxBytes: 20 * MIB }),
    );
    expect(err.code).toBe('VALIDATION');
    // The body was not read to its end: the limit stopped it.
    expect(produced).toBeLessThan(30);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('reports a body that fails mid-multipart as VALIDATION with its error, and leaves no object', async () => {
    const prefix = `${root}body-fails/`;
    const boom = new Error('the client went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* generated(18);
      throw boom;
    }
    const err = await rejectionOf(uploadHashed(store, `${prefix}k`, failing()));
    expect(err.code).toBe('VALIDATION');
    expect(err.cause).toBe(boom);
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('fails with STORAGE and leaves no object when the signal aborts mid-upload', async () => {
    const prefix = `${root}aborted/`;
    const controller = new AbortController();
    const err = await rejectionOf(
      uploadHashed(
        store,
        `${prefix}k`,
        generated(30, () => {
          controller.abort(new Error('request cancelled'));
        }),
        { signal: controller.signal },
      ),
    );
    expect(err.code).toBe('STORAGE');
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('uploads twenty identical bodies at once, each to its own key, with one digest', async () => {
    const bytes = randomBytes(256 * 1024);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => uploadHashed(store, `${root}twenty/${i}`, Readable.from([bytes]))),
    );
    expect(new Set(results.map((r) => `${r.md5}/${r.sha256}/${r.size}`)).size).toBe(1);
    expect(await keysUnder(`${root}twenty/`)).toHaveLength(20);
  });
});

async function* generatedFrom(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes.subarray(0, 3);
  yield bytes.subarray(3);
}
