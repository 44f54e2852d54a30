import { beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, type CapturedTenant, type Platform, type Tenant, type User } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { rejectionCode, thrownCode } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let platform: Platform;
let tenant: Tenant;
let owner: User;
let member: User;

/** The scope of `userId` in `t`, captured and sent through JSON as a job queue would. */
async function capturedAs(t: Tenant, userId?: string): Promise<CapturedTenant> {
  const captured = await platform.withTenant(t, () => platform.captureTenant(), userId === undefined ? {} : { userId });
  return JSON.parse(JSON.stringify(captured)) as CapturedTenant;
}

/** What a scope entered from a captured value sees. */
const inside = (captured: CapturedTenant): Promise<unknown> =>
  platform.runInTenant(captured, async (ctx) => {
    const { rows } = await ctx.query<{ db: string }>('SELECT current_database() AS db');
    return { same: currentTenant() === ctx, tenantId: currentTenant()?.tenant.id, userId: ctx.userId, role: ctx.role, db: rows[0]!.db };
  });

beforeAll(async () => {
  platform = await env.initPlatform();
  [owner, member] = await Promise.all([createTestUser(platform, 'Owner'), createTestUser(platform, 'Member')]);
  tenant = await platform.tenants.create({ name: 'Captured', createdBy: owner.id });
  await platform.memberships.add(tenant.id, member.id, 'user');
});

describe('captureTenant and runInTenant', () => {
  it('round-trips a scope through JSON: same tenant, database and user, currentTenant() inside', async () => {
    const captured = await capturedAs(tenant, member.id);
    expect(captured).toEqual({ version: 1, tenantId: tenant.id, userId: member.id, role: 'user' });
    expect(await inside(captured)).toEqual({ same: true, tenantId: tenant.id, userId: member.id, role: 'user', db: tenant.databaseName });
    // A trusted scope carries no user, and re-enters as trusted server code.
    const trusted = await capturedAs(tenant);
    expect(trusted).toEqual({ version: 1, tenantId: tenant.id });
    expect(await inside(trusted)).toMatchObject({ tenantId: tenant.id, userId: undefined, role: undefined });
    expect(currentTenant()).toBeUndefined();
  });

  it('gives the role the user has now, not the captured one', async () => {
    const captured = await capturedAs(tenant, member.id);
    await platform.memberships.setRole(tenant.id, member.id, 'viewer');
    try {
      expect(captured.role).toBe('user');
      expect(await inside(captured)).toMatchObject({ role: 'viewer' });
    } finally {
      await platform.memberships.setRole(tenant.id, member.id, 'user');
    }
  });

  it('FORBIDDEN once the user left the tenant or was deactivated; fn never runs', async () => {
    const captured = await capturedAs(tenant, member.id);
    await platform.memberships.remove(tenant.id, member.id);
    let ran = false;
    try {
      expect(await rejectionCode(platform.runInTenant(captured, () => (ran = true)))).toBe('FORBIDDEN');
    } finally {
      await platform.memberships.add(tenant.id, member.id, 'user');
    }
    await platform.users.deactivate(member.id);
    try {
      expect(await rejectionCode(platform.runInTenant(captured, () => (ran = true)))).toBe('FORBIDDEN');
    } finally {
      await platform.users.activate(member.id);
    }
    expect(ran).toBe(false);
    expect(await inside(captured)).toMatchObject({ userId: member.id });
  });

  it('TENANT_INACTIVE after deactivation, NOT_FOUND after a drop, for a user scope and a trusted one', async () => {
    const other = await platform.tenants.create({ name: 'Short-lived', createdBy: owner.id });
    const [asOwner, trusted] = [await capturedAs(other, owner.id), await capturedAs(other)];
    await platform.tenants.deactivate(other.id);
    expect(await rejectionCode(inside(asOwner))).toBe('TENANT_INACTIVE');
    expect(await rejectionCode(inside(trusted))).toBe('TENANT_INACTIVE');
    await platform.tenants.activate(other.id);
    expect(await inside(trusted)).toMatchObject({ tenantId: other.id });
    await platform.tenants.drop(other.id);
    expect(await rejectionCode(inside(asOwner))).toBe('NOT_FOUND');
    expect(await rejectionCode(inside(trusted))).toBe('NOT_FOUND');
  });

  it('VALIDATION outside any scope, and for values that are not a captured scope', async () => {
    expect(thrownCode(() => platform.captureTenant())).toBe('VALIDATION');
    const good = await capturedAs(tenant, member.id);
    for (const bad of [
      undefined,
      null,
      'x',
      { ...good, version: 2 },
      { ...good, tenantId: '' },
      { ...good, tenantId: tenant.databaseName },
      { ...good, tenantId: `${tenant.id}\u0000` },
      { ...good, userId: 42 },
      { ...good, userId: 'x'.repeat(1_000_000) },
      { ...good, admin: true },
      Object.assign(Object.create({ isAdmin: true }), good),
    ]) {
      expect(await rejectionCode(platform.runInTenant(bad as CapturedTenant, () => 1))).toBe('VALIDATION');
    }
    expect(await rejectionCode(platform.runInTenant(good, 'not a function' as never))).toBe('VALIDATION');
  });
});
