import { createHash } from 'node:crypto';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { TenantDbError } from '../errors.js';
import { uploadAbortedError } from '../storage/upload-aborted.js';
import { bytesOfBody, fileBodyPath, isFileBody } from './body.js';
import type { HashedUpload } from './hashing-upload.js';
import type { UploadBody } from './types.js';

/** Bytes read from a file per step of the hashing pass (one buffer, reused), and per chunk of its upload. */
const FILE_CHUNK = 1024 * 1024;
/** Bytes of an in-memory body hashed between two turns of the event loop. */
const MEMORY_SLICE = 8 * 1024 * 1024;

/** Options of {@link ReplayableBody.hash}. */
export interface ReplayableHashOptions {
  /** Checked between chunks: aborting it fails the pass with STORAGE (see `uploadAbortedError`). */
  signal?: AbortSignal | undefined;
  /** Called with the bytes hashed so far. */
  onBytes?: ((bytesHashed: number) => void) | undefined;
}

/**
 * A body that can be read twice: hashed first, to look for its bytes among the stored files, then, when
 * they are not stored yet, streamed to the object store. Holds a file open until {@link close}.
 * @internal
 */
export interface ReplayableBody {
  /** One pass over the bytes: MD5, SHA-256 and size. VALIDATION when a file cannot be read, or outgrows `maxBytes`. */
  hash(options?: ReplayableHashOptions): Promise<HashedUpload>;
  /** A new stream of the bytes from the start, for the upload (a file: the same open file, read again). */
  stream(): Readable;
  /** Closes the file, if any; idempotent. */
  close(): Promise<void>;
}

function tooLarge(maxBytes: number): TenantDbError {
  return new TenantDbError('VALIDATION', `the upload is larger than maxBytes (${maxBytes})`);
}

function hashOf(md5: ReturnType<typeof createHash>, sha256: ReturnType<typeof createHash>, size: number): HashedUpload {
  return { md5: md5.digest('hex'), sha256: sha256.digest('hex'), size };
}

class BytesBody implements ReplayableBody {
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  async hash(options: ReplayableHashOptions = {}): Promise<HashedUpload> {
    const { signal, onBytes } = options;
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    // Slice by slice, yielding to the event loop in between: a large body neither blocks other requests
    // for seconds nor delays an abort.
    for (let at = 0; at === 0 || at < this.#bytes.length; at += MEMORY_SLICE) {
      if (at > 0) await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted) throw uploadAbortedError(signal);
      const slice = this.#bytes.subarray(at, at + MEMORY_SLICE);
      md5.update(slice);
      sha256.update(slice);
      onBytes?.(at + slice.length);
    }
    return hashOf(md5, sha256, this.#bytes.length);
  }

  stream(): Readable {
    return Readable.from([this.#bytes], { objectMode: false });
  }

  async close(): Promise<void> {}
}

class FileHandleBody implements ReplayableBody {
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #maxBytes: number | undefined;
  #closing: Promise<void> | undefined;

  constructor(handle: FileHandle, path: string, maxBytes: number | undefined) {
    this.#handle = handle;
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  async hash(options: ReplayableHashOptions = {}): Promise<HashedUpload> {
    const { signal, onBytes } = options;
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    const buffer = Buffer.allocUnsafe(FILE_CHUNK);
    let size = 0;
    for (;;) {
      if (signal?.aborted) throw uploadAbortedError(signal);
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.#handle.read(buffer, 0, buffer.length, size));
      } catch (err) {
        throw new TenantDbError('VALIDATION', `could not read the file to upload (${JSON.stringify(this.#path)})`, { cause: err });
      }
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      md5.update(chunk);
      sha256.update(chunk);
      size += bytesRead;
      // The size at open was within the limit; a file still growing is stopped here.
      if (this.#maxBytes !== undefined && size > this.#maxBytes) throw tooLarge(this.#maxBytes);
      onBytes?.(size);
    }
    return hashOf(md5, sha256, size);
  }

  stream(): Readable {
    // The handle outlives the stream (closed by `close()`), so a second stream could be made too.
    return this.#handle.createReadStream({ start: 0, autoClose: false, highWaterMark: FILE_CHUNK });
  }

  close(): Promise<void> {
    // FileHandle#close waits for the reads in flight. A failed close cannot lose data of a read-only file.
    this.#closing ??= this.#handle.close().catch(() => {});
    return this.#closing;
  }
}

function unreadable(path: string, err: unknown): TenantDbError {
  return new TenantDbError('VALIDATION', `cannot read the file to upload (${JSON.stringify(path)})`, { cause: err });
}

/**
 * Opens a {@link FileHandleBody} on a regular file; VALIDATION (the file system's error as `cause`) for
 * a path that does not exist or cannot be read, a directory, anything else that is not a regular file, or
 * a file over `maxBytes`.
 */
async function openFile(path: string, maxBytes: number | undefined): Promise<ReplayableBody> {
  // stat first: opening a FIFO for reading would block until a writer comes.
  const before = await stat(path).catch((err: unknown) => Promise.reject(unreadable(path, err)));
  if (before.isDirectory()) {
    // Reading a directory fails at once (EISDIR): that error is the cause.
    const cause: unknown = await readFile(path).then(() => undefined, (err: unknown) => err);
    throw new TenantDbError('VALIDATION', `the file to upload is a directory (${JSON.stringify(path)})`, { cause });
  }
  if (!before.isFile()) throw new TenantDbError('VALIDATION', `the file to upload is not a regular file (${JSON.stringify(path)})`);
  const handle = await open(path, 'r').catch((err: unknown) => Promise.reject(unreadable(path, err)));
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== before.ino || opened.dev !== before.dev) {
      throw new TenantDbError('VALIDATION', `the file to upload was replaced while it was opened (${JSON.stringify(path)})`);
    }
    if (maxBytes !== undefined && opened.size > maxBytes) throw tooLarge(maxBytes);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err instanceof TenantDbError ? err : unreadable(path, err);
  }
  return new FileHandleBody(handle, path, maxBytes);
}

/**
 * The body as a {@link ReplayableBody} when it can be read twice (`Buffer`, `Uint8Array`, `string`, a
 * `{ path }` file), or undefined for a stream, which is read once. VALIDATION for a bad file (see
 * `FileBody`) or bytes over `maxBytes`, before anything is read.
 * @internal
 */
export async function openReplayableBody(body: UploadBody, maxBytes: number | undefined): Promise<ReplayableBody | undefined> {
  const bytes = bytesOfBody(body);
  if (bytes) {
    if (maxBytes !== undefined && bytes.length > maxBytes) throw tooLarge(maxBytes);
    return new BytesBody(bytes);
  }
  if (isFileBody(body)) return openFile(fileBodyPath(body), maxBytes);
  return undefined;
}
