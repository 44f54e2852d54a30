import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { uploadHashed } from '../../src/documents/hashing-upload.js';
import { silentLogger } from '../../src/util/logger.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';
import { startPrivateS3 } from '../support/private-s3.js';

const MIB = 1024 * 1024;
const BUCKET = 'outage';

/** A store on a private s3rver, which a test can stop in the middle of a transfer. */
async function privateS3(): Promise<{ store: S3ObjectStore; stop(): Promise<void> }> {
  const s3 = await startPrivateS3(BUCKET);
  const store = new S3ObjectStore(
    {
      bucket: BUCKET,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      credentials: LOCAL_S3_CREDENTIALS,
      partSize: 5 * MIB,
      // Should a stopped server leave a socket silent rather than closed, fail in seconds, not minutes.
      connectionTimeoutMs: 2_000,
      socketTimeoutMs: 5_000,
    },
    silentLogger,
  );
  cleanups.push(async () => {
    store.close();
    await s3.dispose();
  });
  return { store, stop: s3.stop };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
});

describe('S3 stopped mid-transfer', () => {
  it('fails an upload in progress with STORAGE, without hanging, and stops reading the body', async () => {
    const { store, stop } = await privateS3();
    let produced = 0;
    let bodyClosed = false;
    async function* slowBody(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; i < 64; i++) {
          // After two parts are on their way, the server goes away mid-upload.
          if (i === 12) await stop();
          produced++;
          yield randomBytes(MIB);
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        bodyClosed = true;
      }
    }
    let error: { code?: string; cause?: unknown } | undefined;
    try {
      await uploadHashed(store, 'tenants/x/files/y', slowBody());
    } catch (err) {
      error = err as typeof error;
    }
    expect(error?.code).toBe('STORAGE');
    expect(error?.cause).toBeInstanceOf(Error);
    expect(produced).toBeLessThan(64);
    await new Promise((resolve) => setImmediate(resolve));
    expect(bodyClosed).toBe(true);
  });

  it('fails a later call with STORAGE once the server is gone', async () => {
    const { store, stop } = await privateS3();
    await stop();
    let code: string | undefined;
    try {
      await uploadHashed(store, 'k', Buffer.from('small'));
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    expect(code).toBe('STORAGE');
  });

  it('fails a download in progress with a STORAGE error on the stream', async () => {
    const { store, stop } = await privateS3();
    await store.put('big', Readable.from([randomBytes(32 * MIB)]));
    const body = await store.get('big');
    let received = 0;
    let error: { code?: string } | undefined;
    try {
      for await (const chunk of body) {
        received += (chunk as Buffer).length;
        if (received >= MIB) await stop();
      }
    } catch (err) {
      error = err as typeof error;
    }
    expect(received).toBeLessThan(32 * MIB);
    expect(error?.code).toBe('STORAGE');
  });
});
