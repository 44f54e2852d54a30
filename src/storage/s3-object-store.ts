import { PassThrough, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { create as createContentDisposition } from 'content-disposition';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { S3Options } from './s3-options.js';
import type { ObjectInfo, ObjectStore, PutResult } from './object-store.js';
import { PartBufferPool, uploadStream } from './multipart-upload.js';
import { errorName, httpStatus, withoutExchange } from './sdk-errors.js';
import { uploadAbortedError } from './upload-aborted.js';

const MIB = 1024 * 1024;
/** S3's smallest multipart part (except the last). */
const MIN_PART_SIZE = 5 * MIB;
/** SigV4 presigned URLs live at most a week. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** Options of {@link S3ObjectStore}: the platform's {@link S3Options} and a few tuning knobs. */
export interface S3ObjectStoreOptions extends S3Options {
  /** Keys per listed page, and so per DeleteObjects call in `deletePrefix`; 1 to 1000. Default: 1000. */
  listPageSize?: number;
  /** For a client the store builds: milliseconds to establish a connection. Default: 10 000. */
  connectionTimeoutMs?: number;
  /**
   * For a client the store builds: milliseconds a socket may stay idle mid-request before the request
   * fails (a hung server, or a download whose reader stopped reading). Default: 120 000.
   */
  socketTimeoutMs?: number;
}

function positiveInt(value: number | undefined, what: string, fallback: number, min = 1, max = Infinity): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TenantDbError('VALIDATION', `${what} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** The numeric settings of an {@link S3ObjectStore}, checked (VALIDATION), defaults filled in. */
export interface S3StoreLimits {
  partSize: number;
  queueSize: number;
  listPageSize: number;
  connectionTimeoutMs: number;
  socketTimeoutMs: number;
}

/**
 * Checks the numeric options of an {@link S3ObjectStore} and fills in their defaults; throws VALIDATION on
 * a bad one. `createPlatform` calls it so that a bad `s3.partSize` fails at once, not at the first upload.
 */
export function resolveS3StoreLimits(options: Omit<S3ObjectStoreOptions, 'bucket'>): S3StoreLimits {
  return {
    partSize: positiveInt(options.partSize, 's3.partSize', 8 * MIB, MIN_PART_SIZE),
    queueSize: positiveInt(options.queueSize, 's3.queueSize', 2, 1, 64),
    listPageSize: positiveInt(options.listPageSize, 's3.listPageSize', 1000, 1, 1000),
    connectionTimeoutMs: positiveInt(options.connectionTimeoutMs, 's3.connectionTimeoutMs', 10_000),
    socketTimeoutMs: positiveInt(options.socketTimeoutMs, 's3.socketTimeoutMs', 120_000),
  };
}

/** An SDK (or socket) error as STORAGE, the original kept as `cause`; TenantDbErrors pass through. */
function storageError(operation: string, key: string, err: unknown): TenantDbError {
  if (err instanceof TenantDbError) return err;
  return new TenantDbError('STORAGE', `S3 ${operation} of ${JSON.stringify(key)} failed (${errorName(err)})`, {
    cause: withoutExchange(err),
  });
}

function isMissingKey(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || httpStatus(err) === 404;
}

/**
 * `Content-Disposition: attachment` with `filename` (RFC 6266), by the `content-disposition` package: a
 * printable-ASCII name as `filename` (quoted, `"` and `\\` escaped, when not a token); any other name
 * (non-ASCII, control characters) as `filename*=UTF-8''…` (RFC 8187) after an ASCII fallback `filename`
 * with `?` for each other character. @internal
 */
export function contentDisposition(filename: string): string {
  return createContentDisposition(filename);
}

/**
 * Our logger in the SDK's shape, for the HTTP handler's warnings (exhausted sockets), which would
 * otherwise go to the console. (Not for the client itself: it logs every failed command at error
 * level, expected 404s included.)
 */
function sdkLogger(logger: Logger): NonNullable<S3ClientConfig['logger']> {
  const line = (content: unknown[]): { sdk: unknown } => ({ sdk: content.length === 1 ? content[0] : content });
  const ignore = (): void => {};
  return {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (...content: unknown[]) => logger.warn(line(content), 'S3 HTTP handler warning'),
    error: (...content: unknown[]) => logger.error(line(content), 'S3 HTTP handler error'),
  };
}

/**
 * The {@link ObjectStore} on Amazon S3 or any S3-compatible server (MinIO, s3rver, …), with
 * `@aws-sdk/client-s3` (uploads: a multipart loop of our own, see `uploadStream`).
 *
 * Keys are used exactly as given: callers build them with `fileObjectKey()`, which already includes
 * `options.prefix`. Every SDK failure is a STORAGE {@link TenantDbError} whose `cause` is the SDK's
 * error, except `get` of a missing key, which is NOT_FOUND.
 *
 * @example
 * ```ts
 * const store = new S3ObjectStore({ bucket: 'docs', endpoint: 'http://127.0.0.1:9000', credentials }, logger);
 * await store.put(key, Readable.from(chunks()), { contentType: 'application/pdf' });
 * store.close();
 * ```
 */
export class S3ObjectStore implements ObjectStore {
  /** The bucket every key lives in. */
  readonly bucket: string;
  readonly #client: S3Client;
  /** False for an injected client: its owner destroys it. */
  readonly #ownsClient: boolean;
  readonly #logger: Logger;
  readonly #queueSize: number;
  /** The part buffers of this store's uploads, reused from one upload to the next. */
  readonly #partBuffers: PartBufferPool;
  readonly #pageSize: number;
  #closed = false;

  /**
   * Uses `options.client` when given (it is not destroyed by {@link close}); else builds an S3Client
   * from `endpoint`, `region` (default `AWS_REGION`, else `us-east-1`), `forcePathStyle` and
   * `credentials` (default: the SDK's credential chain). With an `endpoint` (an S3-compatible server)
   * path-style addressing is the default and checksums are computed and validated only when an
   * operation requires them: s3rver, for one, would otherwise store the aws-chunked framing as the bytes.
   * Bad options throw VALIDATION.
   */
  constructor(options: S3ObjectStoreOptions, logger: Logger) {
    if (typeof options?.bucket !== 'string' || options.bucket.length === 0) {
      throw new TenantDbError('VALIDATION', 's3.bucket is required');
    }
    this.bucket = options.bucket;
    this.#logger = logger;
    const limits = resolveS3StoreLimits(options);
    this.#queueSize = limits.queueSize;
    this.#partBuffers = new PartBufferPool(limits.partSize, limits.queueSize + 1);
    this.#pageSize = limits.listPageSize;
    if (options.client) {
      this.#client = options.client;
      this.#ownsClient = false;
      return;
    }
    const compatible = options.endpoint !== undefined;
    this.#client = new S3Client({
      region: options.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(compatible && {
        endpoint: options.endpoint,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
      forcePathStyle: options.forcePathStyle ?? compatible,
      ...(options.credentials && { credentials: options.credentials }),
      // Bounded waits, so a stopped or hung server fails an upload instead of hanging it.
      requestHandler: {
        connectionTimeout: limits.connectionTimeoutMs,
        socketTimeout: limits.socketTimeoutMs,
        logger: sdkLogger(logger),
      },
    });
    this.#ownsClient = true;
  }

  /** The S3Client in use (the injected one, or the one the store built). */
  get client(): S3Client {
    return this.#client;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TenantDbError('CLOSED', 'the object store was closed');
  }

  /**
   * Streams `body` to `key`: one PutObject for a body of at most one part, else a multipart upload of
   * `partSize` parts, `queueSize` at a time, through at most `queueSize + 1` part buffers, which the
   * store's uploads reuse (it keeps that many between uploads, none after 30 s unused or once closed);
   * aborted on failure, and `body` destroyed. Then returns the size the store reports. Aborting
   * `signal` destroys `body`, fails the upload and deletes what was stored: STORAGE, not `retryable`,
   * with the signal's reason as `cause` (see {@link uploadAbortedError}).
   */
  async put(key: string, body: Readable, options: { contentType?: string; signal?: AbortSignal } = {}): Promise<PutResult> {
    this.#assertOpen();
    const { signal, contentType } = options;
    if (signal?.aborted) throw uploadAbortedError(signal);
    // The signal also goes to every request of the upload, which stops the parts in flight; failing the
    // body as well ends a wait for its next chunk. uploadStream settles only once nothing it started is
    // still running, the multipart upload aborted.
    const onAbort = (): void => {
      body.destroy(Object.assign(new Error('upload aborted'), { name: 'AbortError', cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await uploadStream(body, {
        client: this.#client,
        bucket: this.bucket,
        key,
        contentType,
        buffers: this.#partBuffers,
        queueSize: this.#queueSize,
        signal,
        logger: this.#logger,
      });
    } catch (err) {
      if (signal?.aborted) throw uploadAbortedError(signal);
      throw storageError('upload', key, err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) {
      // The last part was already on its way when the signal came: the object exists, and must not.
      await this.delete(key).catch((err: unknown) => this.#logger.warn({ err, key }, 'could not delete an aborted upload'));
      throw uploadAbortedError(signal);
    }
    const info = await this.head(key);
    if (!info) throw new TenantDbError('STORAGE', `S3 upload of ${JSON.stringify(key)} left no object`);
    return { size: info.size };
  }

  /**
   * A stream of the object's bytes; NOT_FOUND when there is no such key. A failure mid-stream (the
   * connection lost) is a STORAGE error on the stream; destroying the stream releases the connection.
   */
  async get(key: string): Promise<Readable> {
    this.#assertOpen();
    let body: Readable;
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      body = res.Body as Readable;
    } catch (err) {
      if (isMissingKey(err)) throw new TenantDbError('NOT_FOUND', `no object ${JSON.stringify(key)}`, { cause: err });
      throw storageError('get', key, err);
    }
    const out = new PassThrough();
    body.on('error', (err) => out.destroy(storageError('download', key, err)));
    // A reader that gives up early must not leave the socket held by an unread response.
    out.on('close', () => {
      if (!body.destroyed) body.destroy();
    });
    body.pipe(out);
    return out;
  }

  /** The object's size and modification time, or null when there is no such key. */
  async head(key: string): Promise<ObjectInfo | null> {
    this.#assertOpen();
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: res.ContentLength ?? 0, ...(res.LastModified && { lastModified: res.LastModified }) };
    } catch (err) {
      if (isMissingKey(err)) return null;
      throw storageError('head', key, err);
    }
  }

  /** Deletes one object; a missing object is not an error. */
  async delete(key: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isMissingKey(err)) return;
      throw storageError('delete', key, err);
    }
  }

  /**
   * Deletes every object whose key starts with `prefix`, one DeleteObjects call per listed page, and
   * returns how many went. An empty prefix is VALIDATION: it would empty the whole bucket.
   */
  async deletePrefix(prefix: string): Promise<number> {
    this.#assertOpen();
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new TenantDbError('VALIDATION', 'deletePrefix needs a non-empty prefix');
    }
    let deleted = 0;
    for await (const keys of this.#pages(prefix)) {
      if (keys.length === 0) continue;
      let res;
      try {
        res = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: keys.map(({ key }) => ({ Key: key })), Quiet: true },
          }),
        );
      } catch (err) {
        throw storageError('delete of a page under', prefix, err);
      }
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new TenantDbError('STORAGE', `S3 refused to delete ${failed.length} object(s) under ${JSON.stringify(prefix)} (${failed[0]?.Code})`);
      }
      deleted += keys.length - (res.Errors?.length ?? 0);
    }
    this.#logger.debug({ prefix, deleted }, 'deleted objects under a prefix');
    return deleted;
  }

  /** Every object under `prefix`, in key order, fetched a page at a time. */
  async *list(prefix: string): AsyncIterable<{ key: string; size: number; lastModified?: Date }> {
    for await (const page of this.#pages(prefix)) yield* page;
  }

  // ListObjects (V1) paged by Marker rather than V2's continuation tokens: every S3-compatible server
  // has it, while s3rver mints V2 tokens with DES, which OpenSSL 3 (Node 17+) refuses, so any
  // truncated V2 listing fails there. Without a delimiter the last key of a page is the next marker.
  async *#pages(prefix: string): AsyncGenerator<Array<{ key: string; size: number; lastModified?: Date }>> {
    this.#assertOpen();
    let marker: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.#client.send(
          new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.#pageSize, Marker: marker }),
        );
      } catch (err) {
        throw storageError('list', prefix, err);
      }
      const page = (res.Contents ?? [])
        .filter((o): o is typeof o & { Key: string } => typeof o.Key === 'string')
        .map((o) => ({ key: o.Key, size: o.Size ?? 0, ...(o.LastModified && { lastModified: o.LastModified }) }));
      yield page;
      const last = res.NextMarker ?? page.at(-1)?.key;
      if (!res.IsTruncated || last === undefined || last === marker) return;
      marker = last;
    }
  }

  /**
   * Aborts the multipart uploads under `prefix` initiated before `olderThan`; returns how many.
   * A server without ListMultipartUploads (s3rver) has nothing to report: 0, and a debug log line.
   */
  async abortStaleUploads(prefix: string, olderThan: Date): Promise<number> {
    this.#assertOpen();
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let res;
      try {
        res = await this.#client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (err) {
        if (errorName(err) === 'NotImplemented' || httpStatus(err) === 501) {
          this.#logger.debug({ prefix }, 'the S3 server does not list multipart uploads: none aborted');
          return aborted;
        }
        throw storageError('listing of multipart uploads under', prefix, err);
      }
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= olderThan) continue;
        try {
          await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
          aborted++;
        } catch (err) {
          // Completed or aborted by someone else since the listing: nothing left to do.
          if (errorName(err) === 'NoSuchUpload') continue;
          throw storageError('abort of a multipart upload of', u.Key, err);
        }
      }
      const more = res.IsTruncated === true;
      keyMarker = more ? res.NextKeyMarker : undefined;
      uploadIdMarker = more ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
    if (aborted > 0) this.#logger.info({ prefix, aborted }, 'aborted stale multipart uploads');
    return aborted;
  }

  /**
   * A presigned GET URL, valid for `expiresIn` seconds (1 to 604 800). With `filename`, the response
   * carries `Content-Disposition: attachment` with that name; with `contentType`, that Content-Type.
   */
  async presign(key: string, options: { expiresIn: number; filename?: string; contentType?: string }): Promise<string> {
    this.#assertOpen();
    if (options?.expiresIn === undefined) throw new TenantDbError('VALIDATION', 'expiresIn is required');
    const expiresIn = positiveInt(options.expiresIn, 'expiresIn', 0, 1, MAX_PRESIGN_SECONDS);
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(options.filename !== undefined && { ResponseContentDisposition: contentDisposition(options.filename) }),
      ...(options.contentType !== undefined && { ResponseContentType: options.contentType }),
    });
    try {
      return await getSignedUrl(this.#client, command, { expiresIn });
    } catch (err) {
      throw storageError('presign', key, err);
    }
  }

  /**
   * HeadBucket on the store's bucket: resolves when the bucket is there and these credentials may list it.
   * STORAGE when S3 says no or cannot be reached; aborting `signal` stops the request.
   */
  async checkBucket(signal?: AbortSignal): Promise<void> {
    this.#assertOpen();
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
    } catch (err) {
      throw new TenantDbError('STORAGE', `S3 HeadBucket of the bucket failed (${errorName(err)})`, { cause: withoutExchange(err) });
    }
  }

  /** Destroys the client's sockets if the store built it; an injected client is left to its owner. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#partBuffers.clear();
    if (this.#ownsClient) this.#client.destroy();
  }
}
