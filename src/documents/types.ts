import type { Readable } from 'node:stream';
import type { Page } from '../users/types.js';

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

/** `ctx.documents`: the documents of the scope's tenant. */
export interface DocumentsService {
  upload(input: UploadInput): Promise<Document>;
  get(id: string): Promise<Document>;
  list(options?: { userId?: string; limit?: number; cursor?: string | null }): Promise<Page<Document>>;
  download(id: string): Promise<{ document: Document; body: Readable }>;
  /** A presigned GET URL; `expiresIn` in seconds, default 900. */
  url(id: string, options?: { expiresIn?: number }): Promise<string>;
  rename(id: string, filename: string): Promise<Document>;
  delete(id: string): Promise<void>;
}
