import { randomUUID } from 'node:crypto';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { Queryable, TenantContext } from '../scope/types.js';
import type { ObjectStore } from '../storage/object-store.js';
import { fileObjectKey } from '../storage/object-keys.js';
import { isAbortSignal, uploadAbortedError } from '../storage/upload-aborted.js';
import { decodeCursor, encodeCursor, keysetTimestampSql, pageLimit } from '../util/cursor.js';
import { PG, sqlState } from '../util/pg-errors.js';
import { isUuid } from '../util/uuid.js';
import type { Page } from '../users/types.js';
import { normaliseFilename } from './filename.js';
import { uploadHashed, type HashedUpload } from './hashing-upload.js';
import { openReplayableBody } from './replayable-body.js';
import { resolveMimeType } from './mime-type.js';
import type { Document, DocumentDownload, DocumentsService, DocumentUrlOptions, ListDocumentsOptions, UploadInput } from './types.js';

interface DocumentRow {
  id: string;
  filename: string;
  file_id: string;
  user_id: string;
  mime_type: string;
  size_bytes: string;
  md5_hash: string;
  s3_path: string;
  deduplicated: boolean;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
  cursor_at: string;
}

const SELECT_DOCUMENT = `
  SELECT d.id, d.filename, d.file_id, d.user_id, d.mime_type, d.size_bytes, d.deduplicated,
         d.created_at, d.updated_at, d.created_by, f.md5_hash, f.s3_path,
         ${keysetTimestampSql('d.created_at')} AS cursor_at
    FROM documents d JOIN files f ON f.id = d.file_id`;

function toDocument(row: DocumentRow): Document {
  return {
    id: row.id,
    filename: row.filename,
    fileId: row.file_id,
    userId: row.user_id,
    mimeType: row.mime_type,
    sizeBytes: Number(row.size_bytes),
    md5: row.md5_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
    deduplicated: row.deduplicated,
  };
}

/** What documents need beyond the scope. */
export interface DocumentsDeps {
  store: ObjectStore;
  /** The key prefix of `s3.prefix`. */
  prefix: string;
  maxBytes: number | undefined;
  logger: Logger;
}

/** What the upload's transactions record besides the bytes. */
interface RecordInput {
  filename: string;
  mimeType: string;
  userId: string;
  signal: AbortSignal | undefined;
}

/** The upload's error (STORAGE, not retryable) once `signal` is aborted. */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw uploadAbortedError(signal);
}

const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** How long, and how often, a failed upload waits for the server to settle a COMMIT whose reply was lost. */
const COMMIT_WAIT_MS = 5_000;
const COMMIT_POLL_MS = 50;

/**
 * `ctx.documents`: a tenant's documents. A body that can be read twice (bytes, a `{ path }` file) is hashed
 * first and, when the tenant stores those bytes already, only a document row is recorded on that file.
 * Otherwise the bytes are streamed to the object store while hashed; one transaction then inserts (or
 * reuses, by content) the file row and inserts the document row, so a crash leaves at most an unreferenced
 * object for the sweep, never a row whose object is missing. An aborted `signal` (the input's, else the
 * scope's) stops it all up to the document's transaction.
 * @internal
 */
export class DocumentsServiceImpl implements DocumentsService {
  readonly #scope: TenantContext;
  readonly #deps: DocumentsDeps;

  constructor(scope: TenantContext, deps: DocumentsDeps) {
    this.#scope = scope;
    this.#deps = deps;
  }

  /** FORBIDDEN unless the scope may write to documents of `ownerId` (trusted scopes may do anything). */
  #assertMayWrite(ownerId: string): void {
    const { role, userId } = this.#scope;
    if (role === undefined || role === 'admin') return;
    if (role === 'user' && ownerId === userId) return;
    throw new TenantDbError('FORBIDDEN', role === 'viewer' ? 'viewers cannot change documents' : 'not your document');
  }

  async #row(id: string): Promise<DocumentRow> {
    const { rows } = isUuid(id)
      ? await this.#scope.query<DocumentRow>(`${SELECT_DOCUMENT} WHERE d.id = $1`, [id])
      : { rows: [] };
    if (!rows[0]) throw new TenantDbError('NOT_FOUND', 'no such document');
    return rows[0];
  }

  async upload(input: UploadInput): Promise<Document> {
    if (typeof input !== 'object' || input === null) throw new TenantDbError('VALIDATION', 'upload input is required');
    const signal = input.signal ?? this.#scope.signal;
    if (signal !== undefined && !isAbortSignal(signal)) throw new TenantDbError('VALIDATION', 'signal must be an AbortSignal');
    if (input.onProgress !== undefined && typeof input.onProgress !== 'function') {
      throw new TenantDbError('VALIDATION', 'onProgress must be a function');
    }
    const userId = input.userId ?? this.#scope.userId;
    if (userId === undefined) throw new TenantDbError('VALIDATION', 'an upload needs a userId (none in the scope)');
    if (!isUuid(userId)) throw new TenantDbError('VALIDATION', 'userId must be a UUID');
    this.#assertMayWrite(userId);
    const filename = normaliseFilename(input.filename);
    const mimeType = resolveMimeType(filename, input.mimeType);
    // Bad input is reported as such; past it, an aborted signal stops the upload before any I/O.
    throwIfAborted(signal);
    // Fail fast on a taken name before streaming any bytes; the unique index still decides under races.
    const taken = await this.#scope.query('SELECT 1 FROM documents WHERE user_id = $1 AND filename = $2', [userId, filename]);
    if (taken.rowCount) throw new TenantDbError('CONFLICT', 'this user already has a document with that filename');
    throwIfAborted(signal);

    const progress = { bytesHashed: 0, bytesSent: 0, done: false };
    const report = (): void => {
      if (!input.onProgress) return;
      try {
        input.onProgress({ ...progress });
      } catch (err) {
        this.#deps.logger.warn({ err: (err as Error)?.message }, 'an upload onProgress callback threw; ignored');
      }
    };
    const recordInput = { filename, mimeType, userId, signal };
    const fileId = randomUUID();
    const key = fileObjectKey(this.#deps.prefix, this.#scope.tenant.id, fileId);
    const upload = {
      maxBytes: this.#deps.maxBytes,
      contentType: mimeType,
      logger: this.#deps.logger,
      signal,
      onBytes: (sent: number) => {
        progress.bytesSent = sent;
        report();
      },
    };

    let hashed: HashedUpload;
    const replayable = await openReplayableBody(input.body, this.#deps.maxBytes);
    if (replayable) {
      // A body that can be read twice is hashed first: when the tenant already stores its bytes, none is sent.
      try {
        const expected = await replayable.hash({
          signal,
          onBytes: (n) => {
            progress.bytesHashed = n;
            report();
          },
        });
        throwIfAborted(signal);
        const existing = await this.#recordExisting({ ...recordInput, hashed: expected });
        if (existing) {
          progress.done = true;
          report();
          return toDocument(existing);
        }
        hashed = await uploadHashed(this.#deps.store, key, replayable.stream(), { ...upload, expected });
      } finally {
        await replayable.close();
      }
    } else {
      hashed = await uploadHashed(this.#deps.store, key, input.body, upload);
    }

    let result: { row: DocumentRow; reused: boolean };
    const transaction: { xid?: string } = {};
    try {
      // Aborted after the last bytes went: the object goes, and nothing is recorded.
      throwIfAborted(signal);
      result = await this.#record({ ...recordInput, fileId, key, hashed }, transaction);
    } catch (err) {
      await this.#deleteIfUnrecorded(key, transaction.xid);
      throw err;
    }
    if (result.reused) await this.#deleteObject(key); // the bytes were already stored under the existing file
    progress.done = true;
    report();
    return toDocument(result.row);
  }

  /**
   * Before any byte is sent: when the tenant already has a file with these bytes (same MD5, SHA-256 and
   * size), records a document on it and returns its row; undefined when there is none (upload the bytes).
   * An MD5 shared with other bytes is CONFLICT, as in {@link #record}.
   */
  async #recordExisting(a: RecordInput & { hashed: HashedUpload }): Promise<DocumentRow | undefined> {
    // New bytes, the common case, cost one query and no transaction.
    const candidate = await this.#scope.query('SELECT 1 FROM files WHERE md5_hash = $1', [a.hashed.md5]);
    if (!candidate.rowCount) return undefined;
    return this.#documentTransaction(async (tx) => {
      // FOR SHARE, as in #record: a delete of this file waits for our document, then finds the file
      // referenced and keeps it. A file deleted before we got here is not found: the bytes are uploaded.
      const file = await this.#lockFile(tx, a.hashed);
      if (!file) return undefined;
      return this.#insertDocument(tx, { ...a, fileId: file, size: a.hashed.size, deduplicated: true });
    });
  }

  /** The file with `hashed`'s MD5, locked FOR SHARE; undefined when none; CONFLICT when its SHA-256 or size differ. */
  async #lockFile(tx: Queryable, hashed: HashedUpload): Promise<string | undefined> {
    const existing = await tx.query<{ id: string; sha256: string; size_bytes: string }>(
      'SELECT id, sha256, size_bytes FROM files WHERE md5_hash = $1 FOR SHARE',
      [hashed.md5],
    );
    const file = existing.rows[0];
    if (!file) return undefined;
    if (file.sha256 !== hashed.sha256 || Number(file.size_bytes) !== hashed.size) {
      throw new TenantDbError('CONFLICT', 'an MD5 collision with a different stored file: the upload is refused');
    }
    return file.id;
  }

  /** Inserts a document row (last: the abort check, then nothing but reading it back) and returns it with the transaction's id. */
  async #insertDocument(
    tx: Queryable,
    a: RecordInput & { fileId: string; size: number; deduplicated: boolean },
  ): Promise<DocumentRow & { xid: string }> {
    const actor = this.#scope.userId ?? a.userId;
    const docId = randomUUID();
    await tx.query(
      `INSERT INTO documents (id, filename, file_id, user_id, mime_type, size_bytes, deduplicated, created_at, updated_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8)`,
      [docId, a.filename, a.fileId, a.userId, a.mimeType, a.size, a.deduplicated, actor],
    );
    // The last moment an abort is honoured: throwing here rolls everything back.
    throwIfAborted(a.signal);
    const { rows } = await tx.query<DocumentRow & { xid: string }>(
      `SELECT doc.*, pg_current_xact_id()::text AS xid FROM (${SELECT_DOCUMENT} WHERE d.id = $1) doc`,
      [docId],
    );
    return rows[0]!;
  }

  /** A transaction of the upload; a taken filename (the unique index) is CONFLICT. */
  async #documentTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await this.#scope.transaction(fn);
    } catch (err) {
      if (sqlState(err) === PG.UNIQUE_VIOLATION) {
        throw new TenantDbError('CONFLICT', 'this user already has a document with that filename', { cause: err });
      }
      throw err;
    }
  }

  /** The file row (new, or an existing one with the same content) and the document row, in one transaction. */
  async #record(
    a: RecordInput & { fileId: string; key: string; hashed: HashedUpload },
    transaction: { xid?: string },
  ): Promise<{ row: DocumentRow; reused: boolean }> {
    const actor = this.#scope.userId ?? a.userId;
    return this.#documentTransaction(async (tx) => {
      // A concurrent delete may remove the file we are about to reuse: then insert ours after all.
      for (let attempt = 0; attempt < 3; attempt++) {
        const inserted = await tx.query<{ id: string }>(
          `INSERT INTO files (id, s3_path, md5_hash, sha256, size_bytes, mime_type, created_at, updated_at, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, now(), now(), $7) ON CONFLICT (md5_hash) DO NOTHING RETURNING id`,
          [a.fileId, a.key, a.hashed.md5, a.hashed.sha256, a.hashed.size, a.mimeType, actor],
        );
        let fileId = inserted.rows[0]?.id;
        const reused = fileId === undefined;
        if (reused) {
          // FOR SHARE: a delete of this file waits for our document, then finds the file referenced.
          fileId = await this.#lockFile(tx, a.hashed);
          if (!fileId) continue;
        }
        const row = await this.#insertDocument(tx, { ...a, fileId: fileId!, size: a.hashed.size, deduplicated: reused });
        // The transaction's id, so that a COMMIT whose outcome is unknown can be looked up afterwards;
        // until it is set, no COMMIT was sent and a failure certainly committed nothing.
        transaction.xid = row.xid;
        return { row, reused };
      }
      throw new TenantDbError('CONFLICT', 'the upload raced with deletes of the same content; try again');
    });
  }

  /**
   * After a failed upload transaction, deletes the fresh object unless a file row references it after all.
   * Once the COMMIT may have been sent (`xid` known), a lost reply (connection cut) leaves the outcome
   * unknown: deleting then could leave a row whose object is missing. So this waits until the server has
   * settled that transaction and keeps the object if it committed with our row. Whatever cannot be checked
   * is left for the sweep, which removes an object no row references.
   */
  async #deleteIfUnrecorded(key: string, xid: string | undefined): Promise<void> {
    if (xid !== undefined) {
      try {
        let status: string | null | undefined;
        for (let waited = 0; ; waited += COMMIT_POLL_MS) {
          const { rows } = await this.#scope.query<{ status: string | null }>('SELECT pg_xact_status($1::xid8) AS status', [xid]);
          status = rows[0]?.status;
          if (status !== 'in progress') break;
          if (waited >= COMMIT_WAIT_MS) throw new Error(`transaction ${xid} still in progress`);
          await new Promise((resolve) => setTimeout(resolve, COMMIT_POLL_MS));
        }
        if (status !== 'aborted') {
          const recorded = await this.#scope.query('SELECT 1 FROM files WHERE s3_path = $1', [key]);
          if (recorded.rowCount) return;
        }
      } catch (err) {
        this.#deps.logger.warn({ key, err: (err as Error).message }, 'could not tell whether a failed upload committed; left for the sweep');
        return;
      }
    }
    await this.#deleteObject(key);
  }

  async #deleteObject(key: string): Promise<void> {
    try {
      await this.#deps.store.delete(key);
    } catch (err) {
      // Left for the sweep: an object with no file row is removed after the grace period.
      this.#deps.logger.warn({ key, err: (err as Error).message }, 'could not delete an unreferenced object');
    }
  }

  async get(id: string): Promise<Document> {
    return toDocument(await this.#row(id));
  }

  async list(options: ListDocumentsOptions = {}): Promise<Page<Document>> {
    const limit = pageLimit(options.limit);
    const after = options.cursor == null ? undefined : decodeCursor(options.cursor);
    const params: unknown[] = [limit + 1];
    const where: string[] = [];
    if (options.userId !== undefined) {
      if (!isUuid(options.userId)) return { items: [], nextCursor: null };
      params.push(options.userId);
      where.push(`d.user_id = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(d.created_at, d.id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    const { rows } = await this.#scope.query<DocumentRow>(
      `${SELECT_DOCUMENT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY d.created_at, d.id LIMIT $1`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toDocument),
      nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.cursor_at, id: last.id }) : null,
    };
  }

  async download(id: string): Promise<DocumentDownload> {
    const row = await this.#row(id);
    return { document: toDocument(row), body: await this.#deps.store.get(row.s3_path) };
  }

  async url(id: string, options: DocumentUrlOptions = {}): Promise<string> {
    const expiresIn = options.expiresIn ?? 900;
    if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_PRESIGN_SECONDS) {
      throw new TenantDbError('VALIDATION', `expiresIn must be an integer from 1 to ${MAX_PRESIGN_SECONDS} seconds`);
    }
    const row = await this.#row(id);
    return this.#deps.store.presign(row.s3_path, { expiresIn, filename: row.filename, contentType: row.mime_type });
  }

  async rename(id: string, filename: string): Promise<Document> {
    const row = await this.#row(id);
    this.#assertMayWrite(row.user_id);
    const name = normaliseFilename(filename);
    try {
      await this.#scope.query('UPDATE documents SET filename = $2, updated_at = now() WHERE id = $1', [id, name]);
    } catch (err) {
      if (sqlState(err) === PG.UNIQUE_VIOLATION) {
        throw new TenantDbError('CONFLICT', 'this user already has a document with that filename', { cause: err });
      }
      throw err;
    }
    return this.get(id);
  }

  async delete(id: string): Promise<void> {
    const row = await this.#row(id);
    this.#assertMayWrite(row.user_id);
    // The document and, when nothing else references it, its file row go in one transaction: a crash
    // never leaves a file row that no document references. The object goes after the commit.
    const objectKey = await this.#scope.transaction(async (tx) => {
      const deleted = await tx.query<{ file_id: string }>('DELETE FROM documents WHERE id = $1 RETURNING file_id', [id]);
      const fileId = deleted.rows[0]?.file_id;
      if (!fileId) throw new TenantDbError('NOT_FOUND', 'no such document');
      // An upload that reused the file meanwhile holds it FOR SHARE: this waits for it, then the foreign
      // key refuses and the file stays. The savepoint keeps the document's deletion.
      await tx.query('SAVEPOINT drop_file');
      try {
        const gone = await tx.query<{ s3_path: string }>(
          `DELETE FROM files f WHERE f.id = $1 AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.file_id = f.id)
           RETURNING s3_path`,
          [fileId],
        );
        return gone.rows[0]?.s3_path;
      } catch (err) {
        if (sqlState(err) !== PG.FOREIGN_KEY_VIOLATION) throw err;
        await tx.query('ROLLBACK TO SAVEPOINT drop_file');
        return undefined;
      }
    });
    if (objectKey) await this.#deleteObject(objectKey);
  }
}
