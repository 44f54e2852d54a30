import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { TenantDbError } from '../errors.js';
import { chunkAsBytes } from '../util/bytes.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { uploadAbortedError } from '../storage/upload-aborted.js';
import { toReadable } from './body.js';
import type { UploadBody } from './types.js';

/** What {@link uploadHashed} learned about the bytes it stored. */
export interface HashedUpload {
  /** Hex MD5 of the bytes. */
  md5: string;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  /** Number of bytes. */
  size: number;
}

/** Options of {@link uploadHashed}. */
export interface UploadHashedOptions {
  /** Largest body accepted, counted on the bytes actually streamed. Default: no limit. */
  maxBytes?: number;
  /** Stored as the object's Content-Type. Default: none. */
  contentType?: string;
  /**
   * Aborting it (also before the call) fails the upload and leaves no object: STORAGE, never `retryable`,
   * the signal's reason as `cause` (see `uploadAbortedError`).
   */
  signal?: AbortSignal | undefined;
  /**
   * The digests and size the body must have: it was read once before (to look for its bytes among the
   * stored files) and is read again here. More bytes than `expected.size` (the upload stops at once), or
   * other digests at the end, is CONFLICT ("the body changed between its two reads"), and leaves no object.
   */
  expected?: HashedUpload | undefined;
  /** Called with the bytes handed to the store so far, as they go. */
  onBytes?: ((bytesSent: number) => void) | undefined;
  /** Where a failed clean-up is reported. Default: silent. */
  logger?: Logger;
}

function changedError(detail: string): TenantDbError {
  return new TenantDbError('CONFLICT', `the upload body changed between its two reads (${detail}): nothing was stored`);
}

/**
 * Streams `body` to `key` while computing its MD5, SHA-256 and size in the same pass: memory stays
 * flat whatever the size (about one multipart part per upload slot), nothing is buffered whole.
 *
 * Then checks the stored object's size (as `store.put` reports it) against the bytes hashed; a mismatch deletes the
 * object and is STORAGE. Failures, each leaving no object behind (best effort when the store is down):
 * - the body is not a supported kind, yields something other than bytes, or fails itself: VALIDATION
 *   (the body's own error as `cause`);
 * - more than `maxBytes` bytes: VALIDATION, the upload aborted as soon as the limit is crossed;
 * - bytes other than `expected` (a body read before that changed since): CONFLICT;
 * - the store fails: STORAGE with the cause; `signal` is aborted: STORAGE, not `retryable`, its reason as `cause`.
 *
 * @example
 * ```ts
 * const { md5, sha256, size } = await uploadHashed(store, fileObjectKey(prefix, tenantId, fileId), req, { maxBytes: 50e6 });
 * ```
 */
export async function uploadHashed(
  store: ObjectStore,
  key: string,
  body: UploadBody,
  options: UploadHashedOptions = {},
): Promise<HashedUpload> {
  const { maxBytes, contentType, signal, expected, onBytes } = options;
  const logger = options.logger ?? silentLogger;
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
    throw new TenantDbError('VALIDATION', 'maxBytes must be a non-negative integer');
  }
  const source = toReadable(body);
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  // Why the body stopped, when it was the body's fault; the store's own error may be about
  // something else by then (s3rver, for one, refuses the multipart abort that follows).
  let bodyFailure: TenantDbError | undefined;

  const hasher = new Transform({
    // Accepts whatever an object-mode Readable yields, so that a non-bytes chunk is a VALIDATION
    // failure of this upload rather than a type error thrown inside `pipe`.
    writableObjectMode: true,
    writableHighWaterMark: 4,
    transform(chunk: unknown, _encoding, callback) {
      const bytes = chunkAsBytes(chunk);
      if (!bytes) {
        bodyFailure ??= new TenantDbError('VALIDATION', 'the upload body yielded something other than bytes');
        callback(bodyFailure);
        return;
      }
      size += bytes.length;
      if (expected && size > expected.size) {
        bodyFailure ??= changedError(`more than the ${expected.size} bytes hashed`);
        callback(bodyFailure);
        return;
      }
      if (maxBytes !== undefined && size > maxBytes) {
        bodyFailure ??= new TenantDbError('VALIDATION', `the upload is larger than maxBytes (${maxBytes})`);
        callback(bodyFailure);
        return;
      }
      md5.update(bytes);
      sha256.update(bytes);
      callback(null, bytes);
      onBytes?.(size);
    },
  });
  // Failures are read from `bodyFailure` and the store's rejection; these listeners only keep an
  // unobserved 'error' event from crashing the process.
  hasher.on('error', () => {});
  source.on('error', (err: unknown) => {
    bodyFailure ??= new TenantDbError('VALIDATION', 'the upload body failed', { cause: err });
    hasher.destroy(bodyFailure);
  });
  // Whatever stops the upload (store failure, limit, abort) also stops the body: a generator's
  // `finally` runs, a file handle closes.
  hasher.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(hasher);
  // Stops the body whatever the store does with the signal (S3ObjectStore also aborts its multipart upload).
  const onAbort = (): void => {
    hasher.destroy(uploadAbortedError(signal!));
  };
  // Aborted before the call: the body is stopped (and closed) all the same, and nothing is stored.
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  const cleanUp = async (): Promise<void> => {
    await store.delete(key).catch((err: unknown) => {
      logger.warn({ err, key }, 'could not delete the object of a failed upload; the sweep will');
    });
  };

  // `put` reports the size the store holds after the upload (S3: a HEAD of the new object).
  let stored: number;
  try {
    ({ size: stored } = await store.put(key, hasher, {
      ...(contentType !== undefined && { contentType }),
      ...(signal && { signal }),
    }));
  } catch (err) {
    hasher.destroy();
    await cleanUp();
    if (signal?.aborted) throw uploadAbortedError(signal);
    if (bodyFailure) throw bodyFailure;
    throw err instanceof TenantDbError ? err : new TenantDbError('STORAGE', 'upload failed', { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) {
    // Aborted once the last bytes were on their way: the object exists, and must not.
    await cleanUp();
    throw uploadAbortedError(signal);
  }
  if (stored !== size) {
    await cleanUp();
    throw new TenantDbError('STORAGE', `the stored object has ${stored} bytes, ${size} bytes were sent`);
  }
  const result = { md5: md5.digest('hex'), sha256: sha256.digest('hex'), size };
  if (expected && (result.size !== expected.size || result.md5 !== expected.md5 || result.sha256 !== expected.sha256)) {
    await cleanUp();
    throw changedError(result.size === expected.size ? 'other bytes, same size' : `${result.size} bytes, ${expected.size} hashed`);
  }
  return result;
}
