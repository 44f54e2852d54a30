import mime from 'mime-types';
import { TenantDbError } from '../errors.js';

/** The type given to bytes of unknown kind. */
export const DEFAULT_MIME_TYPE = 'application/octet-stream';

/** The longest mime type stored (the `mime_type` columns hold 255). */
export const MAX_MIME_TYPE_LENGTH = 255;

// RFC 6838 restricted-name for type and subtype; RFC 9110 token / quoted-string for parameters,
// kept to printable ASCII because the type also travels as an HTTP header (Content-Type on S3).
const NAME = '[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}';
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = String.raw`"(?:[\t !#-\[\]-~]|\\[\t -~])*"`;
const MEDIA_TYPE = new RegExp(String.raw`^(${NAME})/(${NAME})((?:[ \t]*;[ \t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*)[ \t]*$`);
const PARAMETER = new RegExp(String.raw`;[ \t]*(${TOKEN})=(${TOKEN}|${QUOTED})`, 'g');

/** The type of a file by its extension (the `mime-types` package's table), or undefined when it has none. */
export function mimeTypeFromExtension(filename: string): string | undefined {
  const dot = filename.lastIndexOf('.');
  // A leading dot marks a hidden file (`.env`), not an extension.
  if (dot <= 0 || dot === filename.length - 1) return undefined;
  const extension = filename.slice(dot + 1).toLowerCase();
  // Only the extension goes to `lookup`, which would take a bare `pdf` (or `.pdf`) for one.
  return mime.lookup(extension) || undefined;
}

/**
 * The mime type to store for a document.
 *
 * A `given` type is validated as `type/subtype` (RFC 6838 names, optional `; name=value`
 * parameters kept), its type and subtype lower-cased, at most 255 characters; anything else is
 * VALIDATION. Without one the type is guessed from the filename's extension with the `mime-types`
 * package (no charset added), else it is `application/octet-stream`.
 *
 * @example
 * ```ts
 * resolveMimeType('report.PDF')                             // 'application/pdf'
 * resolveMimeType('notes', 'Text/Plain; charset=utf-8')     // 'text/plain; charset=utf-8'
 * resolveMimeType('blob.unknown')                           // 'application/octet-stream'
 * ```
 */
export function resolveMimeType(filename: string, given?: string): string {
  if (given === undefined) return mimeTypeFromExtension(filename) ?? DEFAULT_MIME_TYPE;
  if (typeof given !== 'string') throw new TenantDbError('VALIDATION', 'mimeType must be a string');
  const trimmed = given.trim();
  if (trimmed.length > MAX_MIME_TYPE_LENGTH) {
    throw new TenantDbError('VALIDATION', `mimeType is longer than ${MAX_MIME_TYPE_LENGTH} characters`);
  }
  const match = MEDIA_TYPE.exec(trimmed);
  if (!match) throw new TenantDbError('VALIDATION', 'mimeType must be of the form type/subtype');
  const [, type, subtype, parameters] = match as unknown as [string, string, string, string];
  let result = `${type.toLowerCase()}/${subtype.toLowerCase()}`;
  for (const [, name, value] of parameters.matchAll(PARAMETER)) result += `; ${name}=${value}`;
  if (result.length > MAX_MIME_TYPE_LENGTH) {
    throw new TenantDbError('VALIDATION', `mimeType is longer than ${MAX_MIME_TYPE_LENGTH} characters`);
  }
  return result;
}
