import { describe, expect, it } from 'vitest';
import { DEFAULT_MIME_TYPE, mimeTypeFromExtension, resolveMimeType } from '../../src/documents/mime-type.js';
import { thrownCode } from '../support/errors.js';

describe('resolveMimeType', () => {
  it.each([
    ['report.pdf', 'application/pdf'],
    ['photo.PNG', 'image/png'],
    ['photo.jpg', 'image/jpeg'],
    ['photo.jpeg', 'image/jpeg'],
    ['anim.gif', 'image/gif'],
    ['pic.webp', 'image/webp'],
    ['logo.svg', 'image/svg+xml'],
    ['notes.txt', 'text/plain'],
    ['data.csv', 'text/csv'],
    ['data.json', 'application/json'],
    ['page.html', 'text/html'],
    ['feed.xml', 'application/xml'],
    ['README.md', 'text/markdown'],
    ['bundle.zip', 'application/zip'],
    ['backup.tar.gz', 'application/gzip'],
    ['backup.tar', 'application/x-tar'],
    ['letter.doc', 'application/msword'],
    ['letter.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['sheet.xls', 'application/vnd.ms-excel'],
    ['sheet.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['deck.ppt', 'application/vnd.ms-powerpoint'],
    ['deck.pptx', 'application/vnd.openxmlformats-officedocument.presentationml.presentation'],
    ['text.odt', 'application/vnd.oasis.opendocument.text'],
    ['song.mp3', 'audio/mpeg'],
    ['clip.mp4', 'video/mp4'],
    ['sound.wav', 'audio/wav'],
    ['archive.7z', 'application/x-7z-compressed'],
    ['module.wasm', 'application/wasm'],
    ['script.js', 'text/javascript'],
  ])('guesses %s as %s', (filename, expected) => {
    expect(resolveMimeType(filename)).toBe(expected);
  });

  it('falls back to application/octet-stream', () => {
    expect(DEFAULT_MIME_TYPE).toBe('application/octet-stream');
    // A bare `pdf` or a hidden `.pdf` has no extension, though mime-types' lookup would take either for one.
    for (const name of ['noextension', 'file.unknownext', '.env', 'trailing.', 'a.constructor', 'a.__proto__', 'a.toString', 'pdf', '.pdf', 'dir.pdf/file']) {
      expect(resolveMimeType(name)).toBe('application/octet-stream');
    }
    expect(mimeTypeFromExtension('x.hasOwnProperty')).toBeUndefined();
  });

  it('takes a given type over the extension, lower-casing type and subtype and keeping parameters', () => {
    expect(resolveMimeType('report.pdf', 'text/plain')).toBe('text/plain');
    expect(resolveMimeType('x', 'Application/JSON')).toBe('application/json');
    expect(resolveMimeType('x', 'text/plain; charset=UTF-8')).toBe('text/plain; charset=UTF-8');
    expect(resolveMimeType('x', ' text/plain;charset=utf-8 ;format=flowed ')).toBe('text/plain; charset=utf-8; format=flowed');
    expect(resolveMimeType('x', 'multipart/form-data; boundary="a b;c"')).toBe('multipart/form-data; boundary="a b;c"');
    expect(resolveMimeType('x', 'application/vnd.api+json')).toBe('application/vnd.api+json');
  });

  it.each([
    ['empty', ''],
    ['no subtype', 'text'],
    ['empty subtype', 'text/'],
    ['empty type', '/plain'],
    ['two slashes', 'text/plain/x'],
    ['space inside', 'text /plain'],
    ['parameter without value', 'text/plain; charset'],
    ['parameter without name', 'text/plain; =x'],
    ['non-ASCII', 'tëxt/plain'],
    ['non-ASCII quoted value', 'text/plain; a="é"'],
    ['control character', 'text/pl\u0000ain'],
    ['header injection', 'text/plain\r\nX-Evil: 1'],
    ['unterminated quote', 'text/plain; a="x'],
    ['over 255 characters', `text/${'x'.repeat(120)}; a=${'y'.repeat(140)}`],
  ])('rejects a given type that is %s with VALIDATION', (_what, given) => {
    expect(thrownCode(() => resolveMimeType('a.pdf', given))).toBe('VALIDATION');
  });

  it('rejects a given type that is not a string', () => {
    expect(thrownCode(() => resolveMimeType('a.pdf', 42 as unknown as string))).toBe('VALIDATION');
  });
});
