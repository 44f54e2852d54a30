import { createHash, createHmac, pbkdf2 } from 'node:crypto';
import pg from 'pg';

// SCRAM-SHA-256 (RFC 5802, RFC 7677) with the client's keys derived once. PBKDF2 over 4096 iterations costs
// about 2.4 ms of CPU per connection (one connection at a time, against the embedded PostgreSQL 18 of the
// tests, our clients connect at about 110 a second and a bare pg.Client at about 72); the server offers the
// same salt and iteration count every time, so the keys derived from them do not change. RFC 5802 §5.1
// allows a client to keep ClientKey and ServerKey for later authentications.

/** ClientKey and ServerKey of one (password, salt, iteration count). */
interface ScramKeys {
  clientKey: Buffer;
  serverKey: Buffer;
}

/** Distinct credentials kept; a process talks to few roles, so this bound is never reached in practice. */
const MAX_KEYS = 64;
/** Derivations in flight or done, newest last; keyed by a digest of password, salt and iteration count. */
const derived = new Map<string, Promise<ScramKeys>>();
let derivations = 0;

/** How many times PBKDF2 ran in this process (for tests: a second connection with the same credentials runs none). @internal */
export function scramDerivations(): number {
  return derivations;
}

/**
 * SASLprep (RFC 4013) as PostgreSQL and pg apply it before PBKDF2: non-ASCII spaces become spaces, the
 * characters "commonly mapped to nothing" go, then NFKC.
 */
function saslPrep(password: string): string {
  return password
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    // eslint-disable-next-line no-misleading-character-class -- joiners and variation selectors, removed one by one
    .replace(/[\u00AD\u034F\u1806\u180B\u180C\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '')
    .normalize('NFKC');
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

/** The keys of these credentials: derived once (PBKDF2 on libuv's thread pool, off the event loop), then kept. */
function scramKeys(password: string, salt: string, iterations: number): Promise<ScramKeys> {
  const id = createHash('sha256').update(`${iterations}\u0000${salt}\u0000${password}`).digest('base64');
  const known = derived.get(id);
  if (known) {
    // Most recently used last, so the first entry is the one to forget.
    derived.delete(id);
    derived.set(id, known);
    return known;
  }
  derivations++;
  const keys = new Promise<ScramKeys>((resolve, reject) => {
    pbkdf2(saslPrep(password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256', (err, salted) => {
      if (err) reject(err);
      else resolve({ clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') });
    });
  });
  derived.set(id, keys);
  keys.catch(() => derived.delete(id));
  if (derived.size > MAX_KEYS) derived.delete(derived.keys().next().value!);
  return keys;
}

/** What the client sent first (pg's SASL session after SASLInitialResponse). */
export interface ScramClientFirst {
  /** The whole client-first-message: gs2 header, then the bare message (`n=…,r=<nonce>`). */
  response: string;
  /** The client's nonce. */
  clientNonce: string;
  /** Largest iteration count accepted from the server; 0: no limit. */
  maxIterations: number;
}

/** The client-final-message to send, and the server signature its final message must carry. */
export interface ScramClientFinal {
  response: string;
  serverSignature: string;
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    if (!/^[a-z]=/.test(part)) throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: invalid attribute');
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

/**
 * The client-final-message of SCRAM-SHA-256 without channel binding, for the server-first-message
 * `serverFirst`, with the same checks pg makes (the server's nonce extends ours; the salt is base64; the
 * iteration count is a positive integer within `maxIterations`). The keys are derived once per password,
 * salt and iteration count (see {@link scramKeys}).
 * @internal
 */
export async function scramClientFinal(first: ScramClientFirst, password: string, serverFirst: string): Promise<ScramClientFinal> {
  const attrs = attributes(serverFirst);
  const nonce = attrs.get('r') ?? '';
  const salt = attrs.get('s') ?? '';
  const iterationText = attrs.get('i') ?? '';
  if (!nonce.startsWith(first.clientNonce) || nonce.length === first.clientNonce.length || !/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: the server nonce does not extend the client nonce');
  }
  if (salt === '' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(salt)) {
    throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: the salt is not base64');
  }
  if (!/^[1-9][0-9]*$/.test(iterationText)) throw new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: invalid iteration count');
  const iterations = Number(iterationText);
  if (first.maxIterations !== 0 && iterations > first.maxIterations) {
    throw new Error(`SASL: SCRAM-SERVER-FIRST-MESSAGE: iteration count ${iterations} exceeds the limit of ${first.maxIterations}`);
  }
  // The gs2 header is what came before the bare message ("n,," or "y,,"); the final message repeats it, base64.
  const bareStart = first.response.indexOf(',,') + 2;
  const channelBinding = Buffer.from(first.response.slice(0, bareStart)).toString('base64');
  const withoutProof = `c=${channelBinding},r=${nonce}`;
  const authMessage = `${first.response.slice(bareStart)},${serverFirst},${withoutProof}`;
  const { clientKey, serverKey } = await scramKeys(password, salt, iterations);
  const storedKey = createHash('sha256').update(clientKey).digest();
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  return {
    response: `${withoutProof},p=${proof.toString('base64')}`,
    serverSignature: hmac(serverKey, authMessage).toString('base64'),
  };
}

/** The parts of pg.Client the SCRAM exchange goes through (pg 8.x; feature-tested before use). */
interface SaslClient {
  saslSession?: { mechanism?: unknown; message?: unknown; response?: unknown; clientNonce?: unknown; scramMaxIterations?: unknown; serverSignature?: unknown } | null;
  password?: unknown;
  connection?: { sendSCRAMClientFinalMessage?: (response: string) => void; emit(event: 'error', err: unknown): boolean };
}

type SaslContinue = (this: unknown, msg: { data: string }) => Promise<void>;
const pgSaslContinue = (pg.Client.prototype as unknown as { _handleAuthSASLContinue?: SaslContinue })._handleAuthSASLContinue;

/**
 * A `pg.Client` that answers SCRAM-SHA-256 with keys derived once per credentials (see {@link scramClientFinal}),
 * instead of PBKDF2 on every connection. Channel binding (SCRAM-SHA-256-PLUS), or a pg whose internals
 * differ, goes through pg's own code, unchanged.
 * @internal
 */
export class ScramKeyClient extends pg.Client {
  /** pg's handler of AuthenticationSASLContinue (the server-first-message), which pg looks up on the instance. */
  async _handleAuthSASLContinue(msg: { data: string }): Promise<void> {
    const self = this as unknown as SaslClient;
    const session = self.saslSession;
    const send = self.connection?.sendSCRAMClientFinalMessage;
    if (
      !session ||
      session.mechanism !== 'SCRAM-SHA-256' ||
      session.message !== 'SASLInitialResponse' ||
      typeof session.response !== 'string' ||
      typeof session.clientNonce !== 'string' ||
      typeof self.password !== 'string' ||
      self.password === '' ||
      typeof msg?.data !== 'string' ||
      typeof send !== 'function'
    ) {
      return pgSaslContinue?.call(this, msg);
    }
    try {
      const final = await scramClientFinal(
        {
          response: session.response,
          clientNonce: session.clientNonce,
          maxIterations: typeof session.scramMaxIterations === 'number' ? session.scramMaxIterations : 100_000,
        },
        self.password,
        msg.data,
      );
      session.message = 'SASLResponse';
      session.serverSignature = final.serverSignature;
      session.response = final.response;
      send.call(self.connection, final.response);
    } catch (err) {
      self.connection!.emit('error', err);
    }
  }
}
