import { describe, expect, it } from 'vitest';
import { MAX_FILENAME_BYTES, normaliseFilename } from '../../src/documents/filename.js';
import { thrownCode } from '../support/errors.js';

describe('normaliseFilename', () => {
  it('returns ordinary names unchanged', () => {
    for (const name of ['report.pdf', 'a', 'with space.txt', '...', '.hidden', 'x..y', 'Ünïcødé 日本語 🎉.md', "it's (1).doc"]) {
      expect(normaliseFilename(name)).toBe(name);
    }
  });

  it('normalises to NFC, so NFC and NFD spellings are the same name', () => {
    const nfc = 'Caf\u00e9.pdf';
    const nfd = 'Cafe\u0301.pdf';
    expect(nfc).not.toBe(nfd);
    expect(normaliseFilename(nfd)).toBe(nfc);
    expect(normaliseFilename(nfc)).toBe(nfc);
    expect(normaliseFilename('\u1100\u1161')).toBe('\uac00'); // Hangul jamo compose
  });

  it.each([
    ['empty', ''],
    ['dot', '.'],
    ['dot dot', '..'],
    ['slash', 'a/b'],
    ['leading slash', '/etc'],
    ['backslash', 'a\\b'],
    ['NUL', 'a\u0000b'],
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['tab', 'a\tb'],
    ['escape', '\u001b[31m'],
    ['unit separator', 'a\u001fb'],
    ['DEL', 'a\u007fb'],
    ['C1 NEL', 'a\u0085b'],
    ['C1 first', '\u0080'],
    ['C1 last', 'a\u009f'],
    ['lone high surrogate', 'a\ud800b'],
    ['lone low surrogate', 'a\udc00'],
    ['256 ASCII bytes', 'a'.repeat(256)],
    ['path traversal', '../secret'],
  ])('rejects %s with VALIDATION', (_what, name) => {
    expect(thrownCode(() => normaliseFilename(name))).toBe('VALIDATION');
  });

  it('rejects what is not a string', () => {
    for (const name of [undefined, null, 42, {}, ['a'], Buffer.from('a')]) {
      expect(thrownCode(() => normaliseFilename(name))).toBe('VALIDATION');
    }
  });

  it('counts the limit in bytes of UTF-8, multi-byte characters at the boundary included', () => {
    expect(MAX_FILENAME_BYTES).toBe(255);
    expect(normaliseFilename('a'.repeat(255))).toHaveLength(255);
    // 2-byte é: 127 × 2 + 1 = 255 fits; one more é is 257.
    expect(normaliseFilename('é'.repeat(127) + 'a')).toBe('é'.repeat(127) + 'a');
    expect(thrownCode(() => normaliseFilename('é'.repeat(128)))).toBe('VALIDATION');
    // 3-byte €: 85 × 3 = 255 fits; 253 + € = 256 does not.
    expect(normaliseFilename('€'.repeat(85))).toBe('€'.repeat(85));
    expect(thrownCode(() => normaliseFilename('a'.repeat(253) + '€'))).toBe('VALIDATION');
    // 4-byte 🎉 (two UTF-16 units): 251 + 4 = 255 fits; 252 + 4 = 256 does not.
    expect(normaliseFilename('a'.repeat(251) + '🎉')).toHaveLength(253);
    expect(thrownCode(() => normaliseFilename('a'.repeat(252) + '🎉'))).toBe('VALIDATION');
  });

  it('applies the byte limit to the normalised name', () => {
    // NFD 'e' + combining acute is 3 bytes, NFC 'é' is 2: 120 NFD é (360 bytes) become 240 bytes.
    const nfd = 'e\u0301'.repeat(120);
    expect(Buffer.byteLength(nfd)).toBeGreaterThan(255);
    expect(normaliseFilename(nfd)).toBe('\u00e9'.repeat(120));
  });
});
