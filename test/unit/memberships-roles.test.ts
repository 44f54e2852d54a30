import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import { validateRole } from '../../src/memberships/memberships-service.js';
import { ROLES } from '../../src/memberships/types.js';

describe('membership roles', () => {
  it('are admin, user and viewer', () => {
    expect(ROLES).toEqual(['admin', 'user', 'viewer']);
    for (const role of ROLES) expect(validateRole(role)).toBe(role);
  });

  it('anything else is VALIDATION', () => {
    for (const bad of ['Admin', 'owner', '', ' admin', null, undefined, 1]) {
      let caught: unknown;
      try {
        validateRole(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, String(bad)).toBeInstanceOf(TenantDbError);
      expect((caught as TenantDbError).code).toBe('VALIDATION');
    }
  });
});
