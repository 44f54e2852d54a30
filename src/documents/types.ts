import type { Readable } from 'node:stream';
import type { ListOptions, Page } from '../users/types.js';

/** A document: a user's named reference to a stored file. */
export interface Document {
  id: string;
  /** NFC-normalised, 1 to 255 bytes of UTF-8. */
  filename: string;
  fileId: string;
  /** The uploading user. */
  userId: string;
  mimeType: string;
  sizeBytes: number;
  /** Hex MD5 of the bytes. */
  md5: string;
  createdAt: Date;
  updatedAt: Date;
  createdBy: string | null;
  /** True when the upload reused an existing file's bytes. */
  deduplicated: boolean;
}

/**
 * A file on local disk as an upload body: `{ path: '/tmp/upload-1234' }`.
 *
 * It is read twice, never whole into memory: first streamed to compute its MD5, SHA-256 and size (when the
 * tenant already stores those bytes nothing is sent to S3), then, only if needed, streamed again to S3 and
 * hashed once more on the way. A file that changed between the two reads is refused (CONFLICT) and leaves
 * nothing stored. A missing or unreadable path, a directory or anything else that is not a regular file is
 * VALIDATION, with the file system's error as `cause`.
 *
 * @example
 * ```ts
 * await ctx.documents.upload({ filename: 'scan.pdf', body: { path: req.file.path } });
 * ```
 */
export interface FileBody {
  /** Path of a regular file (relative paths resolve against the working directory); a non-empty string. */
  path: string;
}

/**
 * What an upload's body may be.
 *
 * - Bodies that can be read twice, `Buffer`, `Uint8Array`, `string` (its UTF-8 bytes) and {@link FileBody}:
 *   hashed first, and not sent to S3 at all when the tenant already stores the same bytes.
 * - Streams, `Readable` and `AsyncIterable<Uint8Array>` (an async generator, a web `ReadableStream`): read
 *   once, streamed to S3 while hashed; when the bytes turn out to be stored already, the fresh copy is deleted.
 */
export type UploadBody = Buffer | Uint8Array | string | FileBody | Readable | AsyncIterable<Uint8Array>;

/**
 * How far an upload got, as `UploadInput.onProgress` receives it.
 *
 * @example
 * ```ts
 * let sent = 0;
 * const doc = await ctx.documents.upload({ filename, body, onProgress: (p) => (sent = p.bytesSent) });
 * // doc.deduplicated && sent === 0: the bytes were found stored, nothing went to S3
 * ```
 */
export interface UploadProgress {
  /**
   * Bytes read so far to hash a body that can be read twice (`Buffer`, `Uint8Array`, `string`,
   * {@link FileBody}) before anything is sent; 0 for streams, which are hashed while they are sent.
   */
  bytesHashed: number;
  /**
   * Bytes of the body handed to the object store so far (S3 receives them in `s3.partSize` parts). 0 for
   * an upload deduplicated before sending: the tenant already stored those bytes.
   */
  bytesSent: number;
  /** True on the last report, made once, after the document is recorded; the counts are then final. */
  done: boolean;
}

/** Input of `ctx.documents.upload`. */
export interface UploadInput {
  /** NFC-normalised, 1 to 255 bytes of UTF-8, no `/`, `\`, NUL or control characters (else VALIDATION). */
  filename: string;
  /** The bytes: see {@link UploadBody} for which kinds are deduplicated before upload. */
  body: UploadBody;
  /** `type/subtype`; default: guessed from the filename's extension, else `application/octet-stream`. */
  mimeType?: string;
  /** The uploading user; default: the scope's user. One of the two is required. */
  userId?: string;
  /**
   * Cancels the upload: aborted before the call or at any point before the document is recorded, the
   * upload rejects with STORAGE (`retryable: false`, `cause`: the signal's reason) and leaves no object and
   * no rows. Default: the scope's `signal` (`withTenant(…, { signal })`; the Express and Fastify
   * integrations pass one that aborts when the client disconnects), else none.
   */
  signal?: AbortSignal;
  /**
   * Called as the upload hashes and sends bytes, and once more with `done: true` when it succeeded. It
   * runs on the upload's path: keep it cheap. An exception it throws is logged and otherwise ignored.
   */
  onProgress?: (progress: UploadProgress) => void;
}

/** Options of `ctx.documents.list`: keyset pagination, optionally one user's documents only. */
export interface ListDocumentsOptions extends ListOptions {
  /** Only the documents this user uploaded. Default: every document of the tenant. */
  userId?: string;
}

/** What `ctx.documents.download` returns: the document and a stream of its bytes. */
export interface DocumentDownload {
  document: Document;
  body: Readable;
}

/** Options of `ctx.documents.url`. */
export interface DocumentUrlOptions {
  /** Seconds the URL stays valid. Default: 900. */
  expiresIn?: number;
}

/** `ctx.documents`: the documents of the scope's tenant. */
export interface DocumentsService {
  /**
   * Stores `input.body` and records a document for it; bytes the tenant already stores are stored once
   * (`deduplicated: true`). See {@link UploadInput} for cancelling (`signal`) and progress (`onProgress`).
   *
   * @example
   * ```ts
   * const doc = await ctx.documents.upload({ filename: 'report.pdf', body: { path: tmpFile }, signal });
   * ```
   */
  upload(input: UploadInput): Promise<Document>;
  get(id: string): Promise<Document>;
  list(options?: ListDocumentsOptions): Promise<Page<Document>>;
  download(id: string): Promise<DocumentDownload>;
  /** A presigned GET URL; `expiresIn` in seconds, default 900. */
  url(id: string, options?: DocumentUrlOptions): Promise<string>;
  rename(id: string, filename: string): Promise<Document>;
  delete(id: string): Promise<void>;
}
