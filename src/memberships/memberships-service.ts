import type pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import { isUuid } from '../util/uuid.js';
import { tenantColumns, toTenant, type TenantRow } from '../tenants/tenant-row.js';
import { toUser, USER_COLUMNS, type UserRow } from '../users/users-service.js';
import { PG, constraintOf, sqlState } from '../util/pg-errors.js';
import { ROLES, type Membership, type MembershipsService, type Role, type TenantMember, type UserTenant } from './types.js';

interface MembershipRow {
  tenant_id: string;
  user_id: string;
  role: Role;
  joined_at: Date;
}

const MEMBERSHIP_COLUMNS = 'tenant_id, user_id, role, joined_at';

function toMembership(row: MembershipRow): Membership {
  return { tenantId: row.tenant_id, userId: row.user_id, role: row.role, joinedAt: row.joined_at };
}

/** Checks a role: one of `admin`, `user`, `viewer`, else VALIDATION. */
export function validateRole(role: unknown): Role {
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw new TenantDbError('VALIDATION', `role must be one of ${ROLES.join(', ')}`);
  }
  return role as Role;
}

function noMembership(): never {
  throw new TenantDbError('NOT_FOUND', 'no such membership');
}

/** The membership insert's failures in the library's terms. */
function insertError(err: unknown): never {
  const state = sqlState(err);
  if (state === PG.UNIQUE_VIOLATION) throw new TenantDbError('CONFLICT', 'the user is already a member of the tenant', { cause: err });
  if (state === PG.FOREIGN_KEY_VIOLATION) {
    const what = constraintOf(err)?.includes('tenant_id') ? 'tenant' : 'user';
    throw new TenantDbError('NOT_FOUND', `no such ${what}`, { cause: err });
  }
  throw err;
}

/**
 * `platform.memberships`: which users belong to which tenant, with what role. A tenant never loses its
 * last admin: the check and the change happen in one transaction that locks the tenant's admin rows.
 * @internal
 */
export class MembershipsServiceImpl implements MembershipsService {
  readonly #ctx: PlatformContext;

  constructor(ctx: PlatformContext) {
    this.#ctx = ctx;
  }

  async add(tenantId: string, userId: string, role: Role): Promise<Membership> {
    this.#ctx.assertOpen();
    const checked = validateRole(role);
    if (!isUuid(tenantId)) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    if (!isUuid(userId)) throw new TenantDbError('NOT_FOUND', 'no such user');
    return this.#insert(this.#ctx.main, tenantId, userId, checked);
  }

  /**
   * Adds a membership on the caller's connection, inside whatever transaction it has open (tenant
   * provisioning makes the creator admin this way). Same checks and errors as {@link add}.
   * @internal
   */
  async addInTransaction(client: pg.ClientBase, tenantId: string, userId: string, role: Role): Promise<Membership> {
    const checked = validateRole(role);
    if (!isUuid(tenantId)) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    if (!isUuid(userId)) throw new TenantDbError('NOT_FOUND', 'no such user');
    return this.#insert(client, tenantId, userId, checked);
  }

  async #insert(db: pg.Pool | pg.ClientBase, tenantId: string, userId: string, role: Role): Promise<Membership> {
    const { rows } = await db
      .query<MembershipRow>(
        `INSERT INTO user_tenant_associations (user_id, tenant_id, role, joined_at) VALUES ($1, $2, $3, now())
         RETURNING ${MEMBERSHIP_COLUMNS}`,
        [userId, tenantId, role],
      )
      .catch(insertError);
    return toMembership(rows[0]!);
  }

  async setRole(tenantId: string, userId: string, role: Role): Promise<Membership> {
    this.#ctx.assertOpen();
    const checked = validateRole(role);
    return this.#changeGuarded(tenantId, userId, checked !== 'admin', async (client) => {
      const { rows } = await client.query<MembershipRow>(
        `UPDATE user_tenant_associations SET role = $3 WHERE tenant_id = $1 AND user_id = $2 RETURNING ${MEMBERSHIP_COLUMNS}`,
        [tenantId, userId, checked],
      );
      return toMembership(rows[0]!);
    });
  }

  async remove(tenantId: string, userId: string): Promise<void> {
    this.#ctx.assertOpen();
    await this.#changeGuarded(tenantId, userId, true, async (client) => {
      await client.query('DELETE FROM user_tenant_associations WHERE tenant_id = $1 AND user_id = $2', [tenantId, userId]);
    });
  }

  /**
   * Runs `change` on an existing membership in a transaction that first locks the tenant's admin rows
   * and the member's own row (in one order, so two such transactions never deadlock). When `dropsAdmin`,
   * an admin member must not be the last admin (CONFLICT). Two concurrent demotions of a tenant's last two admins: the second waits for the first's lock, then
   * re-reads the rows it locked and sees one admin left.
   */
  async #changeGuarded<T>(
    tenantId: string,
    userId: string,
    dropsAdmin: boolean,
    change: (client: pg.ClientBase) => Promise<T>,
  ): Promise<T> {
    if (!isUuid(tenantId) || !isUuid(userId)) noMembership();
    return this.#ctx.mainTransaction(async (client) => {
      const { rows } = await client.query<{ user_id: string; role: Role }>(
        `SELECT user_id, role FROM user_tenant_associations
         WHERE tenant_id = $1 AND (role = 'admin' OR user_id = $2)
         ORDER BY user_id
         FOR UPDATE`,
        [tenantId, userId],
      );
      // PostgreSQL prints a uuid in lower case, whatever case it was given in.
      const member = rows.find((r) => r.user_id === userId.toLowerCase());
      if (!member) noMembership();
      if (dropsAdmin && member.role === 'admin' && rows.filter((r) => r.role === 'admin').length === 1) {
        throw new TenantDbError('CONFLICT', 'a tenant must keep at least one admin');
      }
      return change(client);
    });
  }

  async listMembers(tenantId: string): Promise<TenantMember[]> {
    this.#ctx.assertOpen();
    if (!isUuid(tenantId)) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    const columns = USER_COLUMNS.split(', ')
      .map((c) => `u.${c}`)
      .join(', ');
    const { rows } = await this.#ctx.main.query<UserRow & { role: Role | null; joined_at: Date | null; tenant: string }>(
      // The tenant row joins in even with no members, so an empty list and an unknown tenant differ.
      `SELECT t.id AS tenant, a.role, a.joined_at, ${columns}
       FROM tenants t
       LEFT JOIN user_tenant_associations a ON a.tenant_id = t.id
       LEFT JOIN users u ON u.id = a.user_id
       WHERE t.id = $1
       ORDER BY a.joined_at, a.user_id`,
      [tenantId],
    );
    if (rows.length === 0) throw new TenantDbError('NOT_FOUND', 'no such tenant');
    return rows
      .filter((r) => r.role !== null)
      .map((r) => ({ user: toUser(r), role: r.role!, joinedAt: r.joined_at! }));
  }

  async listTenants(userId: string): Promise<UserTenant[]> {
    this.#ctx.assertOpen();
    if (!isUuid(userId)) throw new TenantDbError('NOT_FOUND', 'no such user');
    const { rows } = await this.#ctx.main.query<TenantRow & { role: Role | null; joined_at: Date | null; member: string }>(
      `SELECT u.id AS member, a.role, a.joined_at,
              ${tenantColumns('t')}
       FROM users u
       LEFT JOIN user_tenant_associations a ON a.user_id = u.id
       LEFT JOIN tenants t ON t.id = a.tenant_id
       WHERE u.id = $1
       ORDER BY a.joined_at, a.tenant_id`,
      [userId],
    );
    if (rows.length === 0) throw new TenantDbError('NOT_FOUND', 'no such user');
    return rows
      .filter((r) => r.role !== null)
      .map((r) => ({ tenant: toTenant(r), role: r.role!, joinedAt: r.joined_at! }));
  }

  /**
   * The role of a user in a tenant, or null when they are not a member (or either id is unknown).
   * For the tenant scope's membership check.
   * @internal
   */
  async roleOf(tenantId: string, userId: string): Promise<Role | null> {
    this.#ctx.assertOpen();
    if (!isUuid(tenantId) || !isUuid(userId)) return null;
    const { rows } = await this.#ctx.main.query<{ role: Role }>(
      'SELECT role FROM user_tenant_associations WHERE tenant_id = $1 AND user_id = $2',
      [tenantId, userId],
    );
    return rows[0]?.role ?? null;
  }
}
