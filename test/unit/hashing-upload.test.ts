import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { uploadHashed } from '../../src/documents/hashing-upload.js';
import { TenantDbError } from '../../src/errors.js';
import type { ObjectInfo, ObjectStore, PutResult } from '../../src/storage/object-store.js';

/** An in-memory ObjectStore (a unit-test collaborator passed by shape), with switchable faults. */
class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  readonly deleted: string[] = [];
  failPut: Error | undefined;
  /** Bytes the store "loses" when writing, to provoke a size mismatch. */
  truncateBy = 0;
  failDelete = false;

  async put(key: string, body: Readable): Promise<PutResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      if (this.failPut) throw this.failPut;
    }
    if (this.failPut) throw this.failPut;
    const bytes = Buffer.concat(chunks);
    this.objects.set(key, bytes.subarray(0, Math.max(0, bytes.length - this.truncateBy)));
    return { size: this.objects.get(key)!.length };
  }
  async get(key: string): Promise<Readable> {
    return Readable.from([this.objects.get(key)!]);
  }
  async head(key: string): Promise<ObjectInfo | null> {
    const o = this.objects.get(key);
    return o ? { size: o.length } : null;
  }
  async delete(key: string): Promise<void> {
    this.deleted.push(key);
    if (this.failDelete) throw new TenantDbError('STORAGE', 'delete failed');
    this.objects.delete(key);
  }
  async deletePrefix(): Promise<number> {
    return 0;
  }
  async *list(): AsyncIterable<{ key: string; size: number }> {}
  async abortStaleUploads(): Promise<number> {
    return 0;
  }
  async presign(): Promise<string> {
    return '';
  }
  close(): void {}
}

async function failureOf(promise: Promise<unknown>): Promise<TenantDbError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TenantDbError);
    return err as TenantDbError;
  }
  throw new Error('expected a rejection');
}

describe('uploadHashed', () => {
  it.each([
    ['', 'd41d8cd98f00b204e9800998ecf8427e', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'The quick brown fox jumps over the lazy dog',
      '9e107d9d372bb6826bd81d3542a419d6',
      'd7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592',
    ],
  ])('hashes %j to the known MD5 and SHA-256', async (text, md5, sha256) => {
    const store = new MemoryStore();
    const result = await uploadHashed(store, 'k', text);
    expect(result).toEqual({ md5, sha256, size: Buffer.byteLength(text) });
    expect(store.objects.get('k')?.toString()).toBe(text);
  });

  it('hashes a million "a" streamed in uneven chunks to the known digests', async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let left = 1_000_000;
      for (let n = 1; left > 0; n = (n * 7 + 3) % 65_521 || 1) {
        const size = Math.min(left, n);
        yield Buffer.alloc(size, 'a');
        left -= size;
      }
    }
    const result = await uploadHashed(new MemoryStore(), 'k', chunks());
    expect(result).toEqual({
      md5: '7707d6ae4e027c70eea2a935c2296f21',
      sha256: 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
      size: 1_000_000,
    });
  });

  it('gives the same digests for every body kind of the same bytes', async () => {
    const bytes = Buffer.from('same bytes, any shape ✓');
    const expected = {
      md5: createHash('md5').update(bytes).digest('hex'),
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
    };
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 5);
      yield new Uint8Array(bytes.subarray(5));
    }
    const bodies = [
      bytes,
      new Uint8Array(bytes),
      bytes.toString('utf8'),
      Readable.from([bytes.subarray(0, 3), bytes.subarray(3)]),
      // An object-mode stream of strings and Uint8Arrays is bytes too.
      Readable.from(['same ', new Uint8Array(Buffer.from('bytes, any shape ✓'))]),
      gen(),
    ];
    for (const body of bodies) expect(await uploadHashed(new MemoryStore(), 'k', body)).toEqual(expected);
  });

  it('accepts a body of exactly maxBytes and refuses one byte more with VALIDATION and no object', async () => {
    const store = new MemoryStore();
    expect((await uploadHashed(store, 'ok', Buffer.alloc(10), { maxBytes: 10 })).size).toBe(10);
    async function* eleven(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 11; i++) yield Buffer.alloc(1);
    }
    const err = await failureOf(uploadHashed(store, 'big', eleven(), { maxBytes: 10 }));
    expect(err.code).toBe('VALIDATION');
    expect(store.objects.has('big')).toBe(false);
  });

  it('stops reading an endless body once maxBytes is crossed, and closes it', async () => {
    let closed = false;
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) yield Buffer.alloc(1024);
      } finally {
        closed = true;
      }
    }
    const err = await failureOf(uploadHashed(new MemoryStore(), 'k', endless(), { maxBytes: 100_000 }));
    expect(err.code).toBe('VALIDATION');
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
  });

  it('reports a failing body as VALIDATION with its error as cause, and deletes the key', async () => {
    const boom = new Error('client went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('partial');
      throw boom;
    }
    const store = new MemoryStore();
    const err = await failureOf(uploadHashed(store, 'k', failing()));
    expect(err.code).toBe('VALIDATION');
    expect(err.cause).toBe(boom);
    expect(store.objects.has('k')).toBe(false);
    expect(store.deleted).toContain('k');
  });

  it('reports a non-bytes chunk from an object-mode stream as VALIDATION', async () => {
    const store = new MemoryStore();
    const err = await failureOf(uploadHashed(store, 'k', Readable.from([Buffer.from('a'), 42])));
    expect(err.code).toBe('VALIDATION');
  });

  it('rejects an unsupported body or a bad maxBytes with VALIDATION before touching the store', async () => {
    const store = new MemoryStore();
    expect((await failureOf(uploadHashed(store, 'k', 42 as unknown as string))).code).toBe('VALIDATION');
    expect((await failureOf(uploadHashed(store, 'k', 'x', { maxBytes: -1 }))).code).toBe('VALIDATION');
    expect((await failureOf(uploadHashed(store, 'k', 'x', { maxBytes: 1.5 }))).code).toBe('VALIDATION');
    expect(store.deleted).toEqual([]);
  });

  it('turns a store failure into STORAGE with the cause, and tries to delete the key', async () => {
    const store = new MemoryStore();
    const cause = new Error('socket hang up');
    store.failPut = cause;
    const err = await failureOf(uploadHashed(store, 'k', 'some bytes'));
    expect(err.code).toBe('STORAGE');
    expect(err.cause).toBe(cause);
    expect(store.deleted).toEqual(['k']);
  });

  it('keeps the store error when the clean-up delete fails too', async () => {
    const store = new MemoryStore();
    store.failPut = new TenantDbError('STORAGE', 'down');
    store.failDelete = true;
    const err = await failureOf(uploadHashed(store, 'k', 'some bytes'));
    expect(err).toBe(store.failPut);
  });

  it('deletes the object and fails with STORAGE when the stored size differs from the bytes hashed', async () => {
    const store = new MemoryStore();
    store.truncateBy = 1;
    const err = await failureOf(uploadHashed(store, 'k', 'twelve bytes'));
    expect(err.code).toBe('STORAGE');
    expect(store.objects.has('k')).toBe(false);
  });

  it('reports the bytes handed to the store as they go', async () => {
    const seen: number[] = [];
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(3);
      yield Buffer.alloc(4);
    }
    await uploadHashed(new MemoryStore(), 'k', chunks(), { onBytes: (n) => seen.push(n) });
    expect(seen).toEqual([3, 7]);
  });

  it('checks a body read before against its expected digests: other bytes are CONFLICT and leave no object', async () => {
    const expected = { md5: createHash('md5').update('abc').digest('hex'), sha256: createHash('sha256').update('abc').digest('hex'), size: 3 };
    expect(await uploadHashed(new MemoryStore(), 'k', 'abc', { expected })).toEqual(expected);
    for (const changed of ['abd', 'ab', 'abcd']) {
      const store = new MemoryStore();
      const err = await failureOf(uploadHashed(store, 'k', changed, { expected }));
      expect(err.code).toBe('CONFLICT');
      expect(store.objects.has('k')).toBe(false);
    }
  });

  it('stops a body that grows past its expected size at once, with CONFLICT', async () => {
    let produced = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) {
        produced++;
        yield Buffer.alloc(1024);
      }
    }
    const err = await failureOf(uploadHashed(new MemoryStore(), 'k', endless(), { expected: { md5: '', sha256: '', size: 10_000 } }));
    expect(err.code).toBe('CONFLICT');
    expect(produced).toBeLessThan(50);
  });

  it('fails with STORAGE, not retryable, the reason as cause, when aborted before the call; the body is closed', async () => {
    let closed = false;
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        yield Buffer.from('never stored');
      } finally {
        closed = true;
      }
    }
    const controller = new AbortController();
    // A timeout's reason (a TimeoutError) would otherwise count as transient: an abort never is.
    const reason = new DOMException('too slow', 'TimeoutError');
    controller.abort(reason);
    const store = new MemoryStore();
    const err = await failureOf(uploadHashed(store, 'k', body(), { signal: controller.signal }));
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
    expect(err.cause).toBe(reason);
    expect(store.objects.size).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
  });

  it('fails with STORAGE when aborted mid-stream, even on a store that ignores the signal', async () => {
    const controller = new AbortController();
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        if (i === 5) controller.abort();
        yield Buffer.alloc(100);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    const store = new MemoryStore();
    const err = await failureOf(uploadHashed(store, 'k', body(), { signal: controller.signal }));
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
    expect(store.objects.has('k')).toBe(false);
  });
});
