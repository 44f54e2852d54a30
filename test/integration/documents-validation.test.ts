import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant, TenantContext } from '../../src/index.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';

const MAX_BYTES = 1000;

describe('documents: rejected uploads leave nothing behind', () => {
  const env = useTestPlatform({ documents: { maxBytes: MAX_BYTES } });
  const s3 = useTestS3Client();
  let platform: Platform;
  let tenant: Tenant;
  const user = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);

  async function storedNothing(ctx: TenantContext): Promise<void> {
    expect(await listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${tenant.id}/`)).toEqual([]);
    const rows = await ctx.query('SELECT 1 FROM documents UNION ALL SELECT 1 FROM files');
    expect(rows.rowCount).toBe(0);
  }

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Validation' });
  });
  afterAll(() => platform.close());

  const badNames: Array<[string, unknown]> = [
    ['empty', ''],
    ['dot', '.'],
    ['dot dot', '..'],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['NUL', 'a\u0000b'],
    ['control character', 'a\u0007b'],
    ['newline', 'a\nb'],
    ['DEL', 'a\u007fb'],
    ['C1 control', 'a\u0085b'],
    ['lone surrogate', 'a\ud800b'],
    ['256 bytes', 'x'.repeat(256)],
    ['128 two-byte characters (256 bytes)', 'é'.repeat(128)],
    ['not a string', 42],
  ];

  it.each(badNames)('refuses a filename that is %s with VALIDATION', async (_what, filename) => {
    await trusted(async (ctx) => {
      await expect(ctx.documents.upload({ filename: filename as string, body: 'x', userId: user })).rejects.toMatchObject({
        code: 'VALIDATION',
      });
      await storedNothing(ctx);
    });
  });

  it('accepts a name of exactly 255 bytes of UTF-8 (also when NFD spelled it longer) and renames to none of the bad ones', async () => {
    await trusted(async (ctx) => {
      const longest = await ctx.documents.upload({ filename: `${'é'.repeat(127)}x`, body: 'x', userId: user });
      // 'e' + U+0301 is 3 bytes; the NFC form is 2: the limit applies to the normalised name.
      const nfd = await ctx.documents.upload({ filename: `${'e\u0301'.repeat(127)}y`, body: 'y', userId: user });
      expect(Buffer.byteLength(nfd.filename)).toBe(255);
      for (const [, bad] of badNames) {
        await expect(ctx.documents.rename(longest.id, bad as string)).rejects.toMatchObject({ code: 'VALIDATION' });
      }
      await ctx.documents.delete(longest.id);
      await ctx.documents.delete(nfd.id);
      await storedNothing(ctx);
    });
  });

  it('refuses a body over documents.maxBytes with VALIDATION, counting the bytes streamed', async () => {
    await trusted(async (ctx) => {
      async function* overLimit(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 11; i++) yield Buffer.alloc(100, i);
      }
      const bodies = [Buffer.alloc(MAX_BYTES + 1), 'x'.repeat(MAX_BYTES + 1), Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), overLimit()];
      for (const body of bodies) {
        await expect(ctx.documents.upload({ filename: 'too-big.bin', body, userId: user })).rejects.toMatchObject({ code: 'VALIDATION' });
      }
      await storedNothing(ctx);
      const exact = await ctx.documents.upload({ filename: 'exact.bin', body: Buffer.alloc(MAX_BYTES, 1), userId: user });
      expect(exact.sizeBytes).toBe(MAX_BYTES);
      await ctx.documents.delete(exact.id);
    });
  });

  it('refuses a malformed mime type, or a body of the wrong kind, with VALIDATION', async () => {
    await trusted(async (ctx) => {
      for (const mimeType of ['text', 'text/', '/plain', 'text/plain/x', 'text/pl ain', 'tëxt/plain', `text/${'x'.repeat(300)}`, 'text/plain\r\nX-Evil: 1']) {
        await expect(ctx.documents.upload({ filename: 'a.txt', body: 'x', mimeType, userId: user })).rejects.toMatchObject({
          code: 'VALIDATION',
        });
      }
      for (const body of [42, null, { not: 'bytes' }, Readable.from([{ an: 'object' }])]) {
        await expect(ctx.documents.upload({ filename: 'a.txt', body: body as never, userId: user })).rejects.toMatchObject({
          code: 'VALIDATION',
        });
      }
      await expect(ctx.documents.upload(null as never)).rejects.toMatchObject({ code: 'VALIDATION' });
      await storedNothing(ctx);
    });
  });
});
