import { finished, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import { TenantDbError } from '../errors.js';
import { chunkAsBytes } from '../util/bytes.js';
import type { Logger } from '../util/logger.js';
import { errorName } from './sdk-errors.js';

/**
 * Bytes read from the body between two turns of the event loop. A body that never waits for I/O (a
 * generator, a Transform that hashes) would otherwise be read, hashed and copied in one stretch of
 * microtasks until every part buffer is full, while the sockets of the parts in flight go unfed: on
 * the upload benchmark, 64 MiB/s instead of 83.
 */
const YIELD_EVERY = 1024 * 1024;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;

/** Options of {@link uploadStream}. @internal */
export interface StreamUploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Stored as the object's Content-Type. Default: none. */
  contentType?: string | undefined;
  /** Where the part buffers come from and go back to; its `partSize` is the upload's. */
  buffers: PartBufferPool;
  /** Parts on their way to S3 at once. */
  queueSize: number;
  /** Passed to every request, so that aborting it stops the parts in flight too. */
  signal?: AbortSignal | undefined;
  /** Where a multipart upload that could not be aborted is reported. */
  logger: Logger;
}

/**
 * The part buffers of a store's uploads: a free list shared by them, so that uploads one after another
 * reuse the same memory instead of each leaving `partSize × (queueSize + 1)` bytes for the garbage
 * collector, which may hold several uploads' worth before it frees any. Keeps at most `keep` free
 * buffers, and none once `idleMs` passed without an upload taking or returning one.
 *
 * A buffer taken still holds the bytes of an earlier upload, maybe another tenant's: an upload sends only
 * the bytes it copied in, `buffer.subarray(0, filled)`, never the whole buffer.
 * @internal
 */
export class PartBufferPool {
  /** Bytes per buffer: the part size. */
  readonly partSize: number;
  readonly #keep: number;
  readonly #free: Buffer[] = [];
  readonly #idleMs: number;
  /** Drops the free buffers once the pool went unused for `idleMs`; armed while it holds any. */
  #idle: NodeJS.Timeout | undefined;

  constructor(partSize: number, keep: number, idleMs = 30_000) {
    this.partSize = partSize;
    this.#keep = keep;
    this.#idleMs = idleMs;
  }

  /** A free buffer, or a new one. Not zero-filled: an upload sends only the bytes it copied in. */
  take(): Buffer {
    this.#idle?.refresh();
    return this.#free.pop() ?? Buffer.allocUnsafe(this.partSize);
  }

  /** Returns a buffer nothing refers to any more (its request settled successfully, or it was never sent). */
  give(buffer: Buffer): void {
    if (this.#free.length < this.#keep) this.#free.push(buffer);
    if (this.#idle) this.#idle.refresh();
    // Never keeps the process alive.
    else this.#idle = setTimeout(() => this.clear(), this.#idleMs).unref();
  }

  /** Drops the free buffers (for the garbage collector to free). */
  clear(): void {
    this.#free.length = 0;
    clearTimeout(this.#idle);
    this.#idle = undefined;
  }
}

/**
 * Streams `body`, of unknown length, to `key`: one PutObject when it is at most one part long (an empty
 * body included), else a multipart upload of `partSize` parts, `queueSize` of them in flight at once.
 *
 * Memory is bounded by `partSize × (queueSize + 1)`: the bytes are copied into at most that many part
 * buffers, taken from `buffers` as needed and returned as each part is stored, and the body is not read
 * while every buffer is either full or on its way. (lib-storage's `Upload` concatenates each part into
 * a fresh buffer instead, and the garbage collector lets several generations of them pile up.)
 *
 * On any failure (the body's error, an S3 error, `signal` aborted) the body is destroyed, the parts in
 * flight are waited for, the multipart upload is aborted (best effort: a server may refuse, which is
 * logged, never thrown), and the first failure is thrown as it came: the caller maps it.
 *
 * @example
 * ```ts
 * const buffers = new PartBufferPool(8 * MIB, 3);
 * await uploadStream(body, { client, bucket, key, buffers, queueSize: 2, signal, logger });
 * ```
 * @internal
 */
export async function uploadStream(body: Readable, options: StreamUploadOptions): Promise<void> {
  await new StreamUpload(body, options).run();
}

/** A chunk from a byte stream (or one with an encoding set) as bytes; anything else is VALIDATION. */
function asBytes(chunk: unknown): Buffer {
  const bytes = chunkAsBytes(chunk);
  if (!bytes) throw new TenantDbError('VALIDATION', 'the upload body yielded something other than bytes');
  return bytes;
}

/** The checksums S3 returned for a part: CompleteMultipartUpload must repeat them when the upload has an algorithm. */
function partChecksums(res: UploadPartCommandOutput): Omit<CompletedPart, 'ETag' | 'PartNumber'> {
  return {
    ...(res.ChecksumCRC32 && { ChecksumCRC32: res.ChecksumCRC32 }),
    ...(res.ChecksumCRC32C && { ChecksumCRC32C: res.ChecksumCRC32C }),
    ...(res.ChecksumCRC64NVME && { ChecksumCRC64NVME: res.ChecksumCRC64NVME }),
    ...(res.ChecksumSHA1 && { ChecksumSHA1: res.ChecksumSHA1 }),
    ...(res.ChecksumSHA256 && { ChecksumSHA256: res.ChecksumSHA256 }),
  };
}

/**
 * The chunks of a stream one at a time, exactly as they were pushed: in flowing mode, paused after each
 * 'data' event until the next one is asked for. Not `for await`: a paused stream's iterator calls
 * `read()`, which concatenates whatever is buffered into a new Buffer, a copy of every byte (and as much
 * garbage) whenever the producer is ahead, as a Transform in front of the upload often is.
 */
class ChunkReader {
  readonly #body: Readable;
  readonly #chunks: unknown[] = [];
  #ended = false;
  #failure: { error: unknown } | undefined;
  #wake: (() => void) | undefined;

  constructor(body: Readable) {
    this.#body = body;
    body.on('data', (chunk: unknown) => {
      this.#chunks.push(chunk);
      body.pause();
      this.#notify();
    });
    // An error, and a close before the end (ERR_STREAM_PREMATURE_CLOSE), are failures of the body.
    finished(body, { writable: false }, (err) => {
      if (err) this.#failure ??= { error: err };
      else this.#ended = true;
      this.#notify();
    });
  }

  /** Ends a wait for the next chunk (and every later one) with `err`: the upload failed elsewhere. */
  interrupt(err: unknown): void {
    this.#failure ??= { error: err };
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next chunk (an object-mode stream's may be anything), or `done` at the end; rejects with the body's failure. */
  async next(): Promise<IteratorResult<unknown, undefined>> {
    for (;;) {
      if (this.#failure) throw this.#failure.error;
      if (this.#chunks.length > 0) return { done: false, value: this.#chunks.shift() };
      if (this.#ended) return { done: true, value: undefined };
      const arrived = new Promise<void>((resolve) => (this.#wake = resolve));
      this.#body.resume();
      await arrived;
    }
  }
}

/** One upload: the state of {@link uploadStream}. */
class StreamUpload {
  readonly #body: Readable;
  readonly #options: StreamUploadOptions;
  /** The buffer being filled, and how many of its bytes are. */
  #current: Buffer | undefined;
  #filled = 0;
  /** Parts handed to S3 so far: the number of the last one. */
  #partCount = 0;
  /** The parts on their way; each settles (never rejects) once its buffer is free again or it failed. */
  readonly #inFlight = new Set<Promise<void>>();
  /** The uploaded parts, by part number − 1. */
  readonly #parts: CompletedPart[] = [];
  /** The CreateMultipartUpload under way or done, once the body proved longer than one part. */
  #creating: Promise<string> | undefined;
  #uploadId: string | undefined;
  /** The first failure; later ones are consequences of it (or of the clean-up). */
  #failure: { error: unknown } | undefined;
  /** The body's reader, told of a failure so that a stalled body cannot hide it. */
  #reader: ChunkReader | undefined;
  /** What every request but the clean-up's gets: the signal, so that aborting it stops the requests in flight. */
  readonly #requestOptions: { abortSignal?: AbortSignal };

  constructor(body: Readable, options: StreamUploadOptions) {
    this.#body = body;
    this.#options = options;
    this.#requestOptions = options.signal ? { abortSignal: options.signal } : {};
  }

  async run(): Promise<void> {
    try {
      await this.#readBody();
      await this.#finish();
    } catch (err) {
      this.#fail(err);
      await this.#cleanUp();
      throw this.#failure!.error;
    }
  }

  #fail(err: unknown): void {
    if (this.#failure) return;
    this.#failure = { error: err };
    this.#reader?.interrupt(err);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error;
  }

  /** Copies the body into part buffers, sending each full one as soon as the body has more bytes. */
  async #readBody(): Promise<void> {
    const reader = (this.#reader = new ChunkReader(this.#body));
    let sinceYield = 0;
    for (;;) {
      const next = await reader.next();
      if (next.done) return;
      const bytes = asBytes(next.value);
      await this.#write(bytes);
      sinceYield += bytes.length;
      // Lets the sockets of the parts in flight be fed (see YIELD_EVERY).
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  async #write(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      // A full part is sent only once more bytes come: a body of exactly one part stays one PutObject,
      // and the last part of a multipart upload is sent by #finish.
      if (this.#current && this.#filled === this.#options.buffers.partSize) await this.#sendPart();
      this.#current ??= this.#takeBuffer();
      const copied = chunk.copy(this.#current, this.#filled, offset);
      this.#filled += copied;
      offset += copied;
    }
  }

  /**
   * A part buffer. This upload never holds more than queueSize + 1: one being filled, and the parts in
   * flight, of which #sendPart lets at most queueSize be; a part stored returns its buffer at once.
   */
  #takeBuffer(): Buffer {
    return this.#options.buffers.take();
  }

  /** Sends the current buffer as the next part (starting the multipart upload with the first), once fewer than queueSize are in flight. */
  async #sendPart(): Promise<void> {
    while (this.#inFlight.size >= this.#options.queueSize) await Promise.race(this.#inFlight);
    this.#throwIfFailed();
    const partNumber = ++this.#partCount;
    if (partNumber > MAX_PARTS) {
      throw new TenantDbError(
        'VALIDATION',
        `the upload is larger than S3 accepts at this part size (${MAX_PARTS} parts of ${this.#options.buffers.partSize} bytes): raise s3.partSize`,
      );
    }
    const buffer = this.#current!;
    const bytes = buffer.subarray(0, this.#filled);
    this.#current = undefined;
    this.#filled = 0;
    this.#creating ??= this.#createMultipartUpload();
    const sending: Promise<void> = this.#uploadPart(this.#creating, partNumber, bytes)
      .then(
        (part) => {
          this.#parts[partNumber - 1] = part;
          this.#options.buffers.give(buffer);
        },
        // A failed request's buffer is not reused: its socket may not be done with it.
        (err: unknown) => this.#fail(err),
      )
      .finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
  }

  /** Sends what is left: the whole body as one PutObject, or the last part and CompleteMultipartUpload. */
  async #finish(): Promise<void> {
    if (!this.#creating) {
      const buffer = this.#current;
      // On its way: should the request fail, the buffer is not reused (see #sendPart).
      this.#current = undefined;
      await this.#putObject(buffer ? buffer.subarray(0, this.#filled) : Buffer.alloc(0));
      if (buffer) this.#options.buffers.give(buffer);
      return;
    }
    // Never empty here: a full part is sent only once a byte for the next one has come.
    await this.#sendPart();
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
    const { bucket, key } = this.#options;
    await this.#options.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: this.#uploadId,
        MultipartUpload: { Parts: this.#parts },
      }),
      this.#requestOptions,
    );
  }

  async #putObject(bytes: Buffer): Promise<void> {
    const { bucket, key, contentType } = this.#options;
    await this.#options.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: bytes,
        ContentLength: bytes.length,
        ...(contentType !== undefined && { ContentType: contentType }),
      }),
      this.#requestOptions,
    );
  }

  async #createMultipartUpload(): Promise<string> {
    const { bucket, key, contentType, client } = this.#options;
    // As lib-storage does: where the client computes checksums whenever S3 supports them (AWS's default),
    // the upload declares CRC32, which the SDK then computes for every part.
    const checksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
    const res = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        ...(contentType !== undefined && { ContentType: contentType }),
        ...(checksums && { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 }),
      }),
      // Without the signal: a Create cut off in flight may still have made an upload on the server, which
      // only its UploadId lets the clean-up abort. An aborted signal fails the first part at once.
    );
    if (!res.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
    this.#uploadId = res.UploadId;
    return res.UploadId;
  }

  async #uploadPart(creating: Promise<string>, partNumber: number, bytes: Buffer): Promise<CompletedPart> {
    const uploadId = await creating;
    const { bucket, key } = this.#options;
    // A Buffer body (not a stream): the SDK can sign it, and send it again when it retries.
    const res = await this.#options.client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: bytes,
        ContentLength: bytes.length,
      }),
      this.#requestOptions,
    );
    if (!res.ETag) throw new Error(`UploadPart ${partNumber} answered without an ETag`);
    return { PartNumber: partNumber, ETag: res.ETag, ...partChecksums(res) };
  }

  /**
   * After a failure: stops the body, lets the parts in flight settle (the signal, when aborted, has
   * stopped them), and aborts the multipart upload, so that nothing is left running or stored.
   */
  async #cleanUp(): Promise<void> {
    // Also ends a wait for its next chunk, and runs a generator's `finally`.
    if (!this.#body.destroyed) this.#body.destroy();
    // Never sent: nothing else refers to it.
    if (this.#current) this.#options.buffers.give(this.#current);
    this.#current = undefined;
    await Promise.all(this.#inFlight);
    await this.#creating?.catch(() => undefined);
    if (this.#uploadId !== undefined) await this.#abortMultipartUpload(this.#uploadId);
  }

  async #abortMultipartUpload(uploadId: string): Promise<void> {
    const { client, bucket, key, logger } = this.#options;
    try {
      // Without the signal: it must go out even when the signal is what failed the upload.
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      const name = errorName(err);
      // s3rver, for one, does not implement it; the parts of an unfinished upload are never an object.
      if (name === 'NotImplemented' || name === 'NoSuchUpload') {
        logger.debug({ err, key, uploadId }, 'the S3 server did not abort the multipart upload of a failed upload');
      } else {
        logger.warn({ err, key, uploadId }, 'could not abort the multipart upload of a failed upload; the sweep will');
      }
    }
  }
}
