import type { Tenant, TenantLabels, TenantStatus } from './types.js';

/** A `tenants` row as pg returns it. @internal */
export interface TenantRow {
  id: string;
  name: string;
  database_name: string;
  server: string;
  status: TenantStatus;
  is_active: boolean | null;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
  labels: TenantLabels;
}

/** The columns of {@link TenantRow}, prefixed with `alias.` when given. @internal */
export function tenantColumns(alias?: string): string {
  const p = alias ? `${alias}.` : '';
  return ['id', 'name', 'database_name', 'server', 'status', 'is_active', 'created_at', 'updated_at', 'created_by', 'labels']
    .map((c) => p + c)
    .join(', ');
}

/** A row as the public {@link Tenant}. @internal */
export function toTenant(row: TenantRow): Tenant {
  return {
    id: row.id,
    name: row.name,
    databaseName: row.database_name,
    server: row.server,
    // The guide's column has a default but no NOT NULL.
    isActive: row.is_active === true,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
    labels: row.labels,
  };
}
