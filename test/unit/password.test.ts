import { describe, expect, it } from 'vitest';
import {
  PASSWORD_PARAMS,
  dummyPasswordHash,
  hashPassword,
  normalizePassword,
  passwordCandidate,
  verifyPassword,
} from '../../src/users/password.js';
import { thrownCode } from '../support/errors.js';

// Weak parameters keep these checks of the format fast; one test uses today's parameters.
const FAST = { N: 1024, r: 8, p: 1 };

describe('password hashing', () => {
  it('uses scrypt with OWASP parameters and stores a self-describing string', async () => {
    expect(PASSWORD_PARAMS).toEqual({ N: 131072, r: 8, p: 1 });
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^scrypt\$N=131072,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(await verifyPassword('correct horse battery', hash)).toEqual({ ok: true, needsRehash: false });
    expect((await verifyPassword('correct horse batterY', hash)).ok).toBe(false);
  });

  it('salts every hash with 16 fresh random bytes', async () => {
    const [a, b] = await Promise.all([hashPassword('same password', FAST), hashPassword('same password', FAST)]);
    expect(a).not.toBe(b);
    expect(Buffer.from(a.split('$')[2]!, 'base64')).toHaveLength(16);
  });

  it('asks for a rehash of a hash made with weaker parameters', async () => {
    const weak = await hashPassword('old password', FAST);
    expect(weak.startsWith('scrypt$N=1024,r=8,p=1$')).toBe(true);
    expect(await verifyPassword('old password', weak)).toEqual({ ok: true, needsRehash: true });
    expect(await verifyPassword('not the password', weak)).toEqual({ ok: false, needsRehash: true });
  });

  it('never matches an unreadable, tampered or absurd hash', async () => {
    const hash = await hashPassword('some password', FAST);
    const parts = hash.split('$');
    const key = Buffer.from(parts[3]!, 'base64');
    key[0] = key[0]! ^ 1;
    const tampered = [...parts.slice(0, 3), key.toString('base64')].join('$');
    expect((await verifyPassword('some password', tampered)).ok).toBe(false);
    expect((await verifyPassword('some password', 'plaintext')).ok).toBe(false);
    expect((await verifyPassword('some password', '')).ok).toBe(false);
    expect((await verifyPassword('some password', hash.replace('N=1024', 'N=1000'))).ok).toBe(false); // not a power of two
    expect((await verifyPassword('some password', hash.replace('N=1024', 'N=67108864'))).ok).toBe(false); // 8 GiB
  });

  it('NFKC-normalises, so equivalent spellings are the same password', async () => {
    // U+FB01 (the "fi" ligature) and a full-width digit normalise to plain "fi" and "1".
    expect(normalizePassword('\uFB01nance\uFF11\uFF12\uFF13')).toBe('finance123');
    const hash = await hashPassword(normalizePassword('finance123'), FAST);
    expect((await verifyPassword(normalizePassword('\uFB01nance\uFF11\uFF12\uFF13'), hash)).ok).toBe(true);
  });

  it('accepts 8 to 1024 characters, else VALIDATION before any hashing', () => {
    expect(normalizePassword('12345678')).toBe('12345678');
    expect(normalizePassword('x'.repeat(1024))).toHaveLength(1024);
    expect([...normalizePassword('😀'.repeat(1024))]).toHaveLength(1024); // characters, not UTF-16 units
    expect(thrownCode(() => normalizePassword('1234567'))).toBe('VALIDATION');
    expect(thrownCode(() => normalizePassword('x'.repeat(1025)))).toBe('VALIDATION');
    expect(thrownCode(() => normalizePassword('x'.repeat(10_000_000)))).toBe('VALIDATION');
    expect(thrownCode(() => normalizePassword(12345678))).toBe('VALIDATION');
    expect(thrownCode(() => normalizePassword(undefined))).toBe('VALIDATION');
  });

  it('at login, lets a short password through (to fail like any wrong one) but not a long one', () => {
    expect(passwordCandidate('short')).toBe('short');
    expect(thrownCode(() => passwordCandidate('x'.repeat(1025)))).toBe('VALIDATION');
    expect(thrownCode(() => passwordCandidate(null))).toBe('VALIDATION');
  });

  it('makes one dummy hash, with today’s parameters, for unknown emails', async () => {
    const [a, b] = await Promise.all([dummyPasswordHash(), dummyPasswordHash()]);
    expect(a).toBe(b);
    expect(a.startsWith('scrypt$N=131072,r=8,p=1$')).toBe(true);
  });
});
