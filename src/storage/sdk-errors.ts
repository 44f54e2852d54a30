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

/**
 * The error with the HTTP exchange the SDK hides on it (`$response`, non-enumerable and not deletable) cut
 * short: its body's `req` holds the request's headers, a session token among them. Name, message and
 * `$metadata` stay. @internal
 */
export function withoutExchange<E>(err: E): E {
  const response = (err as { $response?: unknown } | null)?.$response;
  if (response !== null && typeof response === 'object' && 'body' in response) {
    try {
      (response as { body: unknown }).body = undefined;
    } catch {
      // A frozen response: left as it is.
    }
  }
  return err;
}
