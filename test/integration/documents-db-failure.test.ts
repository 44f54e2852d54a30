import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant, TenantContext } from '../../src/index.js';
import { listKeys, serverUrl, useTestPlatform, useTestS3Client } from '../support/env.js';
import { bytesOf } from '../support/streams.js';

/**
 * A TCP proxy in front of the test PostgreSQL server. Once armed, it forwards the next `COMMIT` but cuts
 * the connection instead of passing on the reply: the transaction is committed, and the client cannot know.
 */
async function commitReplyDroppingProxy(): Promise<{ url: string; arm(): void; close(): Promise<void> }> {
  const target = new URL(serverUrl());
  const commit = Buffer.from('COMMIT\0');
  let armed = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let dropReply = false;
    client.on('data', (data) => {
      if (armed && data.includes(commit)) {
        armed = false;
        dropReply = true;
      }
      upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!dropReply) return void client.write(data);
      client.destroy();
      upstream.destroy();
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(serverUrl());
  url.port = String((server.address() as net.AddressInfo).port);
  url.pathname = '';
  return {
    url: url.toString().replace(/\/$/, ''),
    arm: () => void (armed = true),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('documents: the database failing after the bytes are stored', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const bucket = inject('s3Bucket');
  let platform: Platform;
  let tenant: Tenant;
  const user = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);
  const filesPrefix = (t: Tenant): string => `${env.prefix}tenants/${t.id}/files/`;

  const keysUnder = (prefix: string): Promise<string[]> => listKeys(s3, bucket, prefix);

  /** Every file row's object exists, and every object has a file row. */
  async function rowsMatchObjects(ctx: TenantContext, t: Tenant): Promise<void> {
    const { rows } = await ctx.query<{ s3_path: string }>('SELECT s3_path FROM files ORDER BY s3_path');
    expect(await keysUnder(filesPrefix(t))).toEqual(rows.map((r) => r.s3_path).sort());
  }

  beforeAll(async () => {
    platform = await env.initPlatform();
    tenant = await platform.tenants.create({ name: 'Db failure' });
  });
  afterAll(() => platform.close());

  it('surfaces a failing document insert, records nothing and deletes the fresh object', async () => {
    await trusted(async (ctx) => {
      await ctx.query("ALTER TABLE documents ADD CONSTRAINT test_reject CHECK (filename NOT LIKE 'reject%')");
      try {
        let error: unknown;
        await ctx.documents.upload({ filename: 'reject-new.txt', body: `new ${randomUUID()}`, userId: user }).catch((err: unknown) => {
          error = err;
        });
        expect(error).toMatchObject({ code: 'DATABASE', cause: { code: '23514' } });
        expect((await ctx.query('SELECT 1 FROM documents UNION ALL SELECT 1 FROM files')).rowCount).toBe(0);
        expect(await keysUnder(filesPrefix(tenant))).toEqual([]);

        // The same on the dedup path: the existing file and its object stay, the fresh copy goes.
        const content = `kept ${randomUUID()}`;
        const kept = await ctx.documents.upload({ filename: 'kept.txt', body: content, userId: user });
        await expect(ctx.documents.upload({ filename: 'reject-dup.txt', body: content, userId: user })).rejects.toMatchObject({
          code: 'DATABASE',
          cause: { code: '23514' },
        });
        const docs = await ctx.query<{ id: string }>('SELECT id FROM documents');
        expect(docs.rows).toEqual([{ id: kept.id }]);
        await rowsMatchObjects(ctx, tenant);
        await ctx.documents.delete(kept.id);
      } finally {
        await ctx.query('ALTER TABLE documents DROP CONSTRAINT test_reject');
      }
    });
  });

  it('surfaces a failing COMMIT, records nothing and deletes the fresh object', async () => {
    await trusted(async (ctx) => {
      await ctx.query(`
        CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$`);
      await ctx.query(`
        CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON documents DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW WHEN (NEW.filename LIKE 'fail-at-commit%') EXECUTE FUNCTION test_fail_at_commit()`);
      try {
        await expect(
          ctx.documents.upload({ filename: 'fail-at-commit.txt', body: `commit ${randomUUID()}`, userId: user }),
        ).rejects.toMatchObject({ code: 'DATABASE', cause: { code: 'P0001' } });
        expect((await ctx.query('SELECT 1 FROM documents UNION ALL SELECT 1 FROM files')).rowCount).toBe(0);
        expect(await keysUnder(filesPrefix(tenant))).toEqual([]);
        // The connection is usable afterwards: the next upload goes through.
        const ok = await ctx.documents.upload({ filename: 'after.txt', body: 'after', userId: user });
        await rowsMatchObjects(ctx, tenant);
        await ctx.documents.delete(ok.id);
      } finally {
        await ctx.query('DROP TRIGGER test_fail_at_commit ON documents');
        await ctx.query('DROP FUNCTION test_fail_at_commit()');
      }
    });
  });

  it('keeps the object when the connection is lost after a COMMIT that did commit: never a row whose object is missing', async () => {
    const proxy = await commitReplyDroppingProxy();
    const proxied = env.platform({ tenantServers: { default: proxy.url } });
    try {
      await proxied.init();
      const t = await proxied.tenants.create({ name: 'Lost commit reply' });
      const content = `lost reply ${randomUUID()}`;
      proxy.arm();
      await expect(
        proxied.withTenant(t, (ctx) => ctx.documents.upload({ filename: 'lost.txt', body: content, userId: user })),
      ).rejects.toBeInstanceOf(Error);
      await proxied.withTenant(t, async (ctx) => {
        const { rows } = await ctx.query<{ id: string; s3_path: string }>(
          'SELECT d.id, f.s3_path FROM documents d JOIN files f ON f.id = d.file_id',
        );
        // The commit went through: the document exists, so its object must too.
        expect(rows).toHaveLength(1);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: rows[0]!.s3_path }));
        expect(head.ContentLength).toBe(Buffer.byteLength(content));
        await rowsMatchObjects(ctx, t);
        const { body } = await ctx.documents.download(rows[0]!.id);
        expect((await bytesOf(body)).toString()).toBe(content);
      });
    } finally {
      await proxied.close();
      await proxy.close();
    }
  });
});
