import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFileBody, toReadable } from '../../src/documents/body.js';
import type { UploadBody } from '../../src/documents/types.js';
import { thrownCode } from '../support/errors.js';
import { bytesOf } from '../support/streams.js';

describe('toReadable', () => {
  it('streams a Buffer', async () => {
    expect(await bytesOf(toReadable(Buffer.from([1, 2, 3])))).toEqual(Buffer.from([1, 2, 3]));
  });

  it('streams exactly the bytes of a Uint8Array view, not its whole backing buffer', async () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const view = backing.subarray(1, 4);
    expect(await bytesOf(toReadable(view))).toEqual(Buffer.from([1, 2, 3]));
  });

  it('streams a string as UTF-8', async () => {
    expect(await bytesOf(toReadable('héllo €'))).toEqual(Buffer.from('héllo €', 'utf8'));
  });

  it('streams empty bodies as zero bytes', async () => {
    expect((await bytesOf(toReadable(''))).length).toBe(0);
    expect((await bytesOf(toReadable(Buffer.alloc(0)))).length).toBe(0);
  });

  it('returns a Readable as is', () => {
    const stream = Readable.from([Buffer.from('x')]);
    expect(toReadable(stream)).toBe(stream);
  });

  it('streams an async generator of Uint8Arrays', async () => {
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2]);
      yield Buffer.from([3]);
      yield new Uint8Array(0);
      yield new Uint8Array([4]);
    }
    const stream = toReadable(gen());
    expect(stream.readableObjectMode).toBe(false);
    expect(await bytesOf(stream)).toEqual(Buffer.from([1, 2, 3, 4]));
  });

  it('streams a web ReadableStream (an AsyncIterable)', async () => {
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([5, 6]));
        controller.enqueue(new Uint8Array([7]));
        controller.close();
      },
    });
    expect(await bytesOf(toReadable(web as unknown as UploadBody))).toEqual(Buffer.from([5, 6, 7]));
  });

  it('fails the stream when an async iterable yields something other than bytes', async () => {
    async function* gen(): AsyncGenerator<unknown> {
      yield Buffer.from('ok');
      yield { not: 'bytes' };
    }
    await expect(bytesOf(toReadable(gen() as AsyncIterable<Uint8Array>))).rejects.toBeInstanceOf(Error);
  });

  describe('a { path } file body', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-body-'));
      await writeFile(path.join(dir, 'f.bin'), Buffer.from([1, 2, 3, 4]));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('streams the file', async () => {
      expect(await bytesOf(toReadable({ path: path.join(dir, 'f.bin') }))).toEqual(Buffer.from([1, 2, 3, 4]));
    });

    it('fails the stream for a missing file, with the file system error', async () => {
      await expect(bytesOf(toReadable({ path: path.join(dir, 'missing') }))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('refuses a path that is not a non-empty string, or holds a NUL, with VALIDATION', () => {
      for (const p of ['', 42, undefined, null, 'a\0b']) {
        expect(thrownCode(() => toReadable({ path: p } as unknown as UploadBody))).toBe('VALIDATION');
      }
    });

    it('is told apart from streams, which may have a path too, and from bytes', () => {
      const stream = createReadStream(path.join(dir, 'f.bin'));
      expect(isFileBody(stream)).toBe(false);
      expect(toReadable(stream)).toBe(stream);
      stream.destroy();
      expect(isFileBody({ path: 'x' })).toBe(true);
      expect(isFileBody(Buffer.from('x'))).toBe(false);
      expect(isFileBody({ not: 'a path' })).toBe(false);
    });
  });

  it('rejects other values with VALIDATION', () => {
    for (const body of [undefined, null, 42, {}, [Buffer.from('a')], new ArrayBuffer(2), new Uint16Array(2), true]) {
      expect(thrownCode(() => toReadable(body as unknown as UploadBody))).toBe('VALIDATION');
    }
  });
});
