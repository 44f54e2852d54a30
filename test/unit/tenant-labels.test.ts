import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import { MAX_TENANT_LABELS, validateTenantLabels } from '../../src/tenants/tenant-labels.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof TenantDbError ? err.code : 'not a TenantDbError';
  }
  return undefined;
}

describe('tenant labels', () => {
  it('accepts string keys and values within the limits, and returns a copy', () => {
    const labels = { region: 'eu', 'plan/tier': 'gold', 'a.b_c-d': '', '9': 'x'.repeat(255), émoji: undefined };
    delete labels.émoji;
    const out = validateTenantLabels(labels);
    expect(out).toEqual(labels);
    expect(out).not.toBe(labels);
    expect(validateTenantLabels({})).toEqual({});
    expect(validateTenantLabels(Object.assign(Object.create(null), { k: 'v' }))).toEqual({ k: 'v' });
    expect(validateTenantLabels({ k: '😀'.repeat(255) })).toEqual({ k: '😀'.repeat(255) });
  });

  it('refuses what is not a plain object: VALIDATION', () => {
    for (const bad of [null, undefined, 'a=b', 3, [], [['a', 'b']], new Map([['a', 'b']]), new Date(), { [Symbol('s')]: 'x' }]) {
      expect(codeOf(() => validateTenantLabels(bad)), String(bad)).toBe('VALIDATION');
    }
  });

  it('refuses bad keys, bad values and too many labels: VALIDATION', () => {
    const bad: unknown[] = [
      { '': 'v' },
      { _a: 'v' },
      { '-a': 'v' },
      { '.a': 'v' },
      { '/a': 'v' },
      { 'a b': 'v' },
      { 'a=b': 'v' },
      { é: 'v' },
      { ['a'.repeat(64)]: 'v' },
      { __proto__x: 'v' },
      JSON.parse('{"__proto__": "v"}'),
      { k: 1 },
      { k: null },
      { k: ['v'] },
      { k: 'x'.repeat(256) },
      { k: 'a\u0000b' },
      { k: 'a\nb' },
      { k: 'a\u009fb' },
      { k: '\ud800' },
      Object.fromEntries(Array.from({ length: MAX_TENANT_LABELS + 1 }, (_, i) => [`k${i}`, 'v'])),
    ];
    for (const labels of bad) expect(codeOf(() => validateTenantLabels(labels)), JSON.stringify(labels)).toBe('VALIDATION');
    expect(validateTenantLabels({ ['a'.repeat(63)]: 'v' })).toEqual({ ['a'.repeat(63)]: 'v' });
    const max = Object.fromEntries(Array.from({ length: MAX_TENANT_LABELS }, (_, i) => [`k${i}`, 'v']));
    expect(validateTenantLabels(max)).toEqual(max);
  });

  it('never repeats a huge value in its message', () => {
    const huge = 'secret'.repeat(10_000);
    for (const labels of [{ k: huge }, { [huge]: 'v' }, { k: `${huge}\u0000` }]) {
      try {
        validateTenantLabels(labels);
        expect.unreachable();
      } catch (err) {
        expect((err as Error).message.length).toBeLessThan(200);
        expect((err as Error).message).not.toContain('secretsecret');
      }
    }
  });

  it('accepts exactly the documented shape (property)', () => {
    const validKey = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 70 }), fc.string({ unit: 'binary', maxLength: 300 }), { maxKeys: 70 }), (labels) => {
        const entries = Object.entries(labels);
        const ok =
          entries.length <= MAX_TENANT_LABELS &&
          entries.every(
            ([k, v]) =>
              validKey.test(k) &&
              [...v].length <= 255 &&
              [...v].every((c) => c.codePointAt(0)! > 0x9f || (c.codePointAt(0)! > 0x1f && c.codePointAt(0)! < 0x7f)) &&
              !/\p{Cs}/u.test(v),
          );
        if (ok) expect(validateTenantLabels(labels)).toEqual(labels);
        else expect(codeOf(() => validateTenantLabels(labels))).toBe('VALIDATION');
      }),
      { numRuns: 1000 },
    );
  });
});
