import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { TenantDbError } from '../errors.js';
import type { FileBody, UploadBody } from './types.js';

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/**
 * True when `body` is a {@link FileBody}: an object with a `path` that is neither a stream nor bytes (an
 * `fs.ReadStream` has a `path` too, and stays a stream). Its `path` is checked by {@link fileBodyPath}.
 */
export function isFileBody(body: unknown): body is FileBody {
  return (
    typeof body === 'object' &&
    body !== null &&
    'path' in body &&
    !(body instanceof Readable) &&
    !(body instanceof Uint8Array) &&
    !isAsyncIterable(body)
  );
}

/** The path of a {@link FileBody}; VALIDATION unless it is a non-empty string without NUL characters. */
export function fileBodyPath(body: FileBody): string {
  const { path } = body;
  if (typeof path !== 'string' || path.length === 0) {
    throw new TenantDbError('VALIDATION', 'a file body needs a path: a non-empty string');
  }
  // The file system would refuse it with a TypeError, which is the caller's input, not a bug.
  if (path.includes('\0')) throw new TenantDbError('VALIDATION', 'a file body path must not contain NUL characters');
  return path;
}

/**
 * The bytes of a body held in memory (`Buffer`, `Uint8Array`, `string` as UTF-8), or undefined for any
 * other kind. A `Buffer` and a `Uint8Array` are not copied.
 */
export function bytesOfBody(body: unknown): Buffer | undefined {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) {
    // A Buffer view over the same memory: no copy of a possibly large body.
    return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
  return undefined;
}

/**
 * An upload body as a byte stream, without copying or buffering it.
 *
 * - `Buffer` / `Uint8Array`: its bytes; a `string`: its UTF-8 bytes;
 * - a {@link FileBody}: the file, streamed from disk (a file that cannot be read fails the stream);
 * - a `Readable`: itself;
 * - an `AsyncIterable<Uint8Array>` (an async generator, a web `ReadableStream`, …): a stream of its
 *   chunks; a chunk that is not bytes fails the stream later, as the body's own error.
 *
 * Anything else is VALIDATION.
 */
export function toReadable(body: UploadBody): Readable {
  if (body instanceof Readable) return body;
  const bytes = bytesOfBody(body);
  if (bytes) return Readable.from([bytes], { objectMode: false });
  if (isAsyncIterable(body)) return Readable.from(body, { objectMode: false });
  if (isFileBody(body)) return createReadStream(fileBodyPath(body));
  throw new TenantDbError(
    'VALIDATION',
    'body must be a Buffer, Uint8Array, string, { path }, Readable or AsyncIterable<Uint8Array>',
  );
}
