import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { silentLogger } from '../../src/util/logger.js';
import { deletePrefix, listKeys, testS3Client, uniqueName } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';
import { bytesOf } from '../support/streams.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const PART = 5 * MIB;
const QUEUE = 2;
const bucket = inject('s3Bucket');
const root = `${uniqueName('multipart')}/`;
const admin = testS3Client();

/** What a {@link watchedStore}'s client saw. */
interface Watch {
  /** Every command, by name, in order. */
  commands: string[];
  /** ContentLength of each UploadPart, in the order they were sent. */
  partSizes: number[];
  /** Requests started and not yet settled, now and at most. */
  inFlight: number;
  maxPartsInFlight: number;
  /** The names of the errors requests failed with. */
  failures: string[];
}

type Hook = (command: string) => Promise<void> | void;

const clients: S3Client[] = [];
const stores: S3ObjectStore[] = [];
afterAll(async () => {
  for (const s of stores) s.close();
  for (const c of clients) c.destroy();
  await deletePrefix(admin, bucket, root);
  admin.destroy();
});

/**
 * A store of 5 MiB parts, 2 in flight, on a client of its own that records its requests; `hook` runs
 * before each one is sent (to hold it back, or fail it: faults injected on the client, the server is real).
 */
function watchedStore(hook?: Hook): { store: S3ObjectStore; watch: Watch } {
  const client = testS3Client();
  clients.push(client);
  const watch: Watch = { commands: [], partSizes: [], inFlight: 0, maxPartsInFlight: 0, failures: [] };
  let partsInFlight = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '';
      const input = args.input as Record<string, unknown>;
      watch.commands.push(name);
      if (name === 'UploadPartCommand') {
        watch.partSizes.push(input.ContentLength as number);
        watch.maxPartsInFlight = Math.max(watch.maxPartsInFlight, ++partsInFlight);
      }
      watch.inFlight++;
      try {
        await hook?.(name);
        return await next(args);
      } catch (err) {
        watch.failures.push((err as Error).name);
        throw err;
      } finally {
        watch.inFlight--;
        if (name === 'UploadPartCommand') partsInFlight--;
      }
    },
    { step: 'initialize', name: 'tenantdbTestWatch' },
  );
  const store = new S3ObjectStore({ bucket, client, partSize: PART, queueSize: QUEUE }, silentLogger);
  stores.push(store);
  return { store, watch };
}

/** `bytes` as a byte stream of `chunkSize` chunks, its length unknown to the reader; counts what it produced. */
function chunked(bytes: Buffer, chunkSize: number, failAt?: { offset: number; error: Error }) {
  const state = { produced: 0, finished: false };
  async function* generate(): AsyncGenerator<Buffer> {
    try {
      for (let at = 0; at < bytes.length; at += chunkSize) {
        if (failAt && at >= failAt.offset) throw failAt.error;
        const chunk = bytes.subarray(at, at + chunkSize);
        state.produced += chunk.length;
        yield chunk;
      }
    } finally {
      state.finished = true;
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), state };
}

async function pendingUploads(prefix: string): Promise<unknown[] | 'not listable'> {
  try {
    const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    return res.Uploads ?? [];
  } catch (err) {
    if ((err as Error).name === 'NotImplemented') return 'not listable'; // s3rver
    throw err;
  }
}

/** Resolves once `read()` has not changed for `quietMs`. */
async function settled(read: () => number, quietMs = 300): Promise<number> {
  let last = read();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    const now = read();
    if (now === last) return now;
    last = now;
  }
}

describe('S3ObjectStore.put: the multipart loop', () => {
  it('uploads 11 MiB + 3 bytes of unknown length in 700 KiB chunks as 5 + 5 + 1 MiB + 3 parts, byte for byte', async () => {
    const { store, watch } = watchedStore();
    const key = `${root}odd-chunks`;
    const bytes = randomBytes(11 * MIB + 3);
    const body = chunked(bytes, 700 * KIB);
    expect((await store.put(key, body.stream, { contentType: 'application/x-test' })).size).toBe(bytes.length);
    expect(watch.partSizes).toEqual([PART, PART, MIB + 3]);
    expect(watch.commands.filter((c) => c !== 'UploadPartCommand')).toEqual([
      'CreateMultipartUploadCommand',
      'CompleteMultipartUploadCommand',
      'HeadObjectCommand',
    ]);
    expect((await bytesOf(await store.get(key))).equals(bytes)).toBe(true);
  });

  it('splits chunks larger than a part, and larger than what is left of one, across parts', async () => {
    const { store, watch } = watchedStore();
    const key = `${root}big-chunks`;
    const bytes = randomBytes(17 * MIB + 5);
    // 3 MiB, then 12 MiB (spans parts 1 to 3), then the rest in one chunk.
    const chunks = [bytes.subarray(0, 3 * MIB), bytes.subarray(3 * MIB, 15 * MIB), bytes.subarray(15 * MIB)];
    await store.put(key, Readable.from(chunks, { objectMode: false }));
    expect(watch.partSizes).toEqual([PART, PART, PART, 2 * MIB + 5]);
    expect((await bytesOf(await store.get(key))).equals(bytes)).toBe(true);
  });

  it('sends a body of at most one part as one PutObject, an empty one included; one byte more is multipart', async () => {
    for (const [name, size, expected] of [
      ['empty', 0, ['PutObjectCommand']],
      ['small', 3 * KIB, ['PutObjectCommand']],
      ['one-part', PART, ['PutObjectCommand']],
      ['one-part-and-a-byte', PART + 1, ['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']],
    ] as const) {
      const { store, watch } = watchedStore();
      const key = `${root}sizes/${name}`;
      const bytes = randomBytes(size);
      // An object-mode stream too: its chunks are bytes all the same.
      expect((await store.put(key, Readable.from(size ? [bytes] : []))).size).toBe(size);
      expect(watch.commands.filter((c) => c !== 'HeadObjectCommand')).toEqual(expected);
      expect((await bytesOf(await store.get(key))).equals(bytes)).toBe(true);
    }
  });

  it('reuses part buffers from one upload to the next, never sending a byte of the earlier one', async () => {
    const { store, watch } = watchedStore();
    const first = randomBytes(3 * PART);
    await store.put(`${root}reuse/first`, Readable.from([first], { objectMode: false }));
    // The next uploads fill the same buffers, less of them: a multipart one whose last part is short,
    // then one PutObject of a few bytes.
    const second = Buffer.alloc(PART + 100, 7);
    const third = Buffer.from('small');
    await store.put(`${root}reuse/second`, Readable.from([second], { objectMode: false }));
    await store.put(`${root}reuse/third`, Readable.from([third], { objectMode: false }));
    expect(watch.partSizes).toEqual([PART, PART, PART, PART, 100]);
    expect((await bytesOf(await store.get(`${root}reuse/second`))).equals(second)).toBe(true);
    expect((await bytesOf(await store.get(`${root}reuse/third`))).equals(third)).toBe(true);
  });

  it('refuses a chunk that is not bytes with VALIDATION, and stores nothing', async () => {
    const { store } = watchedStore();
    const prefix = `${root}not-bytes/`;
    const err = await rejectionOf(store.put(`${prefix}k`, Readable.from([randomBytes(6 * MIB), { not: 'bytes' }])));
    expect(err.code).toBe('VALIDATION');
    expect(await listKeys(admin, bucket, prefix)).toEqual([]);
  });

  it('stops reading the body while every part buffer is full or on its way, and never has more than queueSize parts in flight', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { store, watch } = watchedStore(async (command) => {
      if (command === 'UploadPartCommand') await held;
    });
    const key = `${root}backpressure`;
    const bytes = randomBytes(40 * MIB);
    const body = chunked(bytes, MIB);
    const putting = store.put(key, body.stream);
    const produced = await settled(() => body.state.produced);
    // queueSize parts held on their way, one buffer full behind them; the stream's own buffer and the
    // generator's next chunk on top.
    expect(produced).toBeGreaterThanOrEqual((QUEUE + 1) * PART);
    expect(produced).toBeLessThanOrEqual((QUEUE + 1) * PART + 2 * MIB);
    release();
    expect((await putting).size).toBe(bytes.length);
    expect(watch.maxPartsInFlight).toBe(QUEUE);
    expect((await bytesOf(await store.get(key))).equals(bytes)).toBe(true);
  });

  it('fails with STORAGE, the body error as cause, when the body fails midway; nothing left running, no object, no pending upload', async () => {
    const { store, watch } = watchedStore();
    const prefix = `${root}body-fails/`;
    const boom = new Error('the client went away');
    const body = chunked(randomBytes(20 * MIB), 700 * KIB, { offset: 12 * MIB, error: boom });
    const err = await rejectionOf(store.put(`${prefix}k`, body.stream));
    expect(watch.inFlight).toBe(0);
    expect(err).toMatchObject({ code: 'STORAGE' });
    expect(err.cause).toBe(boom);
    expect(watch.commands).toContain('UploadPartCommand');
    expect(watch.commands).toContain('AbortMultipartUploadCommand');
    expect(watch.commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await listKeys(admin, bucket, prefix)).toEqual([]);
    const pending = await pendingUploads(prefix);
    if (pending !== 'not listable') expect(pending).toEqual([]);
  });

  it('fails with STORAGE, the S3 error as cause, when a part fails; stops and destroys the body, aborts the upload', async () => {
    const refused = Object.assign(new Error('We encountered an internal error.'), { name: 'InternalError' });
    let parts = 0;
    const { store, watch } = watchedStore((command) => {
      if (command === 'UploadPartCommand' && ++parts === 2) throw refused;
    });
    const prefix = `${root}part-fails/`;
    const body = chunked(randomBytes(60 * MIB), MIB);
    const err = await rejectionOf(store.put(`${prefix}k`, body.stream));
    expect(watch.inFlight).toBe(0);
    expect(err).toMatchObject({ code: 'STORAGE' });
    expect(err.cause).toBe(refused);
    expect(body.stream.destroyed).toBe(true);
    expect(body.state.produced).toBeLessThan(30 * MIB);
    await new Promise((resolve) => setImmediate(resolve));
    expect(body.state.finished).toBe(true);
    expect(watch.commands).toContain('AbortMultipartUploadCommand');
    expect(await listKeys(admin, bucket, prefix)).toEqual([]);
  });

  it('fails at once when a part fails while the body is stalled, without waiting for its next byte', async () => {
    const refused = Object.assign(new Error('We encountered an internal error.'), { name: 'InternalError' });
    const { store, watch } = watchedStore((command) => {
      if (command === 'UploadPartCommand') throw refused;
    });
    // 6 MiB, then nothing more, ever: the first part goes out, the body never says what comes next.
    const body = new Readable({ read() {} });
    body.push(randomBytes(6 * MIB));
    const started = Date.now();
    const err = await rejectionOf(store.put(`${root}stalled/k`, body));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toMatchObject({ code: 'STORAGE' });
    expect(err.cause).toBe(refused);
    expect(watch.inFlight).toBe(0);
    expect(body.destroyed).toBe(true);
  });

  it('aborted mid-upload: STORAGE, not retryable, the reason as cause; the part in flight stopped, nothing left running or stored', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const { store, watch } = watchedStore(async (command) => {
      // The parts wait on their way until the abort: their requests, given the signal, must then fail
      // at once (AbortError) rather than go out.
      if (command === 'UploadPartCommand' && !signal.aborted) {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      }
    });
    const prefix = `${root}aborted/`;
    const body = chunked(randomBytes(30 * MIB), 700 * KIB);
    const reason = new Error('the user cancelled');
    const putting = store.put(`${prefix}k`, body.stream, { signal: controller.signal });
    await settled(() => body.state.produced);
    expect(watch.commands).toContain('UploadPartCommand');
    controller.abort(reason);
    const err = await rejectionOf(putting);
    expect(watch.inFlight).toBe(0);
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
    expect(err.cause).toBe(reason);
    expect(watch.failures).toContain('AbortError');
    expect(body.stream.destroyed).toBe(true);
    expect(body.state.produced).toBeLessThan(30 * MIB);
    expect(watch.commands).toContain('AbortMultipartUploadCommand');
    expect(watch.commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await listKeys(admin, bucket, prefix)).toEqual([]);
    const pending = await pendingUploads(prefix);
    if (pending !== 'not listable') expect(pending).toEqual([]);
  });
});
