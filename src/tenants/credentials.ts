import { createCipheriv, createDecipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { TenantDbError } from '../errors.js';

/**
 * The secrets of per-tenant login roles (`tenantRoles: true`): the `credentialsKey` option, the random
 * role passwords, their encryption for the main database (AES-256-GCM, bound to the tenant's id) and the
 * SCRAM verifier the server stores, so that no password is ever sent to PostgreSQL in a statement.
 * @internal
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
const FORMAT = 'v1';

/**
 * The 32-byte key of `credentialsKey`: a Buffer (or Uint8Array), or a string of 64 hex digits or of base64
 * (or base64url). VALIDATION otherwise; the message never repeats the value.
 */
export function parseCredentialsKey(value: unknown): Buffer {
  let key: Buffer | undefined;
  if (value instanceof Uint8Array) key = Buffer.from(value);
  else if (typeof value === 'string') {
    const text = value.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
    else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  }
  if (key?.length !== KEY_BYTES) {
    throw new TenantDbError('VALIDATION', 'credentialsKey must be 32 bytes: a Buffer, or 64 hex digits, or base64 of 32 bytes');
  }
  return key;
}

/** A new role password: 32 characters of base64url (192 random bits). */
export function newRolePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** `password` encrypted for the main database, readable only with `key` and for the same tenant. */
export function encryptSecret(key: Buffer, tenantId: string, password: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(tenantId));
  const body = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return [FORMAT, iv, cipher.getAuthTag(), body].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

/** The password {@link encryptSecret} stored; DATABASE when the key (or the tenant) is not the one it was stored with. */
export function decryptSecret(key: Buffer, tenantId: string, stored: string): string {
  const [format, iv, tag, body] = stored.split('.');
  try {
    if (format !== FORMAT || iv === undefined || tag === undefined || body === undefined) throw new Error('unknown format');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(tenantId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new TenantDbError('DATABASE', "cannot decrypt a tenant role's password: is credentialsKey the key it was stored with?", {
      cause: err,
    });
  }
}

const ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier of a password (RFC 5802, RFC 7677), as PostgreSQL stores it in `pg_authid`:
 * `CREATE ROLE … PASSWORD '<verifier>'` sets the password without it appearing in the statement, nor in
 * any server log of it. Our passwords are base64url, so SASLprep leaves them as they are.
 */
export function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A verifier as a SQL string literal, checked to hold nothing but its own alphabet. */
export function verifierLiteral(verifier: string): string {
  if (!/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(verifier)) {
    throw new TenantDbError('VALIDATION', 'not a SCRAM verifier');
  }
  return `'${verifier}'`;
}

/** The advisory lock held while a tenant's role password changes (a rotation, its repair, or a move carrying the role). @internal */
export const credentialsLock = (id: string): string => `tenantdb:credentials:${id}`;
