import { Readable } from 'node:stream';
import { TenantDbError } from '../errors.js';
import type { UploadBody } from './types.js';

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/**
 * An upload body as a byte stream, without copying or buffering it.
 *
 * - `Buffer` / `Uint8Array`: its bytes; a `string`: its UTF-8 bytes;
 * - a `Readable`: itself;
 * - an `AsyncIterable<Uint8Array>` (an async generator, a web `ReadableStream`, …): a stream of its
 *   chunks; a chunk that is not bytes fails the stream later, as the body's own error.
 *
 * Anything else is VALIDATION.
 */
export function toReadable(body: UploadBody): Readable {
  if (body instanceof Readable) return body;
  if (typeof body === 'string') return Readable.from([Buffer.from(body, 'utf8')], { objectMode: false });
  if (body instanceof Uint8Array) {
    // A Buffer view over the same memory: no copy of a possibly large body.
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return Readable.from([bytes], { objectMode: false });
  }
  if (isAsyncIterable(body)) return Readable.from(body, { objectMode: false });
  throw new TenantDbError(
    'VALIDATION',
    'body must be a Buffer, Uint8Array, string, Readable or AsyncIterable<Uint8Array>',
  );
}
