import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Document, Platform, Tenant, TenantContext, UploadInput, UploadProgress } from '../../src/index.js';
import { countingS3Client } from '../support/counting-s3.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { bytesOf } from '../support/streams.js';

const MIB = 1024 * 1024;

describe('documents: bodies that can be read twice are deduplicated before any byte goes to S3', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const bucket = inject('s3Bucket');
  const counting = countingS3Client();
  let platform: Platform;
  let tenant: Tenant;
  let folder: string;
  const user = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);
  const filesPrefix = (): string => `${env.prefix}tenants/${tenant.id}/files/`;
  const objects = (): Promise<string[]> => listKeys(s3, bucket, filesPrefix());

  beforeAll(async () => {
    platform = await env.initPlatform({ s3: { ...env.options().s3, client: counting.client } });
    tenant = await platform.tenants.create({ name: 'Dedup before upload' });
    folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-dedup-before-'));
  });
  afterAll(async () => {
    await platform.close();
    counting.client.destroy();
    await rm(folder, { recursive: true, force: true });
  });

  /** Uploads with an onProgress recorder; returns the document, its last progress report and the S3 writes it made. */
  async function upload(
    input: Omit<UploadInput, 'userId' | 'onProgress'>,
  ): Promise<{ doc: Document; last: UploadProgress; reports: UploadProgress[]; writes: string[]; bytesWritten: number }> {
    const reports: UploadProgress[] = [];
    const mark = counting.traffic.commands.length;
    const bytesBefore = counting.traffic.bytesWritten;
    const doc = await trusted((ctx) => ctx.documents.upload({ ...input, userId: user, onProgress: (p) => reports.push(p) }));
    return {
      doc,
      last: reports.at(-1)!,
      reports,
      writes: counting.writesSince(mark),
      bytesWritten: counting.traffic.bytesWritten - bytesBefore,
    };
  }

  async function fileWith(name: string, bytes: Buffer): Promise<string> {
    const file = path.join(folder, name);
    await writeFile(file, bytes);
    return file;
  }

  async function noRowsNamed(filename: string): Promise<void> {
    const { rowCount } = await trusted((ctx) => ctx.query('SELECT 1 FROM documents WHERE filename = $1', [filename]));
    expect(rowCount).toBe(0);
  }

  it('sends nothing to S3 for a second upload of the same Buffer: bytesSent 0, no S3 write, still one object', async () => {
    const bytes = randomBytes(100_000);
    const first = await upload({ filename: 'buffer-1.bin', body: bytes });
    expect(first.doc.deduplicated).toBe(false);
    expect(first.last).toEqual({ bytesHashed: bytes.length, bytesSent: bytes.length, done: true });
    expect(first.writes).toEqual(['PutObjectCommand']);
    expect(first.bytesWritten).toBe(bytes.length);
    const before = await objects();

    const second = await upload({ filename: 'buffer-2.bin', body: Buffer.from(bytes) });
    expect(second.doc).toMatchObject({ deduplicated: true, fileId: first.doc.fileId, sizeBytes: bytes.length });
    expect(second.last).toEqual({ bytesHashed: bytes.length, bytesSent: 0, done: true });
    expect(second.reports.every((r) => r.bytesSent === 0)).toBe(true);
    expect(second.writes).toEqual([]);
    expect(await objects()).toEqual(before);
    // The same bytes as a Uint8Array view, and a string sent twice: deduplicated before upload too.
    const view = await upload({ filename: 'buffer-4.bin', body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) });
    expect(view).toMatchObject({ writes: [], last: { bytesSent: 0 }, doc: { deduplicated: true } });
    const text = 'the same text, twice';
    await upload({ filename: 'text-1.txt', body: text });
    expect((await upload({ filename: 'text-2.txt', body: text })).writes).toEqual([]);
  });

  it('sends nothing to S3 for a second upload of the same { path } file (multipart-sized), nor for its bytes as a Buffer', async () => {
    const bytes = randomBytes(12 * MIB + 5);
    const file = await fileWith('twelve.bin', bytes);
    const before = await objects();

    const first = await upload({ filename: 'file-1.bin', body: { path: file } });
    expect(first.doc).toMatchObject({ deduplicated: false, sizeBytes: bytes.length, md5: createHash('md5').update(bytes).digest('hex') });
    expect(first.last).toEqual({ bytesHashed: bytes.length, bytesSent: bytes.length, done: true });
    // Hashed first (1 MiB steps), then sent: every hashing report comes before any byte is sent.
    const firstSend = first.reports.findIndex((r) => r.bytesSent > 0);
    expect(first.reports.slice(0, firstSend).map((r) => r.bytesHashed).at(-1)).toBe(bytes.length);
    expect(first.writes).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);
    expect(first.bytesWritten).toBe(bytes.length);
    const stored = await objects();
    expect(stored).toEqual([...before, `${filesPrefix()}${first.doc.fileId}`].sort());

    const second = await upload({ filename: 'file-2.bin', body: { path: file } });
    expect(second.doc).toMatchObject({ deduplicated: true, fileId: first.doc.fileId });
    expect(second.last).toEqual({ bytesHashed: bytes.length, bytesSent: 0, done: true });
    expect(second.writes).toEqual([]);
    expect(second.bytesWritten).toBe(0);

    const asBuffer = await upload({ filename: 'file-3.bin', body: bytes });
    expect(asBuffer).toMatchObject({ writes: [], last: { bytesSent: 0 }, doc: { deduplicated: true, fileId: first.doc.fileId } });
    // At the S3 side: one object for the three documents, byte-identical to the file.
    expect(await objects()).toEqual(stored);
    await trusted(async (ctx) => {
      const { body } = await ctx.documents.download(second.doc.id);
      expect((await bytesOf(body)).equals(bytes)).toBe(true);
      const { rows } = await ctx.query<{ n: string }>('SELECT count(*) AS n FROM documents WHERE file_id = $1', [first.doc.fileId]);
      expect(Number(rows[0]!.n)).toBe(3);
    });
  });

  it.each([
    ['rewritten with other bytes of the same size', (file: string, size: number) => writeFileSync(file, randomBytes(size))],
    ['grown', (file: string) => appendFileSync(file, 'more')],
    ['truncated', (file: string, size: number) => truncateSync(file, size - 1)],
  ])('refuses a file %s after its hashing pass, as it is uploaded, with CONFLICT, and stores nothing', async (how, change) => {
    const size = 6 * MIB + 3;
    const file = await fileWith(`changing-${how.split(' ')[0]}.bin`, randomBytes(size));
    const before = await objects();
    const filename = `changed-${how.split(' ')[0]}.bin`;
    let changed = false;
    const err = await trusted((ctx) =>
      ctx.documents.upload({
        filename,
        body: { path: file },
        userId: user,
        onProgress: (p) => {
          // The hashing pass has read the whole file, the upload has read its first MiB: change the file now.
          if (!changed && p.bytesHashed === size && p.bytesSent > 0) {
            changed = true;
            change(file, size);
          }
        },
      }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(changed).toBe(true);
    expect(err).toMatchObject({ code: 'CONFLICT' });
    expect(await objects()).toEqual(before);
    await noRowsNamed(filename);
    await trusted(async (ctx) => {
      const orphans = await ctx.query('SELECT 1 FROM files f WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.file_id = f.id)');
      expect(orphans.rowCount).toBe(0);
    });
  });

  it('refuses a missing file, a directory and a bad path with VALIDATION (the fs error as cause), and stores nothing', async () => {
    const before = await objects();
    const dir = path.join(folder, 'a-directory');
    await mkdir(dir);
    const cases: Array<[unknown, string | undefined]> = [
      [{ path: path.join(folder, 'does-not-exist.bin') }, 'ENOENT'],
      [{ path: dir }, 'EISDIR'],
      [{ path: '' }, undefined],
      [{ path: 42 }, undefined],
    ];
    for (const [body, cause] of cases) {
      const err = await trusted((ctx) => ctx.documents.upload({ filename: 'bad-path.bin', body: body as never, userId: user })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'VALIDATION' });
      if (cause) expect((err as Error).cause).toMatchObject({ code: cause });
    }
    expect(await objects()).toEqual(before);
    await noRowsNamed('bad-path.bin');
  });

  it('applies documents.maxBytes to a { path } file', async () => {
    const limited = env.platform({ s3: { ...env.options().s3, client: counting.client }, documents: { maxBytes: MIB } });
    try {
      const before = await objects();
      const mark = counting.traffic.commands.length;
      const over = await fileWith('over.bin', randomBytes(MIB + 1));
      await expect(
        limited.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'over.bin', body: { path: over }, userId: user })),
      ).rejects.toMatchObject({ code: 'VALIDATION' });
      expect(counting.writesSince(mark)).toEqual([]);
      expect(await objects()).toEqual(before);
      const exact = await fileWith('exact.bin', randomBytes(MIB));
      const doc = await limited.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'exact.bin', body: { path: exact }, userId: user }));
      expect(doc.sizeBytes).toBe(MIB);
    } finally {
      await limited.close();
    }
  });

  it('twelve concurrent uploads of one new file end with one file row and one object', async () => {
    const bytes = randomBytes(300_000);
    const file = await fileWith('concurrent.bin', bytes);
    const before = await objects();
    const docs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => trusted((ctx) => ctx.documents.upload({ filename: `concurrent-${i}.bin`, body: { path: file }, userId: user }))),
    );
    expect(new Set(docs.map((d) => d.fileId)).size).toBe(1);
    expect(docs.filter((d) => !d.deduplicated)).toHaveLength(1);
    expect(await objects()).toEqual([...before, `${filesPrefix()}${docs[0]!.fileId}`].sort());
  });

  it('a delete racing a dedup before upload never leaves a document whose object is missing', async () => {
    const iterations = 48;
    for (let i = 0; i < iterations; i++) {
      const content = Buffer.from(`race before upload ${i} ${randomUUID()}`);
      const doc1 = await trusted((ctx) => ctx.documents.upload({ filename: `pre-race-${i}-a.txt`, body: content, userId: user }));
      // The delete starts 0 to 23 turns of the event loop after the second upload is called (even
      // iterations) or has hashed its body (odd ones): it lands before, during and after the lookup of the
      // stored file and the document's transaction, and the upload either reuses the file or, finding it
      // gone, uploads the bytes again.
      const turns = (i >> 1) % 24;
      let deleting: Promise<void> | undefined;
      const startDelete = (): void => {
        deleting ??= (async () => {
          for (let t = 0; t < turns; t++) await new Promise((resolve) => setImmediate(resolve));
          await trusted((c) => c.documents.delete(doc1.id));
        })();
      };
      if (i % 2 === 0) startDelete();
      const doc2 = await trusted((ctx) =>
        ctx.documents.upload({
          filename: `pre-race-${i}-b.txt`,
          body: Buffer.from(content),
          userId: user,
          onProgress: (p) => {
            if (!p.done) startDelete();
          },
        }),
      );
      await deleting;
      await trusted(async (ctx) => {
        await expect(ctx.documents.get(doc1.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const { rows } = await ctx.query<{ s3_path: string }>('SELECT s3_path FROM files WHERE id = $1', [doc2.fileId]);
        expect(rows).toHaveLength(1);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: rows[0]!.s3_path }));
        expect(head.ContentLength).toBe(content.length);
        const { body } = await ctx.documents.download(doc2.id);
        expect((await bytesOf(body)).equals(content)).toBe(true);
      });
    }
    // Every file row has its object and a document, and every object its file row.
    await trusted(async (ctx) => {
      const orphans = await ctx.query('SELECT 1 FROM files f WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.file_id = f.id)');
      expect(orphans.rowCount).toBe(0);
      const { rows } = await ctx.query<{ s3_path: string }>('SELECT s3_path FROM files');
      expect(await objects()).toEqual(rows.map((r) => r.s3_path).sort());
    });
  });
});
