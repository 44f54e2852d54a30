import { TenantDbError } from '../errors.js';

/** The longest filename, in bytes of UTF-8 (the `documents.filename` column holds 255). */
export const MAX_FILENAME_BYTES = 255;

// C0 controls (NUL included), DEL, C1 controls, both path separators, the bidi embeddings, overrides and
// isolates (U+202A–U+202E, U+2066–U+2069: `\u202Egnp.exe` displays as `exe.png`), and lone surrogates
// (which UTF-8 cannot encode: the driver would silently store U+FFFD instead).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f/\\\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

/**
 * Checks a document's filename and returns it NFC-normalised, so that the NFC and NFD spellings of a
 * name are one name (and collide under the per-user uniqueness rule).
 *
 * Rules, on the normalised name: a string of 1 to 255 bytes of UTF-8; no `/`, `\`, NUL or control
 * character (C0, DEL, C1), no bidi embedding, override or isolate (U+202A–U+202E, U+2066–U+2069); not `.`
 * or `..`. Anything else is VALIDATION.
 *
 * @example
 * ```ts
 * normaliseFilename('Cafe\u0301.pdf') // 'Café.pdf' (NFC)
 * normaliseFilename('../etc/passwd')   // throws VALIDATION
 * ```
 */
export function normaliseFilename(name: unknown): string {
  if (typeof name !== 'string') throw new TenantDbError('VALIDATION', 'filename must be a string');
  const normalised = name.normalize('NFC');
  if (normalised.length === 0) throw new TenantDbError('VALIDATION', 'filename is empty');
  if (Buffer.byteLength(normalised, 'utf8') > MAX_FILENAME_BYTES) {
    throw new TenantDbError('VALIDATION', `filename is longer than ${MAX_FILENAME_BYTES} bytes of UTF-8`);
  }
  if (FORBIDDEN.test(normalised)) {
    throw new TenantDbError('VALIDATION', 'filename contains a path separator, a control character, a bidi override or invalid UTF-16');
  }
  if (normalised === '.' || normalised === '..') throw new TenantDbError('VALIDATION', 'filename cannot be "." or ".."');
  return normalised;
}
