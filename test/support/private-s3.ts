import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';

/** An s3rver of a test's own (credentials `LOCAL_S3_CREDENTIALS`), which the test can stop mid-transfer. */
export interface PrivateS3 {
  endpoint: string;
  /** The server's folder (s3rver keeps each bucket, and its unfinished multipart uploads, under it). */
  directory: string;
  /** Stops the server and cuts the transfers in flight; idempotent. */
  stop(): Promise<void>;
  /** Starts it again after {@link PrivateS3.stop}, on the same port and folder: what was stored is still there. */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. */
  dispose(): Promise<void>;
}

/** Starts an s3rver on a free port, in a fresh temp folder, with `bucket` created. */
export async function startPrivateS3(bucket: string): Promise<PrivateS3> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-private-s3-'));
  let server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: LOCAL_S3_CREDENTIALS });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      const closing = server.close().catch(() => {});
      // close() only stops accepting: the transfers in flight must be cut too.
      (server as unknown as { httpServer: Server }).httpServer.closeAllConnections();
      await closing;
    })());
  return {
    endpoint,
    directory,
    stop,
    async restart() {
      await stop();
      server = new S3rver({ address: '127.0.0.1', port, silent: true, directory });
      await server.run();
      stopped = undefined;
    },
    async dispose() {
      await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
