import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/util/cursor.js';
import { normalizeEmail, normalizeName } from '../../src/users/user-input.js';
import { thrownCode } from '../support/errors.js';

describe('user input', () => {
  it('trims emails and keeps their case', () => {
    expect(normalizeEmail('  Ada.Lovelace@Example.co.uk \n')).toBe('Ada.Lovelace@Example.co.uk');
    expect(normalizeEmail('a+tag@x.io')).toBe('a+tag@x.io');
    expect(normalizeEmail('josé@exämple.de')).toBe('josé@exämple.de');
  });

  it('refuses what is not an email address', () => {
    for (const bad of ['', '   ', 'plain', 'a@b', 'a@@b.io', 'a@b@c.io', 'a b@c.io', '@x.io', 'a@.io', 'a@x.', 'a@x..io', 'a@x.io\u0000']) {
      expect(thrownCode(() => normalizeEmail(bad)), JSON.stringify(bad)).toBe('VALIDATION');
    }
    expect(thrownCode(() => normalizeEmail(42))).toBe('VALIDATION');
    const local = 'a'.repeat(64);
    const long = `${local}@${'b'.repeat(187)}.io`; // 255 characters
    expect(normalizeEmail(long)).toBe(long);
    expect(thrownCode(() => normalizeEmail(`a${long}`))).toBe('VALIDATION');
  });

  it('trims names and wants 1 to 100 characters', () => {
    expect(normalizeName('  Ada ', 'firstName')).toBe('Ada');
    expect(normalizeName('Ζωή', 'lastName')).toBe('Ζωή');
    expect(normalizeName('x'.repeat(100), 'firstName')).toHaveLength(100);
    expect(thrownCode(() => normalizeName('x'.repeat(101), 'firstName'))).toBe('VALIDATION');
    expect(thrownCode(() => normalizeName('   ', 'firstName'))).toBe('VALIDATION');
    expect(thrownCode(() => normalizeName('', 'lastName'))).toBe('VALIDATION');
    expect(thrownCode(() => normalizeName('a\nb', 'lastName'))).toBe('VALIDATION');
    expect(thrownCode(() => normalizeName(undefined, 'lastName'))).toBe('VALIDATION');
  });
});

describe('keyset cursors', () => {
  const id = '0b6f2d4e-9c1a-4f3e-8a7b-1c2d3e4f5a6b';

  it('round-trip a position with microseconds, opaquely', () => {
    const position = { createdAt: '2024-02-29T23:59:59.123456Z', id };
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it('refuse anything they did not make: VALIDATION', () => {
    const enc = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const bad of [
      '',
      'not a cursor!',
      'bm90IGpzb24',
      enc({ createdAt: '2024-01-01T00:00:00.000000Z', id }),
      enc(['2024-01-01T00:00:00.000000Z']),
      enc(['2024-01-01T00:00:00.000000Z', 'not-a-uuid']),
      enc(['2024-13-01T00:00:00.000000Z', id]),
      enc(['2023-02-29T00:00:00.000000Z', id]),
      enc(['2024-01-01 00:00:00', id]),
      enc(["2024-01-01T00:00:00.000000Z'; DROP TABLE users; --", id]),
      42,
    ]) {
      expect(thrownCode(() => decodeCursor(bad)), String(bad)).toBe('VALIDATION');
    }
  });
});
