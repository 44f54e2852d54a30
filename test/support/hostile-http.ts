import { once } from 'node:events';
import net from 'node:net';

/** What a {@link pushBody} client saw. */
export interface PushedBody {
  /** Body bytes written to the socket before the response (or the end of the connection) arrived. */
  written: number;
  /** The response as far as it came: status, headers and body text; undefined when none came. */
  response: { status: number; headers: Record<string, string>; body: string } | undefined;
  /** Why the connection ended without a complete response, if it did (`ECONNRESET`, `EPIPE`, …). */
  error: string | undefined;
}

/**
 * A client that announces `size` bytes (Content-Length) and writes them in 64 KiB chunks, honouring
 * back-pressure, until the server answers, the connection ends or `size` bytes are written. Then it
 * reads the response to its end (or for `readMs` more) and destroys the socket.
 */
export async function pushBody(
  port: number,
  request: { path: string; headers: Record<string, string> },
  size: number,
  timeoutMs = 60_000,
): Promise<PushedBody> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let raw = Buffer.alloc(0);
  let error: string | undefined;
  let ended = false;
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      resolve();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
      resolve();
    });
    socket.on('close', () => {
      ended = true;
      resolve();
    });
  });
  let stop = false;
  void answered.then(() => (stop = true));
  const head = Object.entries({ Host: '127.0.0.1', 'Content-Length': String(size), ...request.headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(`PUT ${request.path} HTTP/1.1\r\n${head}\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let written = 0;
  const deadline = Date.now() + timeoutMs;
  while (!stop && written < size && Date.now() < deadline) {
    const n = Math.min(chunk.length, size - written);
    const flushed = socket.write(n === chunk.length ? chunk : chunk.subarray(0, n));
    written += n;
    if (!flushed) await Promise.race([once(socket, 'drain').catch(() => undefined), answered]);
  }
  await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())))]);
  // The response may come in several packets: read until it is complete or the connection ends.
  const complete = (): boolean => {
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const length = /\r\ncontent-length: *(\d+)/i.exec(raw.subarray(0, end).toString('latin1'));
    return length ? raw.length >= end + 4 + Number(length[1]) : ended;
  };
  const readDeadline = Date.now() + 10_000;
  while (raw.length > 0 && !complete() && !ended && Date.now() < readDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  socket.destroy();
  // A write that fails (EPIPE) once the server has answered and closed is no error of the exchange: only
  // one that ends the connection before a complete response counts.
  return { written, response: parseResponse(raw), error: complete() ? undefined : error };
}

function parseResponse(raw: Buffer): PushedBody['response'] {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: raw.subarray(end + 4).toString('utf8') };
}

/** Resolves once `check()` is true; fails after `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
