// Where the examples get their platform: the servers named by the environment, or, with nothing
// configured, an embedded PostgreSQL and a local S3 server (s3rver) with their data under .tenantdb/.
import path from 'node:path';
import { createPlatform, type Platform, type PlatformOptions } from '@org/tenantdb';
import { ensureBucket, LOCAL_S3_CREDENTIALS, startPostgres, startS3, type RunningServer } from '../../scripts/dev-servers.js';

export interface ExamplePlatform {
  platform: Platform;
  /** Closes the platform and stops any server started for it. */
  stop(): Promise<void>;
}

export async function startExamplePlatform(): Promise<ExamplePlatform> {
  const servers: RunningServer[] = [];
  let options: PlatformOptions;
  const env = process.env;
  if (env.TENANTDB_MAIN_URL) {
    options = {
      mainUrl: env.TENANTDB_MAIN_URL,
      s3: {
        bucket: env.TENANTDB_S3_BUCKET ?? 'tenantdb',
        ...(env.TENANTDB_S3_ENDPOINT && { endpoint: env.TENANTDB_S3_ENDPOINT }),
        ...(env.TENANTDB_S3_REGION && { region: env.TENANTDB_S3_REGION }),
        ...(env.TENANTDB_S3_PREFIX && { prefix: env.TENANTDB_S3_PREFIX }),
      },
    };
  } else {
    const dataDir = path.resolve(import.meta.dirname, '../../.tenantdb');
    const pg = await startPostgres({ dataDir });
    servers.push(pg);
    const s3 = await startS3({ dataDir }).catch(async (err: unknown) => {
      await pg.stop();
      throw err;
    });
    servers.push(s3);
    const mainUrl = new URL(pg.url);
    mainUrl.pathname = '/saas_platform';
    options = {
      mainUrl: mainUrl.toString(),
      s3: { bucket: 'tenantdb', endpoint: s3.url, region: 'us-east-1', credentials: LOCAL_S3_CREDENTIALS },
    };
  }
  const stopServers = async (): Promise<void> => {
    for (const s of servers.reverse()) await s.stop().catch(() => {});
  };
  try {
    if (options.s3.endpoint) await ensureBucket(options.s3.bucket, options.s3.endpoint, options.s3.credentials);
    const platform = createPlatform(options);
    await platform.init();
    return {
      platform,
      async stop() {
        await platform.close();
        await stopServers();
      },
    };
  } catch (err) {
    await stopServers();
    throw err;
  }
}
