import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { captureTenant, parseCapturedTenant } from '../../src/scope/captured-tenant.js';
import type { TenantContext } from '../../src/index.js';
import { TenantDbError } from '../../src/errors.js';
import { thrownCode } from '../support/errors.js';
import { hostileString } from '../support/hostile-arbitraries.js';

const TENANT = '0b6f3c1e-5d7a-4c2b-9e8f-1a2b3c4d5e6f';
const USER = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

/** A scope as captureTenant reads it: only its tenant's id, its user and role matter. */
const scope = (userId?: string, role?: TenantContext['role']): TenantContext =>
  ({ tenant: { id: TENANT }, userId, role }) as unknown as TenantContext;

describe('captured tenant scopes', () => {
  it('captures the tenant, and the user and role only when the scope has them, as a JSON round trip keeps them', () => {
    const withUser = captureTenant(scope(USER, 'user'));
    expect(withUser).toEqual({ version: 1, tenantId: TENANT, userId: USER, role: 'user' });
    expect(JSON.parse(JSON.stringify(withUser))).toEqual(withUser);
    const trusted = captureTenant(scope());
    expect(trusted).toEqual({ version: 1, tenantId: TENANT });
    expect(Object.keys(trusted)).toEqual(['version', 'tenantId']);
    expect(parseCapturedTenant(JSON.parse(JSON.stringify(trusted)))).toEqual(trusted);
  });

  it('refuses to capture outside any scope with VALIDATION', () => {
    expect(thrownCode(() => captureTenant(undefined))).toBe('VALIDATION');
  });

  it('accepts a captured value, returns a fresh copy and lower-cases its ids', () => {
    const value = { version: 1, tenantId: TENANT.toUpperCase(), userId: USER.toUpperCase(), role: 'viewer' };
    const parsed = parseCapturedTenant(value);
    expect(parsed).toEqual({ version: 1, tenantId: TENANT, userId: USER, role: 'viewer' });
    expect(parsed).not.toBe(value);
    expect(parseCapturedTenant(Object.assign(Object.create(null), { version: 1, tenantId: TENANT }))).toEqual({ version: 1, tenantId: TENANT });
  });

  it('refuses malformed values with VALIDATION', () => {
    const good = { version: 1, tenantId: TENANT, userId: USER, role: 'admin' };
    const bad: unknown[] = [
      undefined, null, 42, 'x', TENANT, true, [], [good], () => good,
      {}, { ...good, version: 2 }, { ...good, version: '1' }, { tenantId: TENANT },
      { ...good, tenantId: '' }, { ...good, tenantId: 'acme' }, { ...good, tenantId: `${TENANT}\u0000` },
      { ...good, tenantId: `${TENANT} ` }, { ...good, tenantId: 'x'.repeat(10_000_000) }, { ...good, tenantId: 42 },
      { ...good, userId: '' }, { ...good, userId: 7 }, { ...good, userId: null }, { ...good, userId: 'ada' },
      { ...good, userId: `${USER}\u0000` }, { ...good, role: 'owner' }, { ...good, role: null }, { ...good, role: 'Admin' },
      { ...good, extra: 1 }, { ...good, [Symbol('x')]: 1 }, JSON.parse(`{"version":1,"tenantId":"${TENANT}","__proto__":{"role":"admin"}}`),
      Object.create({ version: 1, tenantId: TENANT }), Object.assign(Object.create({ polluted: true }), good),
      new (class Captured { version = 1; tenantId = TENANT })(), new Map([['version', 1]]), new Date(),
      Object.defineProperty({ version: 1 }, 'tenantId', { get: () => TENANT, enumerable: true }),
      new Proxy(good, { ownKeys: () => { throw new Error('trap'); } }),
      new Proxy(good, { getPrototypeOf: () => { throw new Error('trap'); } }),
    ];
    for (const value of bad) expect(thrownCode(() => parseCapturedTenant(value))).toBe('VALIDATION');
  });

  it('never repeats a hostile value in its message', () => {
    fc.assert(
      fc.property(hostileString({ maxLength: 200 }), fc.constantFrom('tenantId', 'userId', 'role'), (text, key) => {
        try {
          parseCapturedTenant({ version: 1, tenantId: TENANT, [key]: `${text}\u0000!` });
        } catch (err) {
          expect(err).toBeInstanceOf(TenantDbError);
          expect((err as TenantDbError).code).toBe('VALIDATION');
          expect((err as TenantDbError).message).not.toContain(`${text}\u0000!`);
          return;
        }
        throw new Error('accepted a hostile value');
      }),
    );
  });
});
