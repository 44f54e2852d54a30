import type { Readable } from 'node:stream';

/** What `put` learned about the bytes it stored. */
export interface PutResult {
  /** The size the store reports for the object after the upload. */
  size: number;
}

/** Facts about a stored object. */
export interface ObjectInfo {
  size: number;
  lastModified?: Date;
}

/**
 * The few operations the library needs from an object store. The S3 implementation is
 * {@link S3ObjectStore}; tests and alternative stores implement this shape.
 */
export interface ObjectStore {
  /**
   * Streams `body` to `key` (multipart for large bodies) and returns the stored size. Aborting `signal`
   * stops it and leaves no object, rejecting with `uploadAbortedError(signal)`.
   */
  put(key: string, body: Readable, options?: { contentType?: string; signal?: AbortSignal }): Promise<PutResult>;
  /** A stream of the object's bytes; NOT_FOUND if it does not exist. */
  get(key: string): Promise<Readable>;
  /** Null when the object does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Deletes one object; deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Deletes every object whose key starts with `prefix`; returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** Lists objects under a prefix, page by page. */
  list(prefix: string): AsyncIterable<{ key: string; size: number; lastModified?: Date }>;
  /** Aborts multipart uploads under `prefix` started before `olderThan`; returns how many. */
  abortStaleUploads(prefix: string, olderThan: Date): Promise<number>;
  /** A presigned GET URL valid for `expiresIn` seconds. */
  presign(key: string, options: { expiresIn: number; filename?: string; contentType?: string }): Promise<string>;
  /** Releases sockets. */
  close(): void;
}
