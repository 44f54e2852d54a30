import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openReplayableBody } from '../../src/documents/replayable-body.js';
import { rejectionOf } from '../support/errors.js';
import { bytesOf } from '../support/streams.js';

const MIB = 1024 * 1024;

function digests(bytes: Buffer): { md5: string; sha256: string; size: number } {
  return {
    md5: createHash('md5').update(bytes).digest('hex'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
  };
}

describe('openReplayableBody', () => {
  let dir: string;
  const big = randomBytes(3 * MIB + 17);
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-replayable-'));
    await writeFile(path.join(dir, 'big.bin'), big);
    await writeFile(path.join(dir, 'empty'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('hashes bytes in memory and streams the same bytes, as often as asked', async () => {
    for (const body of [Buffer.from('héllo'), new Uint8Array(Buffer.from('héllo')), 'héllo']) {
      const replayable = (await openReplayableBody(body, undefined))!;
      expect(await replayable.hash()).toEqual(digests(Buffer.from('héllo')));
      expect((await bytesOf(replayable.stream())).toString()).toBe('héllo');
      expect((await bytesOf(replayable.stream())).toString()).toBe('héllo');
      await replayable.close();
    }
  });

  it('hashes a large Buffer slice by slice, reporting progress, and stops once aborted', async () => {
    const bytes = randomBytes(20 * MIB);
    const replayable = (await openReplayableBody(bytes, undefined))!;
    const seen: number[] = [];
    expect(await replayable.hash({ onBytes: (n) => seen.push(n) })).toEqual(digests(bytes));
    expect(seen).toEqual([8 * MIB, 16 * MIB, 20 * MIB]);
    const controller = new AbortController();
    const err = await rejectionOf(replayable.hash({ signal: controller.signal, onBytes: () => controller.abort() }));
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
  });

  it('is undefined for streams, which are read once', async () => {
    expect(await openReplayableBody(Readable.from([Buffer.from('x')]), undefined)).toBeUndefined();
    expect(await openReplayableBody((async function* () {})(), undefined)).toBeUndefined();
  });

  it('hashes a file in 1 MiB steps, reporting progress, then streams it from the start', async () => {
    const replayable = (await openReplayableBody({ path: path.join(dir, 'big.bin') }, undefined))!;
    const seen: number[] = [];
    expect(await replayable.hash({ onBytes: (n) => seen.push(n) })).toEqual(digests(big));
    expect(seen).toEqual([MIB, 2 * MIB, 3 * MIB, big.length]);
    expect((await bytesOf(replayable.stream())).equals(big)).toBe(true);
    await replayable.close();
    await replayable.close(); // idempotent
  });

  it('hashes an empty file', async () => {
    const replayable = (await openReplayableBody({ path: path.join(dir, 'empty') }, undefined))!;
    expect(await replayable.hash()).toEqual(digests(Buffer.alloc(0)));
    await replayable.close();
  });

  it('refuses a missing file, a directory and a path of the wrong kind with VALIDATION, the fs error as cause', async () => {
    const missing = await rejectionOf(openReplayableBody({ path: path.join(dir, 'nope') }, undefined));
    expect(missing.code).toBe('VALIDATION');
    expect(missing.cause).toMatchObject({ code: 'ENOENT' });
    const directory = await rejectionOf(openReplayableBody({ path: dir }, undefined));
    expect(directory.code).toBe('VALIDATION');
    expect(directory.cause).toMatchObject({ code: 'EISDIR' });
    const notADir = await rejectionOf(openReplayableBody({ path: path.join(dir, 'big.bin', 'x') }, undefined));
    expect(notADir.cause).toMatchObject({ code: 'ENOTDIR' });
    for (const p of ['', 7, undefined]) {
      expect((await rejectionOf(openReplayableBody({ path: p } as never, undefined))).code).toBe('VALIDATION');
    }
  });

  it.skipIf(process.platform === 'win32' || process.getuid?.() === 0)('refuses an unreadable file with VALIDATION, EACCES as cause', async () => {
    const locked = path.join(dir, 'locked');
    await writeFile(locked, 'secret', { mode: 0o000 });
    const err = await rejectionOf(openReplayableBody({ path: locked }, undefined));
    expect(err.code).toBe('VALIDATION');
    expect(err.cause).toMatchObject({ code: 'EACCES' });
  });

  it.skipIf(process.platform === 'win32')('refuses a FIFO (not a regular file) without blocking on it', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect((await rejectionOf(openReplayableBody({ path: fifo }, undefined))).code).toBe('VALIDATION');
  });

  it('applies maxBytes before reading: to bytes in memory and to the file size', async () => {
    expect((await rejectionOf(openReplayableBody(Buffer.alloc(11), 10))).code).toBe('VALIDATION');
    expect((await rejectionOf(openReplayableBody('x'.repeat(11), 10))).code).toBe('VALIDATION');
    expect((await rejectionOf(openReplayableBody({ path: path.join(dir, 'big.bin') }, MIB))).code).toBe('VALIDATION');
    const exact = (await openReplayableBody({ path: path.join(dir, 'big.bin') }, big.length))!;
    expect((await exact.hash()).size).toBe(big.length);
    await exact.close();
  });

  it('stops hashing a file that grew past maxBytes after it was opened', async () => {
    const growing = path.join(dir, 'growing');
    await writeFile(growing, Buffer.alloc(MIB));
    const replayable = (await openReplayableBody({ path: growing }, MIB + 10))!;
    await writeFile(growing, Buffer.alloc(2 * MIB));
    expect((await rejectionOf(replayable.hash())).code).toBe('VALIDATION');
    await replayable.close();
  });

  it('fails the hashing pass with STORAGE, not retryable, once the signal is aborted', async () => {
    const controller = new AbortController();
    const replayable = (await openReplayableBody({ path: path.join(dir, 'big.bin') }, undefined))!;
    const reason = new Error('stop');
    const err = await rejectionOf(replayable.hash({ signal: controller.signal, onBytes: () => controller.abort(reason) }));
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false, cause: reason });
    await replayable.close();
  });
});
