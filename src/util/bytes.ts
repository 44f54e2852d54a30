/**
 * A chunk of a byte stream as a Buffer, without copying: a Buffer as it is, a Uint8Array viewed, a string
 * (a stream with an encoding set) as UTF-8. Undefined for anything else (what an object-mode stream may
 * yield), for the caller to refuse.
 * @internal
 */
export function chunkAsBytes(chunk: unknown): Buffer | undefined {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return undefined;
}
