import { randomBytes, randomUUID } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant, TenantContext } from '../../src/index.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { bytesOf } from '../support/streams.js';

describe('documents: deduplication under concurrency', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const bucket = inject('s3Bucket');
  let platform: Platform;
  let tenant: Tenant;
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);

  const keysUnder = (prefix: string): Promise<string[]> => listKeys(s3, bucket, prefix);

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Dedup' });
  });
  afterAll(() => platform.close());

  it('twenty concurrent uploads of the same bytes leave one file row, one object and twenty documents', async () => {
    const content = randomBytes(64 * 1024);
    const user = randomUUID();
    const docs = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        trusted((ctx) => ctx.documents.upload({ filename: `same-${i}.bin`, body: content, userId: user })),
      ),
    );
    expect(new Set(docs.map((d) => d.fileId)).size).toBe(1);
    expect(docs.filter((d) => d.deduplicated)).toHaveLength(19);
    await trusted(async (ctx) => {
      const files = await ctx.query<{ id: string; s3_path: string }>('SELECT id, s3_path FROM files');
      expect(files.rows).toHaveLength(1);
      expect(files.rows[0]!.id).toBe(docs[0]!.fileId);
      const count = await ctx.query<{ n: string }>('SELECT count(*) AS n FROM documents WHERE file_id = $1', [docs[0]!.fileId]);
      expect(Number(count.rows[0]!.n)).toBe(20);
      // Every fresh copy of a deduplicated upload is gone: only the file's own object is left.
      expect(await keysUnder(`${env.prefix}tenants/${tenant.id}/files/`)).toEqual([files.rows[0]!.s3_path]);
    });
  });

  it('never merges two contents with the same MD5: the second is refused with CONFLICT and leaves nothing', async () => {
    // A published MD5 collision (Wang & Yu, 2004): two 128-byte blocks, one MD5, different SHA-256.
    const a = Buffer.from(
      'd131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f8955ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5bd8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70',
      'hex',
    );
    const b = Buffer.from(
      'd131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f8955ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5bd8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70',
      'hex',
    );
    const user = randomUUID();
    await trusted(async (ctx) => {
      const before = await keysUnder(`${env.prefix}tenants/${tenant.id}/files/`);
      const docA = await ctx.documents.upload({ filename: 'collision-a.bin', body: a, userId: user });
      await expect(ctx.documents.upload({ filename: 'collision-b.bin', body: b, userId: user })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await ctx.query("SELECT 1 FROM documents WHERE filename = 'collision-b.bin'")).rowCount).toBe(0);
      expect(await keysUnder(`${env.prefix}tenants/${tenant.id}/files/`)).toEqual([...before, `${env.prefix}tenants/${tenant.id}/files/${docA.fileId}`].sort());
      const { body } = await ctx.documents.download(docA.id);
      expect((await bytesOf(body)).equals(a)).toBe(true);
      await ctx.documents.delete(docA.id);
    });
  });

  it('lets one of several concurrent uploads of one user and one filename win; the others are CONFLICT and leave no object', async () => {
    const user = randomUUID();
    const prefix = `${env.prefix}tenants/${tenant.id}/files/`;
    const before = await keysUnder(prefix);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        trusted((ctx) => ctx.documents.upload({ filename: 'contested.txt', body: `contender ${i} ${randomUUID()}`, userId: user })),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CONFLICT' });
    const winner = (won[0] as PromiseFulfilledResult<{ fileId: string; id: string }>).value;
    expect(await keysUnder(prefix)).toEqual([...before, `${prefix}${winner.fileId}`].sort());
    await trusted((ctx) => ctx.documents.delete(winner.id));
  });

  it('a delete racing a dedup upload of the same bytes never leaves a document whose object is missing', async () => {
    const user = randomUUID();
    const iterations = 48;
    for (let i = 0; i < iterations; i++) {
      const content = `race ${i} ${randomUUID()}`;
      const doc1 = await trusted((ctx) => ctx.documents.upload({ filename: `race-${i}-a.txt`, body: content, userId: user }));
      // The delete starts when the second upload's body has been read, after a delay that varies from 0 to
      // 15 ms between iterations: the object upload and the transaction of the upload land before, during
      // and after the delete's statements.
      let deleting: Promise<void> | undefined;
      async function* body(): AsyncGenerator<Uint8Array> {
        yield Buffer.from(content);
        const delay = i % 16;
        deleting = new Promise((resolve) => setTimeout(resolve, delay)).then(() =>
          trusted((ctx) => ctx.documents.delete(doc1.id)),
        );
      }
      const doc2 = await trusted((ctx) => ctx.documents.upload({ filename: `race-${i}-b.txt`, body: body(), userId: user }));
      await deleting;
      await trusted(async (ctx) => {
        await expect(ctx.documents.get(doc1.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const { rows } = await ctx.query<{ s3_path: string }>('SELECT s3_path FROM files WHERE id = $1', [doc2.fileId]);
        expect(rows).toHaveLength(1);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: rows[0]!.s3_path }));
        expect(head.ContentLength).toBe(Buffer.byteLength(content));
        const { body } = await ctx.documents.download(doc2.id);
        expect((await bytesOf(body)).toString()).toBe(content);
      });
    }
    // Every document left has its object, and nothing else is stored.
    await trusted(async (ctx) => {
      const { rows } = await ctx.query<{ s3_path: string }>(
        "SELECT DISTINCT f.s3_path FROM documents d JOIN files f ON f.id = d.file_id WHERE d.filename LIKE 'race-%'",
      );
      expect(rows).toHaveLength(iterations);
      const orphanFiles = await ctx.query('SELECT 1 FROM files f WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.file_id = f.id)');
      expect(orphanFiles.rowCount).toBe(0);
    });
  });
});
