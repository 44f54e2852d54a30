import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptSecret, encryptSecret, newRolePassword, parseCredentialsKey, scramVerifier, verifierLiteral } from '../../src/tenants/credentials.js';
import { thrownCode } from '../support/errors.js';

const KEY = randomBytes(32);
const TENANT = '3f0c1c9e-5b7a-4c1e-9d2a-0c6a1f2b3c4d';

describe('tenant role credentials', () => {
  it('reads a 32-byte key from a Buffer, hex, base64 and base64url, and refuses any other length', () => {
    for (const form of [KEY, new Uint8Array(KEY), KEY.toString('hex'), KEY.toString('base64'), KEY.toString('base64url')]) {
      expect(parseCredentialsKey(form).equals(KEY)).toBe(true);
    }
    for (const bad of [randomBytes(31), randomBytes(16).toString('hex'), 'not a key!', '', 42, null]) {
      expect(thrownCode(() => parseCredentialsKey(bad))).toBe('VALIDATION');
    }
  });

  it('makes passwords of 32 url-safe characters, each new', () => {
    const passwords = new Set(Array.from({ length: 100 }, newRolePassword));
    expect(passwords.size).toBe(100);
    for (const p of passwords) expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('encrypts so that only the same key and tenant read it back, and a change to any byte is refused', () => {
    const password = newRolePassword();
    const stored = encryptSecret(KEY, TENANT, password);
    expect(stored).not.toContain(password);
    expect(encryptSecret(KEY, TENANT, password)).not.toBe(stored); // a fresh IV each time
    expect(decryptSecret(KEY, TENANT, stored)).toBe(password);
    expect(thrownCode(() => decryptSecret(randomBytes(32), TENANT, stored))).toBe('DATABASE');
    expect(thrownCode(() => decryptSecret(KEY, TENANT.replace('3f', '4f'), stored))).toBe('DATABASE');
    const parts = stored.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(thrownCode(() => decryptSecret(KEY, TENANT, [...parts.slice(0, 3), body.toString('base64url')].join('.')))).toBe('DATABASE');
    expect(thrownCode(() => decryptSecret(KEY, TENANT, 'garbage'))).toBe('DATABASE');
  });

  it("builds PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802 StoredKey and ServerKey over the salted password)", () => {
    const password = newRolePassword();
    const verifier = scramVerifier(password);
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier)!;
    const salted = pbkdf2Sync(password, Buffer.from(m[1]!, 'base64'), 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    expect(m[2]).toBe(createHash('sha256').update(clientKey).digest('base64'));
    expect(m[3]).toBe(createHmac('sha256', salted).update('Server Key').digest('base64'));
    expect(verifierLiteral(verifier)).toBe(`'${verifier}'`);
    expect(thrownCode(() => verifierLiteral(`${verifier}'; DROP ROLE x; --`))).toBe('VALIDATION');
  });
});
