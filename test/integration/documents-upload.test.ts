import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant, TenantContext, UploadBody } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { bytesOf } from '../support/streams.js';
import { createTestUser } from '../support/users.js';

const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

describe('documents: upload of every body kind, fields, download and presigned URL', () => {
  const env = useTestPlatform();
  let platform: Platform;
  let tenant: Tenant;
  const uploader = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);

  const text = 'body kinds: ünïcödé ✓\n';
  const bytes = Buffer.from(text, 'utf8');
  let folder: string;

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Uploads' });
    folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-upload-kinds-'));
    await writeFile(path.join(folder, 'body.txt'), bytes);
  });
  afterAll(async () => {
    await platform.close();
    await rm(folder, { recursive: true, force: true });
  });

  async function* generator(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(bytes.subarray(0, 5));
    yield new Uint8Array(bytes.subarray(5));
  }
  const kinds: Array<[string, () => UploadBody]> = [
    ['Buffer', () => Buffer.from(bytes)],
    ['Uint8Array', () => new Uint8Array(bytes)],
    ['string', () => text],
    ['{ path } file', () => ({ path: path.join(folder, 'body.txt') })],
    ['Readable', () => Readable.from([bytes.subarray(0, 3), bytes.subarray(3)])],
    ['async generator', () => generator()],
    ['Readable of strings', () => Readable.from([text.slice(0, 4), text.slice(4)])],
    [
      'web ReadableStream',
      () =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array(bytes));
            controller.close();
          },
        }),
    ],
  ];

  it.each(kinds)('stores a %s body and downloads the same bytes', async (kind, body) => {
    await trusted(async (ctx) => {
      const doc = await ctx.documents.upload({ filename: `kind-${kind}.bin`, body: body(), userId: uploader });
      expect(doc).toMatchObject({ userId: uploader, sizeBytes: bytes.length, md5: md5(bytes) });
      const { document, body: stream } = await ctx.documents.download(doc.id);
      expect(document).toEqual(doc);
      expect((await bytesOf(stream)).equals(bytes)).toBe(true);
    });
  });

  it('stores an empty body', async () => {
    await trusted(async (ctx) => {
      for (const [name, body] of [['empty-buffer', Buffer.alloc(0)], ['empty-string', ''], ['empty-stream', Readable.from([])]] as const) {
        const doc = await ctx.documents.upload({ filename: name, body, userId: uploader });
        expect(doc).toMatchObject({ sizeBytes: 0, md5: md5(Buffer.alloc(0)) });
        expect((await bytesOf((await ctx.documents.download(doc.id)).body)).length).toBe(0);
      }
    });
  });

  it('fills every Document field; the second upload of the same bytes is deduplicated onto the same file', async () => {
    await trusted(async (ctx) => {
      const content = Buffer.from(`dedup ${randomUUID()}`);
      const first = await ctx.documents.upload({ filename: 'report.PDF', body: content, userId: uploader });
      expect(first).toMatchObject({
        filename: 'report.PDF',
        userId: uploader,
        mimeType: 'application/pdf',
        sizeBytes: content.length,
        md5: md5(content),
        createdBy: uploader,
        deduplicated: false,
      });
      expect(first.createdAt).toBeInstanceOf(Date);
      expect(first.updatedAt).toBeInstanceOf(Date);
      const second = await ctx.documents.upload({ filename: 'copy', body: content, userId: uploader });
      expect(second).toMatchObject({ deduplicated: true, fileId: first.fileId, md5: first.md5, sizeBytes: content.length });
      expect(second.id).not.toBe(first.id);
      const files = await ctx.query('SELECT 1 FROM files WHERE md5_hash = $1', [md5(content)]);
      expect(files.rowCount).toBe(1);
      expect(await ctx.documents.get(second.id)).toEqual(second);
    });
  });

  it('takes a given mime type, guesses one from the extension, else defaults to octet-stream', async () => {
    await trusted(async (ctx) => {
      const given = await ctx.documents.upload({ filename: 'notes', body: 'a', mimeType: 'Text/Plain; charset=utf-8', userId: uploader });
      expect(given.mimeType).toBe('text/plain; charset=utf-8');
      const guessed = await ctx.documents.upload({ filename: 'picture.png', body: 'b', userId: uploader });
      expect(guessed.mimeType).toBe('image/png');
      const unknown = await ctx.documents.upload({ filename: 'blob.unknownext', body: 'c', userId: uploader });
      expect(unknown.mimeType).toBe('application/octet-stream');
    });
  });

  it("takes the uploader from the scope's user when the call names none; neither is VALIDATION", async () => {
    const user = await createTestUser(platform, 'Up', 'Loader');
    await platform.memberships.add(tenant.id, user.id, 'user');
    const doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'mine.txt', body: 'mine' }), {
      userId: user.id,
    });
    expect(doc).toMatchObject({ userId: user.id, createdBy: user.id, mimeType: 'text/plain' });
    await trusted(async (ctx) => {
      await expect(ctx.documents.upload({ filename: 'nobody.txt', body: 'x' })).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(ctx.documents.upload({ filename: 'bad.txt', body: 'x', userId: 'not-a-uuid' })).rejects.toMatchObject({
        code: 'VALIDATION',
      });
      const rows = await ctx.query("SELECT 1 FROM documents WHERE filename IN ('nobody.txt', 'bad.txt')");
      expect(rows.rowCount).toBe(0);
    });
  });

  it('gives a presigned URL that global fetch downloads, with the filename as the attachment name', async () => {
    await trusted(async (ctx) => {
      const content = Buffer.from(`presigned ${randomUUID()} ✓`);
      const doc = await ctx.documents.upload({ filename: 'résumé.txt', body: content, userId: uploader });
      const url = await ctx.documents.url(doc.id, { expiresIn: 60 });
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
      expect(res.headers.get('content-disposition')).toContain("filename*=UTF-8''r%C3%A9sum%C3%A9.txt");
      await expect(ctx.documents.url(doc.id, { expiresIn: 0 })).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(ctx.documents.url(randomUUID())).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  it('is NOT_FOUND for an unknown or malformed id', async () => {
    await trusted(async (ctx) => {
      for (const id of [randomUUID(), 'nope']) {
        await expect(ctx.documents.get(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(ctx.documents.download(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      }
    });
  });
});
