/** What the S3 store reads off an AWS SDK error (or anything thrown). */

/** The error's `name` (the S3 error code for a service error, e.g. `NoSuchKey`), else `'Error'`. @internal */
export function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : 'Error';
}

/** The HTTP status of the response the error came with, if any. @internal */
export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}
