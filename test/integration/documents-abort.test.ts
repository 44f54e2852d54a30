import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant, TenantContext, UploadBody } from '../../src/index.js';
import { countingS3Client } from '../support/counting-s3.js';
import { rejectionOf } from '../support/errors.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';

const MIB = 1024 * 1024;

/** A Readable of `mib` MiB of random bytes, 256 KiB every 5 ms (about 50 MiB/s); counts what it produced and whether it was destroyed. */
function slowReadable(mib: number): { stream: Readable; produced: () => number; destroyed: () => boolean } {
  let produced = 0;
  const chunk = randomBytes(256 * 1024);
  const stream = new Readable({
    read() {
      if (produced >= mib * MIB) {
        this.push(null);
        return;
      }
      setTimeout(() => {
        if (stream.destroyed) return;
        produced += chunk.length;
        this.push(Buffer.from(chunk));
      }, 5);
    },
  });
  return { stream, produced: () => produced, destroyed: () => stream.destroyed };
}

describe('documents: cancelling an upload with an AbortSignal', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const counting = countingS3Client();
  let platform: Platform;
  let tenant: Tenant;
  let folder: string;
  const user = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);

  /** Nothing under the tenant's prefix, no documents or files rows. */
  async function storedNothing(): Promise<void> {
    expect(await listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${tenant.id}/`)).toEqual([]);
    const { rows } = await trusted((ctx) =>
      ctx.query<{ n: string }>('SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM files) AS n'),
    );
    expect(Number(rows[0]!.n)).toBe(0);
  }

  beforeAll(async () => {
    platform = await env.initPlatform({ s3: { ...env.options().s3, client: counting.client } });
    tenant = await platform.tenants.create({ name: 'Abort' });
    folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-abort-'));
    await writeFile(path.join(folder, 'small.txt'), 'a small file');
    await writeFile(path.join(folder, 'large.bin'), randomBytes(24 * MIB));
  });
  afterAll(async () => {
    await platform.close();
    counting.client.destroy();
    await rm(folder, { recursive: true, force: true });
  });

  it('rejects at once when aborted before the call, whatever the body: STORAGE, not retryable, the reason as cause; nothing sent or stored', async () => {
    async function* generator(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('never sent');
    }
    const bodies: UploadBody[] = [
      Buffer.from('bytes'),
      'text',
      { path: path.join(folder, 'small.txt') },
      Readable.from([Buffer.from('never sent')]),
      generator(),
    ];
    const mark = counting.traffic.commands.length;
    for (const body of bodies) {
      const controller = new AbortController();
      const reason = new Error('the user cancelled');
      controller.abort(reason);
      const err = await rejectionOf(trusted((ctx) => ctx.documents.upload({ filename: 'early.bin', body, userId: user, signal: controller.signal })));
      expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
      expect(err.cause).toBe(reason);
    }
    expect(counting.traffic.commands.slice(mark)).toEqual([]);
    await storedNothing();
  });

  it.each([
    ['3 MiB, before the first part is sent', 3],
    ['10 MiB, the multipart upload under way', 10],
  ])('aborted after %s of a slow 20 MiB Readable: rejects, stops reading, leaves no object and no rows', async (_when, afterMib) => {
    const body = slowReadable(20);
    const controller = new AbortController();
    const mark = counting.traffic.commands.length;
    let sentAtAbort = 0;
    const started = Date.now();
    const err = await rejectionOf(
      trusted((ctx) =>
        ctx.documents.upload({
          filename: `cancelled-${afterMib}.bin`,
          body: body.stream,
          userId: user,
          signal: controller.signal,
          onProgress: (p) => {
            if (!controller.signal.aborted && p.bytesSent >= afterMib * MIB) {
              sentAtAbort = p.bytesSent;
              controller.abort(new Error('cancelled half way'));
            }
          },
        }),
      ),
    );
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false, cause: { message: 'cancelled half way' } });
    expect(sentAtAbort).toBeGreaterThanOrEqual(afterMib * MIB);
    // Stopped well before the end of the body, and the body was destroyed.
    expect(body.produced()).toBeLessThan(20 * MIB);
    expect(body.destroyed()).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    const commands = counting.traffic.commands.slice(mark);
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    // Past the first 8 MiB part, the multipart upload was started: it is aborted, its parts dropped.
    if (afterMib > 8) expect(commands).toEqual(expect.arrayContaining(['CreateMultipartUploadCommand', 'AbortMultipartUploadCommand']));
    await storedNothing();
  });

  it('aborted while a large { path } file is being hashed: rejects before any byte is sent', async () => {
    const controller = new AbortController();
    const mark = counting.traffic.commands.length;
    let hashedAtAbort = 0;
    const err = await rejectionOf(
      trusted((ctx) =>
        ctx.documents.upload({
          filename: 'hashing.bin',
          body: { path: path.join(folder, 'large.bin') },
          userId: user,
          signal: controller.signal,
          onProgress: (p) => {
            if (!controller.signal.aborted && p.bytesHashed >= 2 * MIB) {
              hashedAtAbort = p.bytesHashed;
              controller.abort();
            }
          },
        }),
      ),
    );
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
    expect(hashedAtAbort).toBeLessThan(24 * MIB);
    expect(counting.traffic.commands.slice(mark)).toEqual([]);
    await storedNothing();
  });

  it('aborted while a { path } file is being sent (after hashing): rejects and leaves no object', async () => {
    const controller = new AbortController();
    const err = await rejectionOf(
      trusted((ctx) =>
        ctx.documents.upload({
          filename: 'sending.bin',
          body: { path: path.join(folder, 'large.bin') },
          userId: user,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.bytesSent >= 9 * MIB) controller.abort();
          },
        }),
      ),
    );
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false });
    await storedNothing();
  });

  it("uses the scope's signal (withTenant's option) when the upload names none; the upload's own wins", async () => {
    const scope = new AbortController();
    scope.abort(new Error('the request went away'));
    await platform.withTenant(
      tenant,
      async (ctx) => {
        expect(ctx.signal).toBe(scope.signal);
        const err = await rejectionOf(ctx.documents.upload({ filename: 'scoped.txt', body: 'scoped', userId: user }));
        expect(err).toMatchObject({ code: 'STORAGE', retryable: false, cause: { message: 'the request went away' } });
        await storedNothing();
        // A signal of the upload's own replaces the scope's.
        const own = await ctx.documents.upload({ filename: 'own.txt', body: 'own', userId: user, signal: new AbortController().signal });
        await ctx.documents.delete(own.id);
        // Not passed on to a scope opened inside this one.
        await platform.withTenant(tenant, (inner) => expect(inner.signal).toBeUndefined());
      },
      { signal: scope.signal },
    );
    await storedNothing();
  });

  it('is never retryable, also when the reason is a timeout', async () => {
    const err = await rejectionOf(
      trusted((ctx) => ctx.documents.upload({ filename: 'timeout.bin', body: slowReadable(20).stream, userId: user, signal: AbortSignal.timeout(100) })),
    );
    expect(err).toMatchObject({ code: 'STORAGE', retryable: false, cause: { name: 'TimeoutError' } });
    await storedNothing();
  });

  it('has no effect once the upload succeeded, and refuses a signal that is not one with VALIDATION', async () => {
    const controller = new AbortController();
    const doc = await trusted((ctx) => ctx.documents.upload({ filename: 'done.txt', body: 'done', userId: user, signal: controller.signal }));
    controller.abort();
    await trusted(async (ctx) => {
      expect((await ctx.documents.get(doc.id)).id).toBe(doc.id);
      await ctx.documents.delete(doc.id);
    });
    await expect(
      trusted((ctx) => ctx.documents.upload({ filename: 'bad.txt', body: 'x', userId: user, signal: {} as AbortSignal })),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.withTenant(tenant, () => 1, { signal: 'soon' as unknown as AbortSignal })).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    await storedNothing();
  });
});
