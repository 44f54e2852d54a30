import { describe, expect, it } from 'vitest';
import { tenantDatabaseName, tenantSlug, validateTenantName } from '../../src/tenants/database-name.js';

const id = 'A1B2C3D4-0000-4000-8000-000000000000';

describe('tenant database names', () => {
  it('is tenant_<slug>_<first 8 hex of the id>', () => {
    expect(tenantDatabaseName('Acme Corp', id)).toBe('tenant_acme_corp_a1b2c3d4');
  });

  it('folds every run of other characters into one _ and trims the ends', () => {
    expect(tenantSlug('  Ünïcode & Co. -- "Ltd" ')).toBe('n_code_co_ltd');
    expect(tenantSlug('Robert"); DROP DATABASE x;--')).toBe('robert_drop_database_x');
    expect(tenantSlug("O'Brien's")).toBe('o_brien_s');
  });

  it('has no slug part for a name with no ASCII letter or digit', () => {
    expect(tenantDatabaseName('株式会社', id)).toBe('tenant_a1b2c3d4');
    expect(tenantDatabaseName('"\'"', id)).toBe('tenant_a1b2c3d4');
  });

  it('fits 63 bytes whatever the name, never ending the slug with _', () => {
    for (const name of ['x'.repeat(255), 'ab '.repeat(85), '日本'.repeat(100) + 'z'.repeat(100), 'a_'.repeat(40)]) {
      const db = tenantDatabaseName(name, id);
      expect(Buffer.byteLength(db)).toBeLessThanOrEqual(63);
      expect(db).toMatch(/^tenant_([a-z0-9]+(_[a-z0-9]+)*_)?a1b2c3d4$/);
    }
    expect(tenantDatabaseName('x'.repeat(255), id)).toHaveLength(63);
  });

  it('rejects an id that is not a UUID', () => {
    expect(() => tenantDatabaseName('a', 'nope')).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});

describe('tenant names', () => {
  it('accepts 1 to 255 characters of any script, quotes included, trimmed', () => {
    expect(validateTenantName('  Ça "marche" \'ok\'  ')).toBe('Ça "marche" \'ok\'');
    expect(validateTenantName('😀'.repeat(255))).toHaveLength(510);
  });

  it.each([[''], ['   '], ['x'.repeat(256)], ['tab\there'], ['nul\u0000'], [42], [null]])('rejects %j', (name) => {
    expect(() => validateTenantName(name)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});
