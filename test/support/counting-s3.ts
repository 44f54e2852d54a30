import type { S3Client } from '@aws-sdk/client-s3';
import { testS3Client } from './env.js';

/** The commands that store bytes in S3. */
export const S3_WRITE_COMMANDS: ReadonlySet<string> = new Set([
  'PutObjectCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
  'CompleteMultipartUploadCommand',
]);

/** What a {@link countingS3Client} saw. */
export interface S3Traffic {
  /** Every command sent, by name (`PutObjectCommand`, …), in order. */
  commands: string[];
  /** The body bytes of the commands that store bytes (PutObject, UploadPart). */
  bytesWritten: number;
}

/**
 * A {@link testS3Client} (pass it as `s3.client`) that records every command it sends and the body bytes
 * of those that store bytes: what the library sent to S3, counted at the S3 client. Destroy it after use.
 */
export function countingS3Client(): { client: S3Client; traffic: S3Traffic; writesSince(mark: number): string[] } {
  const client = testS3Client();
  const traffic: S3Traffic = { commands: [], bytesWritten: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '';
      traffic.commands.push(name);
      if (S3_WRITE_COMMANDS.has(name)) {
        const body = (args.input as { Body?: unknown }).Body;
        if (body instanceof Uint8Array) traffic.bytesWritten += body.byteLength;
        else if (typeof body === 'string') traffic.bytesWritten += Buffer.byteLength(body);
      }
      return next(args);
    },
    { step: 'initialize', name: 'tenantdbTestCountCommands' },
  );
  return {
    client,
    traffic,
    writesSince: (mark) => traffic.commands.slice(mark).filter((c) => S3_WRITE_COMMANDS.has(c)),
  };
}
