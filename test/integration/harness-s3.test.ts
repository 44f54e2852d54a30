import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, describe, expect, it, inject } from 'vitest';
import { deletePrefix, testS3Client, uniqueName } from '../support/env.js';

describe('test harness: S3', () => {
  const client = testS3Client();
  const bucket = inject('s3Bucket');
  const prefix = `${uniqueName('smoke')}/`;
  afterAll(async () => {
    await deletePrefix(client, bucket, prefix);
    client.destroy();
  });

  it('stores a streamed upload of unknown length byte-identical (no aws-chunked framing)', async () => {
    const chunk = randomBytes(1024 * 1024);
    const chunks = 11; // ≥ 10 MB, more than two multipart parts
    const sent = createHash('sha256');
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < chunks; i++) {
        const part = Buffer.from(chunk);
        part.writeUInt32BE(i, 0); // every MiB different, so misordered parts are caught
        sent.update(part);
        yield part;
      }
    }
    const key = `${prefix}big.bin`;
    // Readable.from gives a stream whose length the SDK cannot know in advance.
    await new Upload({ client, params: { Bucket: bucket, Key: key, Body: Readable.from(body()) } }).done();

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(chunks * chunk.length);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const received = createHash('sha256');
    let size = 0;
    for await (const part of got.Body as Readable) {
      received.update(part as Buffer);
      size += (part as Buffer).length;
    }
    expect(size).toBe(chunks * chunk.length);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  });
});
