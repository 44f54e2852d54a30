import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Role, TenantDbError, User } from '../../src/index.js';
import type { MembershipsServiceImpl } from '../../src/memberships/memberships-service.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
let platform: Platform;
let memberships: MembershipsServiceImpl;
let ada: User;
let bob: User;
let cy: User;

/** A ready tenant row, written directly (provisioning databases is not what is tested here). */
async function tenant(name: string): Promise<string> {
  const id = randomUUID();
  await adminQuery(
    `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at)
     VALUES ($1, $2, $3, 'default', 'ready', true, now(), now())`,
    [id, name, `tenant_${name.toLowerCase()}_${id.slice(0, 8)}`],
    env.mainDb,
  );
  return id;
}

async function admins(tenantId: string): Promise<string[]> {
  return (await platform.memberships.listMembers(tenantId)).filter((m) => m.role === 'admin').map((m) => m.user.id);
}

beforeAll(async () => {
  platform = await env.initPlatform();
  memberships = platform.memberships as MembershipsServiceImpl;
  const user = (first: string) =>
    platform.users.create({ firstName: first, lastName: 'Member', email: `${first}@example.io`, password: 'member password' });
  [ada, bob, cy] = await Promise.all([user('ada'), user('bob'), user('cy')]);
});

describe('platform.memberships', () => {
  it('add() makes a user a member with a role', async () => {
    const t = await tenant('Acme');
    const m = await platform.memberships.add(t, ada.id, 'admin');
    expect(m).toEqual({ tenantId: t, userId: ada.id, role: 'admin', joinedAt: expect.any(Date) });
    await platform.memberships.add(t, bob.id, 'viewer');
    const members = await platform.memberships.listMembers(t);
    expect(members.map((x) => [x.user.id, x.role])).toEqual([
      [ada.id, 'admin'],
      [bob.id, 'viewer'],
    ]);
    expect(members[0]!.user).toEqual(await platform.users.get(ada.id));
    expect(members[0]!.joinedAt).toEqual(m.joinedAt);
    expect(await memberships.roleOf(t, bob.id)).toBe('viewer');
    expect(await memberships.roleOf(t, cy.id)).toBeNull();
    expect(await memberships.roleOf('nope', cy.id)).toBeNull();
  });

  it('add(): CONFLICT when already a member, VALIDATION for a bad role, NOT_FOUND for unknown ids', async () => {
    const t = await tenant('Dup');
    await platform.memberships.add(t, ada.id, 'admin');
    expect(await rejectionCode(platform.memberships.add(t, ada.id, 'user'))).toBe('CONFLICT');
    expect(await rejectionCode(platform.memberships.add(t, bob.id, 'owner' as Role))).toBe('VALIDATION');
    expect(await rejectionCode(platform.memberships.add(randomUUID(), bob.id, 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.add(t, randomUUID(), 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.add('nope', bob.id, 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.add(t, 'nope', 'user'))).toBe('NOT_FOUND');
    expect((await platform.memberships.listMembers(t)).map((m) => m.user.id)).toEqual([ada.id]);
  });

  it('listTenants() gives a user’s tenants with their role', async () => {
    const t1 = await tenant('First');
    const t2 = await tenant('Second');
    await platform.memberships.add(t1, cy.id, 'user');
    await platform.memberships.add(t2, cy.id, 'viewer');
    const list = await platform.memberships.listTenants(cy.id);
    expect(list.map((x) => [x.tenant.id, x.role])).toEqual([
      [t1, 'user'],
      [t2, 'viewer'],
    ]);
    expect(list[0]!.tenant).toEqual({
      id: t1,
      name: 'First',
      databaseName: `tenant_first_${t1.slice(0, 8)}`,
      server: 'default',
      isActive: true,
      status: 'ready',
      createdAt: expect.any(Date),
      updatedAt: expect.any(Date),
      createdBy: null,
      labels: {},
    });
    expect(list[0]!.joinedAt).toBeInstanceOf(Date);
  });

  it('lists are empty for a tenant or user with none, NOT_FOUND for unknown ones', async () => {
    const empty = await tenant('Empty');
    expect(await platform.memberships.listMembers(empty)).toEqual([]);
    const loner = await platform.users.create({ firstName: 'Lone', lastName: 'Wolf', email: 'lone@example.io', password: 'lone password' });
    expect(await platform.memberships.listTenants(loner.id)).toEqual([]);
    expect(await rejectionCode(platform.memberships.listMembers(randomUUID()))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.listMembers('nope'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.listTenants(randomUUID()))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.listTenants('nope'))).toBe('NOT_FOUND');
  });

  it('setRole() changes a role; NOT_FOUND for no membership, VALIDATION for a bad role', async () => {
    const t = await tenant('Roles');
    await platform.memberships.add(t, ada.id, 'admin');
    await platform.memberships.add(t, bob.id, 'user');
    expect(await platform.memberships.setRole(t, bob.id, 'viewer')).toMatchObject({ tenantId: t, userId: bob.id, role: 'viewer' });
    expect(await platform.memberships.setRole(t, bob.id, 'admin')).toMatchObject({ role: 'admin' });
    expect(await platform.memberships.setRole(t, ada.id, 'user')).toMatchObject({ role: 'user' });
    expect(await rejectionCode(platform.memberships.setRole(t, cy.id, 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.setRole(randomUUID(), bob.id, 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.setRole('nope', bob.id, 'user'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.setRole(t, bob.id, 'superuser' as Role))).toBe('VALIDATION');
    expect(await memberships.roleOf(t, bob.id)).toBe('admin');
  });

  it('remove() ends a membership; NOT_FOUND when there is none', async () => {
    const t = await tenant('Remove');
    await platform.memberships.add(t, ada.id, 'admin');
    await platform.memberships.add(t, bob.id, 'user');
    await platform.memberships.remove(t, bob.id);
    expect(await memberships.roleOf(t, bob.id)).toBeNull();
    expect(await rejectionCode(platform.memberships.remove(t, bob.id))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.remove(randomUUID(), bob.id))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.memberships.remove(t, 'nope'))).toBe('NOT_FOUND');
  });

  it('removing or demoting the last admin is CONFLICT', async () => {
    const t = await tenant('LastAdmin');
    await platform.memberships.add(t, ada.id, 'admin');
    await platform.memberships.add(t, bob.id, 'user');
    expect(await rejectionCode(platform.memberships.setRole(t, ada.id, 'user'))).toBe('CONFLICT');
    expect(await rejectionCode(platform.memberships.setRole(t, ada.id, 'viewer'))).toBe('CONFLICT');
    expect(await rejectionCode(platform.memberships.remove(t, ada.id))).toBe('CONFLICT');
    expect(await platform.memberships.setRole(t, ada.id, 'admin')).toMatchObject({ role: 'admin' }); // admin → admin is fine
    await platform.memberships.setRole(t, bob.id, 'admin');
    await platform.memberships.remove(t, ada.id);
    expect(await rejectionCode(platform.memberships.setRole(t, bob.id, 'viewer'))).toBe('CONFLICT');
    expect(await admins(t)).toEqual([bob.id]);
  });

  it('keeps one admin when two admins are demoted or removed at the same moment', async () => {
    for (let round = 0; round < 6; round++) {
      const t = await tenant(`Race${round}`);
      await platform.memberships.add(t, ada.id, 'admin');
      await platform.memberships.add(t, bob.id, 'admin');
      const results = await Promise.allSettled([
        platform.memberships.setRole(t, ada.id, 'user'),
        round % 2 === 0 ? platform.memberships.setRole(t, bob.id, 'viewer') : platform.memberships.remove(t, bob.id),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      expect((failed.reason as TenantDbError).code).toBe('CONFLICT');
      expect(await admins(t)).toHaveLength(1);
    }
  });

  it('addInTransaction() joins the caller’s transaction', async () => {
    const t = await tenant('InTx');
    const client = new pg.Client({ connectionString: env.mainUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      await memberships.addInTransaction(client, t, ada.id, 'admin');
      await client.query('ROLLBACK');
      expect(await memberships.roleOf(t, ada.id)).toBeNull();

      await client.query('BEGIN');
      expect(await memberships.addInTransaction(client, t, ada.id, 'admin')).toMatchObject({ role: 'admin' });
      expect(await memberships.roleOf(t, ada.id)).toBeNull(); // not committed yet
      await client.query('COMMIT');
      expect(await memberships.roleOf(t, ada.id)).toBe('admin');

      expect(await rejectionCode(memberships.addInTransaction(client, t, ada.id, 'user'))).toBe('CONFLICT');
      expect(await rejectionCode(memberships.addInTransaction(client, t, bob.id, 'boss' as Role))).toBe('VALIDATION');
    } finally {
      await client.end();
    }
  });

  it('a deleted user’s memberships go with it', async () => {
    const t = await tenant('Cascade');
    const temp = await platform.users.create({ firstName: 'Temp', lastName: 'User', email: 'temp@example.io', password: 'temp password' });
    await platform.memberships.add(t, ada.id, 'admin');
    await platform.memberships.add(t, temp.id, 'user');
    await adminQuery('DELETE FROM users WHERE id = $1', [temp.id], env.mainDb);
    expect((await platform.memberships.listMembers(t)).map((m) => m.user.id)).toEqual([ada.id]);
  });

  it('every call rejects with CLOSED once the platform is closed', async () => {
    const closed = env.platform();
    await closed.close();
    const t = randomUUID();
    expect(await rejectionCode(closed.memberships.add(t, ada.id, 'user'))).toBe('CLOSED');
    expect(await rejectionCode(closed.memberships.setRole(t, ada.id, 'user'))).toBe('CLOSED');
    expect(await rejectionCode(closed.memberships.remove(t, ada.id))).toBe('CLOSED');
    expect(await rejectionCode(closed.memberships.listMembers(t))).toBe('CLOSED');
    expect(await rejectionCode(closed.memberships.listTenants(ada.id))).toBe('CLOSED');
  });
});
