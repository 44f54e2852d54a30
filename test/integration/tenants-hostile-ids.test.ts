import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../src/index.js';
import { rejectionCode } from '../support/errors.js';
import { useTestPlatform } from '../support/env.js';

const env = useTestPlatform();
let platform: Platform;

beforeAll(async () => {
  platform = await env.initPlatform();
});

// Strings that name no tenant, and that PostgreSQL would refuse as a parameter (a NUL is not valid
// UTF-8 text there) or that no database name can be (past PostgreSQL's 63 bytes).
const HOSTILE = ['nul\u0000byte', '\u0000', `tenant_${'é'.repeat(40)}`, "x'; DROP TABLE tenants; --", '\u202Egnp.exe'];

describe('ids that name no tenant', () => {
  for (const id of HOSTILE) {
    it(`${JSON.stringify(id)}: NOT_FOUND everywhere, never a database error`, async () => {
      expect(await rejectionCode(platform.tenants.get(id))).toBe('NOT_FOUND');
      expect(await rejectionCode(platform.tenants.stats(id))).toBe('NOT_FOUND');
      expect(await rejectionCode(platform.tenants.drop(id))).toBe('NOT_FOUND');
      expect(await rejectionCode(platform.tenants.activate(id))).toBe('NOT_FOUND');
      expect(await rejectionCode(platform.withTenant(id, () => Promise.resolve()))).toBe('NOT_FOUND');
    });
  }

  it('still finds a tenant by its id and by its database name', async () => {
    const tenant = await platform.tenants.create({ name: 'Plain' });
    expect((await platform.tenants.get(tenant.id)).id).toBe(tenant.id);
    expect((await platform.tenants.get(tenant.databaseName)).id).toBe(tenant.id);
  });
});
