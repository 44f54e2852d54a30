import { parse } from 'content-disposition';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentDisposition } from '../../src/storage/s3-object-store.js';

// What an HTTP header value may hold: printable ASCII and tab, no CR, LF or other control character.
const HEADER_SAFE = /^[\t\x20-\x7e]*$/;

describe('contentDisposition', () => {
  it.each([
    ['report.pdf', 'attachment; filename=report.pdf'],
    ['with space.txt', 'attachment; filename="with space.txt"'],
    ['résumé.txt', `attachment; filename="r?sum?.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`],
    ['résumé "final".pdf', `attachment; filename="r?sum? \\"final\\".pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`],
    ['back\\slash.txt', 'attachment; filename="back\\\\slash.txt"'],
    ['日本語.md', `attachment; filename="???.md"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.md`],
    ['100%41.txt', `attachment; filename=100%41.txt; filename*=UTF-8''100%2541.txt`],
  ])('writes %j as %s', (filename, header) => {
    expect(contentDisposition(filename)).toBe(header);
  });

  it('keeps CR, LF and other control characters out of the header (no header injection)', () => {
    for (const name of ['a\r\nX-Evil: 1.txt', 'nul\u0000.txt', 'tab\t.txt', 'del\u007f.txt', 'c1\u0085.txt', 'a"; filename="evil.exe']) {
      const header = contentDisposition(name);
      expect(header).toMatch(HEADER_SAFE);
      expect(header).not.toMatch(/[\r\n]/);
      expect(parse(header)).toEqual({ type: 'attachment', parameters: expect.objectContaining({ filename: name }) });
    }
    expect(contentDisposition('a\r\nX-Evil: 1.txt')).toBe(
      `attachment; filename="a??X-Evil: 1.txt"; filename*=UTF-8''a%0D%0AX-Evil%3A%201.txt`,
    );
  });

  it('gives any well-formed name back when parsed, in a header-safe value', () => {
    const names = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }));
    fc.assert(
      fc.property(names, (name) => {
        const header = contentDisposition(name);
        expect(header).toMatch(HEADER_SAFE);
        expect(parse(header).type).toBe('attachment');
        expect(parse(header).parameters.filename).toBe(name);
      }),
      { numRuns: 500 },
    );
  });
});
