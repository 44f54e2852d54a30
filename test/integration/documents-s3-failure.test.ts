import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { freePort, LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';
import { useTestPlatform } from '../support/env.js';
import { startPrivateS3 } from '../support/private-s3.js';

const MIB = 1024 * 1024;
const BUCKET = 'documents-outage';

describe('documents: the object store failing', () => {
  const env = useTestPlatform();
  const platforms: Platform[] = [];
  const disposals: Array<() => Promise<void>> = [];
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
    const setup = await env.initPlatform();
    tenant = await setup.tenants.create({ name: 'Outage' });
  });
  afterAll(async () => {
    await Promise.allSettled(platforms.map((p) => p.close()));
    for (const dispose of disposals) await dispose();
  });

  it('fails an upload with STORAGE when S3 stops in the middle of it, and records nothing', async () => {
    const s3 = await startPrivateS3(BUCKET);
    disposals.push(s3.dispose);
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
