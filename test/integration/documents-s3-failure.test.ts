import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { freePort, LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';
import { useTestPlatform } from '../support/env.js';

const MIB = 1024 * 1024;
const BUCKET = 'documents-outage';

/** An s3rver of this file's own, which a test can stop in the middle of a transfer. */
async function privateS3(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-doc-outage-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS });
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } finally {
    client.destroy();
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    stop: () =>
      (stopped ??= (async () => {
        const closing = server.close().catch(() => {});
        // close() only stops accepting: the transfers in flight are cut too.
        (server as unknown as { httpServer: Server }).httpServer.closeAllConnections();
        await closing;
        await rm(directory, { recursive: true, force: true });
      })()),
  };
}

describe('documents: the object store failing', () => {
  const env = useTestPlatform();
  const platforms: Platform[] = [];
  const stops: Array<() => Promise<void>> = [];
  let tenant: Tenant;

  function platformOn(endpoint: string): Platform {
    const p = env.platform({
      s3: { bucket: BUCKET, endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS, prefix: env.prefix },
    });
    platforms.push(p);
    return p;
  }

  async function noRows(platform: Platform): Promise<void> {
    const { rows } = await platform.withTenant(tenant, (ctx) =>
      ctx.query<{ n: string }>('SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM files) AS n'),
    );
    expect(Number(rows[0]!.n)).toBe(0);
  }

  beforeAll(async () => {
    const setup = env.platform();
    await setup.init();
    tenant = await setup.tenants.create({ name: 'Outage' });
  });
  afterAll(async () => {
    await Promise.allSettled(platforms.map((p) => p.close()));
    for (const stop of stops) await stop();
  });

  it('fails an upload with STORAGE when S3 stops in the middle of it, and records nothing', async () => {
    const s3 = await privateS3();
    stops.push(s3.stop);
    const platform = platformOn(s3.endpoint);
    let produced = 0;
    async function* slowBody(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) {
        // Once the first 8 MiB part is on its way, the server goes away.
        if (i === 12) await s3.stop();
        produced++;
        yield randomBytes(MIB);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await expect(
      platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'cut.bin', body: slowBody(), userId: randomUUID() })),
    ).rejects.toMatchObject({ code: 'STORAGE' });
    expect(produced).toBeLessThan(64);
    await noRows(platform);
  });

  it('fails an upload with STORAGE when nothing listens at the endpoint, and records nothing', async () => {
    const platform = platformOn(`http://127.0.0.1:${await freePort()}`);
    for (const body of [Buffer.from('small'), randomBytes(9 * MIB)]) {
      await expect(
        platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'nowhere.bin', body, userId: randomUUID() })),
      ).rejects.toMatchObject({ code: 'STORAGE' });
    }
    await noRows(platform);
  });
});
