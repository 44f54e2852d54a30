import type { S3Client } from '@aws-sdk/client-s3';

/** Static AWS credentials for the object store. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where documents' bytes go. */
export interface S3Options {
  /** The bucket every object goes into. Required. */
  bucket: string;
  /** An S3-compatible endpoint (MinIO, s3rver, …). Default: AWS S3 for `region`. */
  endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Path-style addressing (needed by most S3-compatible servers). Default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Default: the AWS SDK's default credential chain. */
  credentials?: S3Credentials;
  /** Prepended to every key, e.g. `'app1/'`. Default: `''`. */
  prefix?: string;
  /** An S3Client to use instead of building one from the options above. */
  client?: S3Client;
  /** Bytes per multipart part of an upload; at least 5 MiB. Default: 8 MiB. */
  partSize?: number;
  /**
   * Parts of one upload in flight at once. An upload holds at most `queueSize + 1` part buffers of
   * `partSize` bytes (one being filled), which the store reuses from one upload to the next; more parts
   * in flight help against a distant store. Default: 2.
   */
  queueSize?: number;
}
