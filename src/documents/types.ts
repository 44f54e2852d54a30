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

/** What an upload's body may be. */
export type UploadBody = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/** Input of `ctx.documents.upload`. */
export interface UploadInput {
  filename: string;
  body: UploadBody;
  /** `type/subtype`; default: guessed from the filename's extension, else `application/octet-stream`. */
  mimeType?: string;
  /** The uploading user; default: the scope's user. One of the two is required. */
  userId?: string;
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
  upload(input: UploadInput): Promise<Document>;
  get(id: string): Promise<Document>;
  list(options?: ListDocumentsOptions): Promise<Page<Document>>;
  download(id: string): Promise<DocumentDownload>;
  /** A presigned GET URL; `expiresIn` in seconds, default 900. */
  url(id: string, options?: DocumentUrlOptions): Promise<string>;
  rename(id: string, filename: string): Promise<Document>;
  delete(id: string): Promise<void>;
}
