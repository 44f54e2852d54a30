import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import { tenantDatabaseName, tenantSlug, validateTenantName } from '../../src/tenants/database-name.js';
import { quoteDatabaseName } from '../../src/util/sql.js';
import { anyCaseUuid, hostileString, notAString } from '../support/hostile-arbitraries.js';

const RUNS = { numRuns: 1000 };
// The documented shape: `tenant_<slug>_<8 hex>`, or `tenant_<8 hex>` when the name has no ASCII letter or digit.
const SHAPE = /^tenant_(?:[a-z0-9]+(?:_[a-z0-9]+)*_)?[0-9a-f]{8}$/;
const MAX_SLUG = 63 - 'tenant_'.length - '_'.length - 8;

/** The slug as README describes it, built another way: ASCII alnum runs, lower-cased, joined by `_`, cut to 47, no `_` at the end. */
function specSlug(name: string): string {
  const runs = name.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  return runs.join('_').slice(0, MAX_SLUG).replace(/_+$/, '');
}

// Short names, and names up to 300 characters (past the 47-character slug and the 63-byte limit).
const names = fc.oneof(
  hostileString({ maxLength: 40 }),
  hostileString({ maxLength: 300, size: 'max' }),
  fc.string({ unit: 'binary', maxLength: 300, size: 'max' }),
  fc.string({ maxLength: 300, size: 'max' }),
);

describe('tenant name → database name (properties)', () => {
  it('is always tenant_<slug>_<first 8 hex of the id, lower case>, at most 63 bytes, and safe to quote', () => {
    fc.assert(
      fc.property(names, anyCaseUuid, (name, id) => {
        const db = tenantDatabaseName(name, id);
        expect(db).toMatch(SHAPE);
        expect(Buffer.byteLength(db)).toBeLessThanOrEqual(63);
        expect(db.endsWith(`_${id.slice(0, 8).toLowerCase()}`)).toBe(true);
        // The only SQL the name ever reaches: quoteDatabaseName refuses anything unsafe.
        expect(quoteDatabaseName(db)).toBe(`"${db}"`);
      }),
      RUNS,
    );
  });

  it('has as slug the ASCII letters and digits of the name, lower-cased, every other run one _, cut to 47 with no _ at either end', () => {
    fc.assert(
      fc.property(names, fc.uuid(), (name, id) => {
        const slug = tenantSlug(name);
        expect(slug).toBe(specSlug(name));
        expect(slug.length).toBeLessThanOrEqual(MAX_SLUG);
        expect(tenantSlug(slug)).toBe(slug);
        const hex = id.slice(0, 8);
        expect(tenantDatabaseName(name, id)).toBe(slug ? `tenant_${slug}_${hex}` : `tenant_${hex}`);
      }),
      RUNS,
    );
  });

  it('gives distinct names to distinct ids, also for names whose slugs share their first 47 characters (54 bytes of the name)', () => {
    const shared = fc.stringMatching(/^[a-z][a-z0-9]{46}$/);
    fc.assert(
      fc.property(shared, hostileString({ maxLength: 40 }), hostileString({ maxLength: 40 }), fc.uuid(), fc.uuid(), (prefix, a, b, idA, idB) => {
        fc.pre(idA.slice(0, 8) !== idB.slice(0, 8));
        const dbA = tenantDatabaseName(prefix + a, idA);
        const dbB = tenantDatabaseName(prefix + b, idB);
        expect(dbA.slice(0, 54)).toBe(`tenant_${prefix}`);
        expect(dbB.slice(0, 54)).toBe(`tenant_${prefix}`);
        expect(dbA).not.toBe(dbB);
      }),
      RUNS,
    );
  });

  it('depends on the name only through its slug, and on the id only through its first 8 hex (whatever their case)', () => {
    fc.assert(
      fc.property(names, names, anyCaseUuid, (a, b, id) => {
        const same = tenantDatabaseName(a, id) === tenantDatabaseName(b, id.toLowerCase());
        expect(same).toBe(tenantSlug(a) === tenantSlug(b));
      }),
      RUNS,
    );
  });

  it('refuses an id that is not a UUID with VALIDATION', () => {
    fc.assert(
      fc.property(
        fc.oneof(hostileString({ maxLength: 60 }), fc.uuid().map((u) => `${u}\u0000`), fc.uuid().map((u) => u.replace(/-/g, ''))),
        (id) => {
          fc.pre(!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id));
          expect(() => tenantDatabaseName('Acme', id)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
        },
      ),
      RUNS,
    );
  });
});

describe('tenant name validation (properties)', () => {
  const ok = (name: string): boolean => {
    const trimmed = name.trim();
    const length = [...trimmed].length;
    // eslint-disable-next-line no-control-regex -- control characters are what it looks for
    return length >= 1 && length <= 255 && !/[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u.test(trimmed);
  };

  it('accepts exactly the names of 1 to 255 characters once trimmed with no control character or lone surrogate, and returns them trimmed', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString({ maxLength: 40 }), hostileString({ maxLength: 300, size: 'max' }), fc.string({ unit: 'binary', maxLength: 300, size: 'max' })), (name) => {
        let result: unknown;
        try {
          result = validateTenantName(name);
        } catch (err) {
          expect(err).toBeInstanceOf(TenantDbError);
          expect((err as TenantDbError).code).toBe('VALIDATION');
          expect(ok(name)).toBe(false);
          return;
        }
        expect(ok(name)).toBe(true);
        expect(result).toBe(name.trim());
        // What PostgreSQL stores is what was given: no lone surrogate for the driver to turn into U+FFFD.
        expect(Buffer.from(result as string, 'utf8').toString('utf8')).toBe(result);
      }),
      RUNS,
    );
  });

  it('refuses whatever is not a string with VALIDATION', () => {
    fc.assert(
      fc.property(
        notAString,
        (value) => {
          expect(() => validateTenantName(value)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
        },
      ),
      RUNS,
    );
  });
});
