import type { Tenant } from '../tenants/types.js';
import type { User } from '../users/types.js';

/** The roles a member can have, most powerful first. */
export const ROLES = ['admin', 'user', 'viewer'] as const;
/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** A user's membership of a tenant. */
export interface Membership {
  tenantId: string;
  userId: string;
  role: Role;
  joinedAt: Date;
}

/** One member of a tenant, as `memberships.listMembers` lists it. */
export interface TenantMember {
  user: User;
  role: Role;
  joinedAt: Date;
}

/** One tenant a user belongs to, as `memberships.listTenants` lists it. */
export interface UserTenant {
  tenant: Tenant;
  role: Role;
  joinedAt: Date;
}

/** `platform.memberships`. */
export interface MembershipsService {
  /** CONFLICT when already a member; NOT_FOUND for an unknown tenant or user; VALIDATION for a bad role. */
  add(tenantId: string, userId: string, role: Role): Promise<Membership>;
  /** Demoting the last admin is CONFLICT. */
  setRole(tenantId: string, userId: string, role: Role): Promise<Membership>;
  /** Removing the last admin is CONFLICT. */
  remove(tenantId: string, userId: string): Promise<void>;
  listMembers(tenantId: string): Promise<TenantMember[]>;
  listTenants(userId: string): Promise<UserTenant[]>;
}
