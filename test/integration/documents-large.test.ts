import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';

const MIB = 1024 * 1024;

describe('documents: a 40 MB body of unknown length', () => {
  const env = useTestPlatform();
  let platform: Platform;
  let tenant: Tenant;

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Large' });
  });
  afterAll(() => platform.close());

  it('streams an async generator to S3 (multipart) and downloads it byte-identical', async () => {
    const sent = { md5: createHash('md5'), sha256: createHash('sha256'), size: 0 };
    // Odd-sized chunks, so that part boundaries never line up with chunk boundaries.
    async function* body(): AsyncGenerator<Uint8Array> {
      const total = 40 * MIB;
      while (sent.size < total) {
        const chunk = randomBytes(Math.min(MIB - 7, total - sent.size));
        sent.md5.update(chunk);
        sent.sha256.update(chunk);
        sent.size += chunk.length;
        yield chunk;
      }
    }
    await platform.withTenant(tenant, async (ctx) => {
      const doc = await ctx.documents.upload({ filename: 'big.bin', body: body(), userId: randomUUID() });
      const md5 = sent.md5.digest('hex');
      const sha256 = sent.sha256.digest('hex');
      expect(doc).toMatchObject({ sizeBytes: 40 * MIB, md5, deduplicated: false, mimeType: 'application/octet-stream' });
      const file = await ctx.query<{ sha256: string; size_bytes: string }>('SELECT sha256, size_bytes FROM files WHERE id = $1', [
        doc.fileId,
      ]);
      expect(file.rows[0]).toEqual({ sha256, size_bytes: String(40 * MIB) });

      const { body: download } = await ctx.documents.download(doc.id);
      const got = { md5: createHash('md5'), sha256: createHash('sha256'), size: 0 };
      for await (const chunk of download) {
        got.md5.update(chunk as Buffer);
        got.sha256.update(chunk as Buffer);
        got.size += (chunk as Buffer).length;
      }
      expect({ size: got.size, md5: got.md5.digest('hex'), sha256: got.sha256.digest('hex') }).toEqual({ size: 40 * MIB, md5, sha256 });
    });
  });
});
