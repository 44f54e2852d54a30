import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { TenantDbError, currentTenant, type Platform, type Tenant, type TenantContext, type User } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let platform: Platform;
let tenant: Tenant;
let owner: User;
let viewer: User;
let outsider: User;

const roleOf = (ctx: TenantContext): TenantContext['role'] => ctx.role;

async function count(): Promise<number> {
  return platform.withTenant(tenant, async (ctx) => Number((await ctx.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]!.n));
}

beforeAll(async () => {
  platform = await env.initPlatform();
  const user = (first: string): Promise<User> => createTestUser(platform, first);
  [owner, viewer, outsider] = await Promise.all([user('Owner'), user('Viewer'), user('Outsider')]);
  tenant = await platform.tenants.create({ name: 'Access', createdBy: owner.id });
  await platform.memberships.add(tenant.id, viewer.id, 'viewer');
  await platform.withTenant(tenant, (ctx) => ctx.query('CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)'));
});

describe('withTenant with a userId', () => {
  it('an active member gets their role; trusted server code gets none', async () => {
    expect(await platform.withTenant(tenant, roleOf, { userId: owner.id })).toBe('admin');
    expect(await platform.withTenant(tenant.id, roleOf, { userId: viewer.id })).toBe('viewer');
    expect(await platform.withTenant(tenant.databaseName, (ctx) => [ctx.role, ctx.userId])).toEqual([undefined, undefined]);
    expect(await platform.withTenant(tenant, (ctx) => ctx.userId, { userId: viewer.id })).toBe(viewer.id);
  });

  it.each([
    ['a non-member', () => outsider.id],
    ['an unknown user', () => randomUUID()],
    ['not a user id', () => 'admin'],
  ])('%s → FORBIDDEN, fn never runs', async (_label, userId) => {
    let ran = false;
    const entered = platform.withTenant(
      tenant,
      () => {
        ran = true;
      },
      { userId: userId() },
    );
    expect(await rejectionCode(entered)).toBe('FORBIDDEN');
    expect(ran).toBe(false);
  });

  it('an inactive member → FORBIDDEN until reactivated', async () => {
    await platform.users.deactivate(viewer.id);
    try {
      expect(await rejectionCode(platform.withTenant(tenant, roleOf, { userId: viewer.id }))).toBe('FORBIDDEN');
    } finally {
      await platform.users.activate(viewer.id);
    }
    expect(await platform.withTenant(tenant, roleOf, { userId: viewer.id })).toBe('viewer');
  });

  it('role changes and removals apply to the very next scope', async () => {
    await platform.memberships.setRole(tenant.id, viewer.id, 'user');
    expect(await platform.withTenant(tenant, roleOf, { userId: viewer.id })).toBe('user');
    await platform.memberships.remove(tenant.id, viewer.id);
    expect(await rejectionCode(platform.withTenant(tenant, roleOf, { userId: viewer.id }))).toBe('FORBIDDEN');
    await platform.memberships.add(tenant.id, viewer.id, 'viewer');
    expect(await platform.withTenant(tenant, roleOf, { userId: viewer.id })).toBe('viewer');
  });

  it('bad arguments → VALIDATION', async () => {
    expect(await rejectionCode(platform.withTenant('', roleOf))).toBe('VALIDATION');
    expect(await rejectionCode(platform.withTenant(tenant, 'not a function' as never))).toBe('VALIDATION');
  });
});

describe('when the main database cannot be reached', () => {
  it('withTenant fails with a retryable error (UNAVAILABLE, or DATABASE for a connection cut mid-query), and works again once it is back', async () => {
    const uncached = env.platform({ tenantCacheMs: 0 });
    expect(await uncached.withTenant(tenant, roleOf, { userId: owner.id })).toBe('admin');
    await adminQuery(`ALTER DATABASE "${env.mainDb}" WITH ALLOW_CONNECTIONS false`);
    try {
      await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [env.mainDb]);
      // An idle pooled connection that was just terminated may still take the query (DATABASE, the connection
      // lost); a new connection is refused (UNAVAILABLE). Either way the caller is told to retry.
      const err = await uncached.withTenant(tenant.id, roleOf).catch((e: unknown) => e);
      expect(err).toMatchObject({ retryable: true });
      expect(['UNAVAILABLE', 'DATABASE']).toContain((err as TenantDbError).code);
      const again = await uncached.withTenant(tenant.id, roleOf).catch((e: unknown) => e);
      expect(again).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    } finally {
      await adminQuery(`ALTER DATABASE "${env.mainDb}" WITH ALLOW_CONNECTIONS true`);
    }
    expect(await uncached.withTenant(tenant, roleOf, { userId: owner.id })).toBe('admin');
  });
});

describe('errors of fn', () => {
  it('propagate unchanged, whatever they are', async () => {
    const mine = new Error('host failure');
    await expect(platform.withTenant(tenant, () => Promise.reject(mine))).rejects.toBe(mine);
    await expect(
      platform.withTenant(tenant, () => {
        throw mine;
      }),
    ).rejects.toBe(mine);
    const sqlError = await platform.withTenant(tenant, (ctx) => ctx.query('SELECT * FROM no_such_table')).catch((e: unknown) => e);
    expect(sqlError).not.toBeInstanceOf(TenantDbError);
    expect((sqlError as { code?: string }).code).toBe('42P01');
  });
});

describe('ctx.transaction', () => {
  it('commits on return and returns fn\'s value; its writes are invisible to other connections until then', async () => {
    const before = await count();
    const result = await platform.withTenant(tenant, (ctx) =>
      ctx.transaction(async (tx) => {
        await tx.query('INSERT INTO items (id, label) VALUES (1, $1)', ['one']);
        await tx.query('INSERT INTO items (id, label) VALUES (2, $1)', ['two']);
        const inside = (await tx.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]!.n;
        const outside = (await ctx.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]!.n;
        expect(currentTenant()).toBe(ctx);
        return { inside: Number(inside), outside: Number(outside) };
      }),
    );
    expect(result).toEqual({ inside: before + 2, outside: before });
    expect(await count()).toBe(before + 2);
  });

  it('rolls back on throw, and the thrown error is the one fn threw', async () => {
    const before = await count();
    const mine = new Error('changed my mind');
    const thrown = await platform
      .withTenant(tenant, (ctx) =>
        ctx.transaction(async (tx) => {
          await tx.query('INSERT INTO items (id, label) VALUES (10, $1)', ['ten']);
          throw mine;
        }),
      )
      .catch((e: unknown) => e);
    expect(thrown).toBe(mine);
    expect(await count()).toBe(before);
  });

  it('rolls back on a failing statement, whose pg error propagates unchanged', async () => {
    const before = await count();
    const thrown = await platform
      .withTenant(tenant, (ctx) =>
        ctx.transaction(async (tx) => {
          await tx.query('INSERT INTO items (id, label) VALUES (20, $1)', ['twenty']);
          await tx.query('INSERT INTO items (id, label) VALUES (20, $1)', ['twenty again']);
        }),
      )
      .catch((e: unknown) => e);
    expect((thrown as { code?: string }).code).toBe('23505');
    expect(await count()).toBe(before);
  });

  it('keeps fn\'s error when the connection died under it (the rollback cannot run), and the next scope works', async () => {
    const mine = new Error('after the connection died');
    const thrown = await platform
      .withTenant(tenant, (ctx) =>
        ctx.transaction(async (tx) => {
          await tx.query('INSERT INTO items (id, label) VALUES (30, $1)', ['thirty']);
          const pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
          throw mine;
        }),
      )
      .catch((e: unknown) => e);
    expect(thrown).toBe(mine);
    const left = await platform.withTenant(tenant, (ctx) => ctx.query('SELECT 1 FROM items WHERE id = 30'));
    expect(left.rowCount).toBe(0);
  });

  it('the connection goes back clean: a later transaction on it starts fresh', async () => {
    // Many short transactions, some failing, on a pool of a few connections: none inherits an aborted state.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        platform
          .withTenant(tenant, (ctx) =>
            ctx.transaction(async (tx) => {
              await tx.query('INSERT INTO items (id, label) VALUES ($1, $2)', [100 + i, `item ${i}`]);
              if (i % 3 === 0) await tx.query('SELECT 1/0');
              return 'committed';
            }),
          )
          .catch((e: { code?: string }) => e.code),
      ),
    );
    expect(outcomes.filter((o) => o === 'committed')).toHaveLength(13);
    expect(outcomes.filter((o) => o === '22012')).toHaveLength(7);
    const ids = await platform.withTenant(tenant, async (ctx) => (await ctx.query<{ id: number }>('SELECT id FROM items WHERE id >= 100 ORDER BY id')).rows.map((r) => r.id));
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i).filter((id) => (id - 100) % 3 !== 0));
  });
});
