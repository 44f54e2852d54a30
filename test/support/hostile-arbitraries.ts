import fc from 'fast-check';

/**
 * Characters that break naive handling of names: NUL and other C0/C1 controls, DEL, quotes, `;`, path
 * separators and dots, bidi overrides and isolates, lone surrogates, combining marks (NFC vs NFD),
 * characters whose lower case is ASCII (Kelvin sign, dotted capital I), Unicode spaces and line
 * separators, multi-byte and astral characters.
 */
export const HOSTILE_CHARACTERS = [
  '\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f', '\u0080', '\u0085', '\u009f',
  '"', "'", '`', ';', '--', '/*', '$$', '%', '\\', '/', '.', '..', ':', '*', '?', '<', '>', '|',
  '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c',
  '\ud800', '\udbff', '\udc00', '\udfff',
  'e\u0301', '\u0301', '\u00e9', '\u1100\u1161', '\uac00', '\u1e9b\u0323', 'A\u030a', '\u212b',
  '\u212a', '\u0130', '\u00df', '\ufb00',
  ' ', '\u00a0', '\u2028', '\u2029', '\u3000', '\ufeff', '\u200b',
  '日', '本', '€', '😀', '\u{10ffff}', '\ufffd',
] as const;

const asciiAlnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-');

/**
 * A string mixing ASCII letters and digits, any code point, and {@link HOSTILE_CHARACTERS}. `size: 'max'`
 * draws lengths up to `maxLength` (fast-check's default size keeps strings short).
 */
export function hostileString(constraints: { minLength?: number; maxLength?: number; size?: fc.SizeForArbitrary } = {}): fc.Arbitrary<string> {
  return fc.string({
    unit: fc.oneof(
      { arbitrary: asciiAlnum, weight: 4 },
      { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 2 },
      { arbitrary: fc.constantFrom(...HOSTILE_CHARACTERS), weight: 3 },
    ),
    ...constraints,
  });
}

/** A UUID, its hex in lower, upper or mixed case. */
export const anyCaseUuid: fc.Arbitrary<string> = fc
  .tuple(fc.uuid(), fc.constantFrom('lower', 'upper', 'mixed'))
  .chain(([uuid, style]) =>
    style === 'lower' ? fc.constant(uuid) : style === 'upper' ? fc.constant(uuid.toUpperCase()) : fc.mixedCase(fc.constant(uuid)),
  );

/** Any value but a string: what a JavaScript caller may pass where the API takes one. */
export const notAString: fc.Arbitrary<unknown> = fc.anything().filter((v) => typeof v !== 'string');
