import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import { normaliseFilename } from '../../src/documents/filename.js';
import { hostileString, notAString } from '../support/hostile-arbitraries.js';

const RUNS = { numRuns: 1000 };

// The rules, written out once more: C0 and C1 controls (NUL included), DEL, `/`, `\`, lone surrogates, and
// the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) that make `gnp.exe` display as `exe.png`.
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f/\\\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;

/** Whether `name`, once NFC-normalised, is a filename the rules accept. */
function acceptable(name: string): boolean {
  const nfc = name.normalize('NFC');
  const bytes = Buffer.byteLength(nfc, 'utf8');
  return bytes >= 1 && bytes <= 255 && !FORBIDDEN.test(nfc) && nfc !== '.' && nfc !== '..';
}

/** The filename, or the code of the TenantDbError it threw (anything else fails the test). */
function outcome(name: unknown): string | { code: string } {
  try {
    return normaliseFilename(name);
  } catch (err) {
    expect(err).toBeInstanceOf(TenantDbError);
    return { code: (err as TenantDbError).code };
  }
}

const filenames = fc.oneof(
  hostileString({ maxLength: 80 }),
  // Around the 255-byte limit, with multi-byte characters at the boundary.
  hostileString({ minLength: 60, maxLength: 300, size: 'max' }),
  fc.string({ unit: 'binary', maxLength: 300, size: 'max' }),
  fc.string({ unit: 'grapheme', maxLength: 120, size: 'max' }),
  // Traversal attempts.
  fc.array(fc.constantFrom('..', '.', 'etc', 'passwd', '', '%2e%2e', '\u2215', '\uff0f'), { maxLength: 6 }).chain((parts) =>
    fc.constantFrom('/', '\\').map((sep) => parts.join(sep)),
  ),
);

describe('filename validation (properties)', () => {
  it('accepts exactly the names whose NFC form is 1 to 255 bytes with nothing forbidden and is not . or .., returning that NFC form', () => {
    fc.assert(
      fc.property(filenames, (name) => {
        const result = outcome(name);
        if (acceptable(name)) expect(result).toBe(name.normalize('NFC'));
        else expect(result).toEqual({ code: 'VALIDATION' });
      }),
      RUNS,
    );
  });

  // One path segment, with neither separator. Windows' own rules (`a:b` is drive-relative, `CON` a device)
  // are not the library's: filenames are stored and sent, never used as paths.
  it('returns a name that stays in its folder: one path segment, no separator of POSIX or Windows, valid UTF-8, at most 255 bytes', () => {
    fc.assert(
      fc.property(filenames, (name) => {
        const result = outcome(name);
        if (typeof result !== 'string') return;
        expect(path.posix.dirname(path.posix.join('/srv/docs', result))).toBe('/srv/docs');
        expect(path.posix.basename(result)).toBe(result);
        expect(result).not.toMatch(/[/\\]/);
        expect(Buffer.from(result, 'utf8').toString('utf8')).toBe(result);
        expect(Buffer.byteLength(result)).toBeLessThanOrEqual(255);
      }),
      RUNS,
    );
  });

  it('makes the NFC and NFD spellings of a name one name, and is idempotent', () => {
    fc.assert(
      fc.property(filenames, (name) => {
        const result = outcome(name);
        expect(outcome(name.normalize('NFD'))).toEqual(result);
        expect(outcome(name.normalize('NFC'))).toEqual(result);
        if (typeof result === 'string') expect(normaliseFilename(result)).toBe(result);
      }),
      RUNS,
    );
  });

  it('refuses any name with a path separator, a control character, a bidi override or a lone surrogate in it', () => {
    const bad = fc.constantFrom('/', '\\', '\u0000', '\u0007', '\n', '\u007f', '\u0085', '\u202e', '\u202d', '\u2066', '\u2069', '\ud800', '\udfff');
    fc.assert(
      fc.property(hostileString({ maxLength: 40 }), bad, hostileString({ maxLength: 40 }), (before, forbidden, after) => {
        // Between two letters: a lone surrogate must not pair up with one at the end of `before` or the start of `after`.
        expect(outcome(`${before}a${forbidden}a${after}`)).toEqual({ code: 'VALIDATION' });
      }),
      RUNS,
    );
  });

  it('refuses whatever is not a string with VALIDATION', () => {
    fc.assert(
      fc.property(
        notAString,
        (value) => {
          expect(outcome(value)).toEqual({ code: 'VALIDATION' });
        },
      ),
      RUNS,
    );
  });
});
