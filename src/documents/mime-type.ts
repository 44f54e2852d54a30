import { TenantDbError } from '../errors.js';

/** The type given to bytes of unknown kind. */
export const DEFAULT_MIME_TYPE = 'application/octet-stream';

/** The longest mime type stored (the `mime_type` columns hold 255). */
export const MAX_MIME_TYPE_LENGTH = 255;

/** Common extensions (lower case, no dot) and their types. */
const BY_EXTENSION: Readonly<Record<string, string>> = Object.freeze({
  // documents
  pdf: 'application/pdf',
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript',
  mjs: 'text/javascript',
  json: 'application/json',
  xml: 'application/xml',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  rtf: 'application/rtf',
  ics: 'text/calendar',
  vcf: 'text/vcard',
  eml: 'message/rfc822',
  epub: 'application/epub+zip',
  // office
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  // images
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  bmp: 'image/bmp',
  ico: 'image/vnd.microsoft.icon',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  heic: 'image/heic',
  avif: 'image/avif',
  // audio and video
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  oga: 'audio/ogg',
  flac: 'audio/flac',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  avi: 'video/x-msvideo',
  mkv: 'video/x-matroska',
  mpeg: 'video/mpeg',
  mpg: 'video/mpeg',
  // archives
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  tar: 'application/x-tar',
  bz2: 'application/x-bzip2',
  xz: 'application/x-xz',
  '7z': 'application/x-7z-compressed',
  rar: 'application/vnd.rar',
  // fonts
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  otf: 'font/otf',
});

// RFC 6838 restricted-name for type and subtype; RFC 9110 token / quoted-string for parameters,
// kept to printable ASCII because the type also travels as an HTTP header (Content-Type on S3).
const NAME = '[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}';
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = String.raw`"(?:[\t !#-\[\]-~]|\\[\t -~])*"`;
const MEDIA_TYPE = new RegExp(String.raw`^(${NAME})/(${NAME})((?:[ \t]*;[ \t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*)[ \t]*$`);
const PARAMETER = new RegExp(String.raw`;[ \t]*(${TOKEN})=(${TOKEN}|${QUOTED})`, 'g');

/** The type of a file by its extension, or undefined when the table has none. */
export function mimeTypeFromExtension(filename: string): string | undefined {
  const dot = filename.lastIndexOf('.');
  // A leading dot marks a hidden file (`.env`), not an extension.
  if (dot <= 0 || dot === filename.length - 1) return undefined;
  const extension = filename.slice(dot + 1).toLowerCase();
  return Object.hasOwn(BY_EXTENSION, extension) ? BY_EXTENSION[extension] : undefined;
}

/**
 * The mime type to store for a document.
 *
 * A `given` type is validated as `type/subtype` (RFC 6838 names, optional `; name=value`
 * parameters kept), its type and subtype lower-cased, at most 255 characters; anything else is
 * VALIDATION. Without one the type is guessed from the filename's extension with a built-in table of
 * common types, else it is `application/octet-stream`.
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
