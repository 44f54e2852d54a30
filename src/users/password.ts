import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { TenantDbError } from '../errors.js';

/** scrypt cost parameters, as stored in each hash. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelisation. */
  p: number;
}

/** The parameters new hashes get: OWASP's recommendation for scrypt (N=2^17, r=8, p=1). */
export const PASSWORD_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

/** Shortest password, in characters after NFKC normalisation. */
export const PASSWORD_MIN_LENGTH = 8;
/** Longest password, in characters after NFKC normalisation. */
export const PASSWORD_MAX_LENGTH = 1024;

const SALT_BYTES = 16;
const KEY_BYTES = 32;
// scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is below what N=2^17, r=8 needs (128 MiB).
const MIN_MAXMEM = 256 * 1024 * 1024;
// Bounds for parameters read back from the database, so a corrupt row cannot ask for gigabytes.
const MAX_MEMORY = 1024 * 1024 * 1024;
const STORED = /^scrypt\$N=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function deriveKey(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: Math.max(MIN_MAXMEM, 2 * 128 * params.N * params.r * params.p),
  };
  // The callback form runs on libuv's thread pool: hashing never blocks the event loop.
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * A password as offered at login, NFKC-normalised: a string of at most 1024 characters, else VALIDATION
 * (before any hashing, so an over-long password costs nothing). Shorter than 8 is allowed here: no
 * stored hash can match it, and refusing it takes as long as refusing any other wrong password.
 */
export function passwordCandidate(password: unknown): string {
  if (typeof password !== 'string') throw new TenantDbError('VALIDATION', 'password must be a string');
  const tooLong = (): never => {
    throw new TenantDbError('VALIDATION', `password must be at most ${PASSWORD_MAX_LENGTH} characters`);
  };
  // A cheap bound on the work normalisation does; the exact length check follows it.
  if (password.length > PASSWORD_MAX_LENGTH * 4) tooLong();
  const normalized = password.normalize('NFKC');
  if ([...normalized].length > PASSWORD_MAX_LENGTH) tooLong();
  return normalized;
}

/**
 * Checks a new password and returns it NFKC-normalised: a string of 8 to 1024 characters, else
 * VALIDATION. Runs before any hashing.
 */
export function normalizePassword(password: unknown): string {
  const normalized = passwordCandidate(password);
  if ([...normalized].length < PASSWORD_MIN_LENGTH) {
    throw new TenantDbError('VALIDATION', `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`);
  }
  return normalized;
}

/**
 * Hashes a normalised password with scrypt and a fresh 16-byte salt, as one self-describing string:
 * `scrypt$N=131072,r=8,p=1$<salt base64>$<hash base64>`.
 */
export async function hashPassword(password: string, params: ScryptParams = PASSWORD_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await deriveKey(password, salt, params, KEY_BYTES);
  return `scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const m = STORED.exec(stored);
  if (!m) return undefined;
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const powerOfTwo = params.N > 1 && (params.N & (params.N - 1)) === 0;
  if (!powerOfTwo || params.r < 1 || params.p < 1 || 128 * params.N * params.r * params.p > MAX_MEMORY) return undefined;
  const salt = Buffer.from(m[4]!, 'base64');
  const key = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params, salt, key };
}

/** What {@link verifyPassword} found. */
export interface PasswordCheck {
  /** The password matches the hash. */
  ok: boolean;
  /** The hash was made with weaker parameters than today's: rehash it now that the password is known. */
  needsRehash: boolean;
}

/**
 * Compares a normalised password with a stored hash, in constant time (`timingSafeEqual`). An
 * unreadable hash never matches.
 */
export async function verifyPassword(password: string, stored: string): Promise<PasswordCheck> {
  const parsed = parseHash(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  const key = await deriveKey(password, parsed.salt, parsed.params, parsed.key.length);
  const ok = timingSafeEqual(key, parsed.key);
  const { N, r, p } = parsed.params;
  const needsRehash =
    N < PASSWORD_PARAMS.N ||
    r < PASSWORD_PARAMS.r ||
    p < PASSWORD_PARAMS.p ||
    parsed.key.length < KEY_BYTES ||
    parsed.salt.length < SALT_BYTES;
  return { ok, needsRehash };
}

let dummyHash: Promise<string> | undefined;

/**
 * A hash of no one's password, made once with today's parameters. Verifying against it costs what a
 * real check costs, so an unknown email takes as long to refuse as a wrong password.
 */
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(18).toString('base64')).catch((err: unknown) => {
    dummyHash = undefined;
    throw err;
  });
  return dummyHash;
}
