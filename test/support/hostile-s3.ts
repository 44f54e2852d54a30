import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';

/** The multipart uploads a client started, and what it sent to finish each. */
export interface MultipartLog {
  /** Upload id → key, for every CreateMultipartUpload the server answered (the upload exists on the server). */
  created: Map<string, string>;
  /** Upload ids an AbortMultipartUpload was sent for (whatever the server answered). */
  abortsSent: Set<string>;
  /** Upload ids a CompleteMultipartUpload succeeded for. */
  completed: Set<string>;
  /**
   * While true, the answer to a CreateMultipartUpload sent with an abort signal is withheld until that
   * signal aborts, and the call then fails as the SDK fails an aborted request: the upload exists on the
   * server, the caller never learns its id (an abort landing while the answer was on its way, made
   * certain). A CreateMultipartUpload sent without a signal is left alone.
   */
  withholdCreates: boolean;
}

const SMITHY_CONTEXT = '__smithy_context';
const WITHHOLD_MAX_MS = 30_000;

/**
 * Records, on `client` (one passed as `s3.client`), the multipart uploads it creates and the aborts and
 * completions it sends: what the library asked S3 to do, whether or not the server implements it.
 */
export function watchMultipart(client: S3Client): MultipartLog {
  const log: MultipartLog = { created: new Map(), abortsSent: new Set(), completed: new Set(), withholdCreates: false };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; UploadId?: string };
      if (context.commandName === 'AbortMultipartUploadCommand' && input.UploadId) log.abortsSent.add(input.UploadId);
      const result = await next(args);
      const output = result.output as { UploadId?: string };
      if (context.commandName === 'CreateMultipartUploadCommand' && output.UploadId) {
        log.created.set(output.UploadId, input.Key ?? '');
        const signal = (context as { [SMITHY_CONTEXT]?: { abortSignal?: AbortSignal } })[SMITHY_CONTEXT]?.abortSignal;
        if (log.withholdCreates && signal) {
          const aborted = await new Promise<boolean>((resolve) => {
            if (signal.aborted) return resolve(true);
            const timer = setTimeout(() => resolve(false), WITHHOLD_MAX_MS);
            signal.addEventListener('abort', () => (clearTimeout(timer), resolve(true)), { once: true });
          });
          if (aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
        }
      }
      if (context.commandName === 'CompleteMultipartUploadCommand' && input.UploadId) log.completed.add(input.UploadId);
      return result;
    },
    { step: 'initialize', name: 'tenantdbTestWatchMultipart' },
  );
  return log;
}

/** The uploads created since `known` (a copy of `log.created`'s ids taken earlier): their ids, in order. */
export function createdSince(log: MultipartLog, known: ReadonlySet<string>): string[] {
  return [...log.created.keys()].filter((id) => !known.has(id));
}

/** Of `ids`, those neither completed nor sent an abort: open on the server, as far as the client knows. */
export function unfinishedUploads(log: MultipartLog, ids: readonly string[]): string[] {
  return ids.filter((id) => !log.completed.has(id) && !log.abortsSent.has(id));
}

/**
 * The multipart uploads the server lists as open under `prefix` (ListMultipartUploads), or
 * 'not listable' on a server without it (s3rver answers NotImplemented).
 */
export async function listedUploads(admin: S3Client, bucket: string, prefix: string): Promise<string[] | 'not listable'> {
  try {
    const res = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    return (res.Uploads ?? []).map((u) => u.UploadId ?? '');
  } catch (err) {
    if ((err as Error).name === 'NotImplemented') return 'not listable';
    throw err;
  }
}
