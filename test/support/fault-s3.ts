import { readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { vi } from 'vitest';

/** The S3 operations the proxy tells apart (by method and query), for its log and its faults. */
export type S3Operation =
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'other';

/** One request the proxy answered (or cut). */
export interface ProxiedRequest {
  op: S3Operation;
  method: string;
  /** The part number of an UploadPart. */
  partNumber?: number;
  /** The status sent back; 0 when the connection was cut (the server behind it was down). */
  status: number;
}

/**
 * An HTTP proxy in front of an s3rver, which fails chosen requests the way S3 does, and adds the two
 * multipart calls s3rver lacks (ListMultipartUploads, AbortMultipartUpload: it answers them NotImplemented and
 * MethodNotAllowed) on s3rver's own record of unfinished uploads, its `<bucket>/._S3rver_uploads/<id>/`
 * folders. Those two are still sent to s3rver first, which checks their signature and must be up.
 */
export interface FaultProxy {
  endpoint: string;
  /** UploadPart requests this returns true for get `500 InternalError` (after their body was read). */
  failPart: ((partNumber: number) => boolean) | undefined;
  /** Writes (PUT, POST) get `403 AccessDenied`, as from a bucket policy that only allows reads. */
  readOnly: boolean;
  /** Every request answered so far, in order. */
  readonly log: readonly ProxiedRequest[];
  /** Resolves once `log` has an entry matching `match`; fails after `timeoutMs`. */
  waitFor(match: (r: ProxiedRequest) => boolean, timeoutMs?: number): Promise<void>;
  /** Unfinished multipart uploads in s3rver's folder, as ListMultipartUploads reports them. */
  openUploads(bucket: string, prefix?: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>>;
  close(): Promise<void>;
}

function operationOf(method: string, query: URLSearchParams, hasKey: boolean): S3Operation {
  if (method === 'GET' && !hasKey && query.has('uploads')) return 'ListMultipartUploads';
  if (!hasKey) return 'other';
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && query.has('uploadId') && query.has('partNumber')) return 'UploadPart';
  if (method === 'DELETE' && query.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'PUT' && !query.has('uploadId') && !query.has('tagging') && !query.has('acl')) return 'PutObject';
  return 'other';
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/** Starts a proxy on a free loopback port in front of the s3rver at `upstream`, whose folder is `directory`. */
export async function startFaultProxy(upstream: string, directory: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const log: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();

  const uploadsDir = (bucket: string): string => path.join(directory, bucket, '._S3rver_uploads');

  async function openUploads(bucket: string, prefix = ''): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    const dir = uploadsDir(bucket);
    const ids = await readdir(dir).catch(() => [] as string[]);
    const found: Array<{ key: string; uploadId: string; initiated: Date }> = [];
    for (const uploadId of ids) {
      const key = await readFile(path.join(dir, uploadId, 'key'), 'utf8').catch(() => undefined);
      if (key === undefined || !key.startsWith(prefix)) continue;
      const info = await stat(path.join(dir, uploadId));
      found.push({ key, uploadId, initiated: info.birthtimeMs > 0 ? info.birthtime : info.mtime });
    }
    return found.sort((a, b) => a.key.localeCompare(b.key) || a.uploadId.localeCompare(b.uploadId));
  }

  /** What s3rver would answer to the two calls it lacks, from its folder. */
  async function emulate(op: S3Operation, bucket: string, key: string, query: URLSearchParams): Promise<{ status: number; body: string }> {
    if (op === 'ListMultipartUploads') {
      const uploads = await openUploads(bucket, query.get('prefix') ?? '');
      const items = uploads
        .map(
          (u) =>
            `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
        )
        .join('');
      return {
        status: 200,
        body: `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(query.get('prefix') ?? '')}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`,
      };
    }
    const uploadId = query.get('uploadId') ?? '';
    const dir = path.join(uploadsDir(bucket), path.basename(uploadId));
    const recorded = await readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined);
    if (uploadId === '' || recorded !== key) return { status: 404, body: errorXml('NoSuchUpload', 'The specified upload does not exist.') };
    await rm(dir, { recursive: true, force: true });
    return { status: 204, body: '' };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [bucket = '', ...keyParts] = url.pathname.slice(1).split('/');
    const key = keyParts.map(decodeURIComponent).join('/');
    const op = operationOf(req.method ?? 'GET', url.searchParams, key.length > 0);
    const partNumber = op === 'UploadPart' ? Number(url.searchParams.get('partNumber')) : undefined;
    const record = (status: number): void => void log.push({ op, method: req.method ?? '', ...(partNumber !== undefined && { partNumber }), status });
    // Answers after the request body was read, as a server does: the client then sees the answer, not a reset.
    const answer = (status: number, body: string): void => {
      req.resume();
      req.once('end', () => {
        record(status);
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    };
    if (proxy.readOnly && (req.method === 'PUT' || req.method === 'POST')) {
      answer(403, errorXml('AccessDenied', 'Access Denied'));
      return;
    }
    if (op === 'UploadPart' && proxy.failPart?.(partNumber!)) {
      answer(500, errorXml('InternalError', 'We encountered an internal error. Please try again.'));
      return;
    }
    const headers = { ...req.headers };
    // Unsigned, and this proxy has already let the body come.
    delete headers.expect;
    const forwarded = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false },
      (upstreamRes) => {
        const status = upstreamRes.statusCode ?? 502;
        const lacking = (op === 'ListMultipartUploads' && status === 501) || (op === 'AbortMultipartUpload' && status === 405);
        if (lacking) {
          upstreamRes.resume();
          emulate(op, bucket, key, url.searchParams).then(
            ({ status: emulated, body }) => {
              record(emulated);
              res.writeHead(emulated, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
              res.end(body);
            },
            () => res.destroy(),
          );
          return;
        }
        record(status);
        res.writeHead(status, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    // The server behind is down (or cut the transfer): so is this one, for the client.
    forwarded.on('error', () => {
      record(0);
      req.socket.destroy();
    });
    // The client went away mid-request: so does the request behind.
    res.once('close', () => {
      if (!res.writableFinished) forwarded.destroy();
    });
    req.pipe(forwarded);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    failPart: undefined,
    readOnly: false,
    log,
    async waitFor(match, timeoutMs = 30_000) {
      await vi.waitFor(() => {
        if (!log.some(match)) throw new Error('no such request yet');
      }, { timeout: timeoutMs, interval: 10 });
    },
    openUploads,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  return proxy;
}
