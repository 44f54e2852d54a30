-- The platform registry: users, tenants and who belongs to which tenant with what role.
-- The three tables are those of the architecture guide; files and documents live only in tenant databases.

CREATE TABLE users (
    id UUID PRIMARY KEY,
    first_name VARCHAR(100) NOT NULL,
    last_name VARCHAR(100) NOT NULL,
    email VARCHAR(255) UNIQUE NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by UUID
);

-- A second spelling of an email differing only in case is the same account.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- users.list: keyset pagination on (created_at, id).
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE tenants (
    id UUID PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    database_name VARCHAR(63) UNIQUE NOT NULL,  -- PostgreSQL database name
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_by UUID,
    -- The name of the server (a key of the tenantServers option) the database lives on.
    server TEXT NOT NULL DEFAULT 'default',
    -- provisioning → ready, or failed: a crash half way through never leaves a mystery.
    status TEXT NOT NULL DEFAULT 'provisioning' CHECK (status IN ('provisioning', 'ready', 'failed'))
);

-- tenants.list orders by (created_at, id); repair looks for the few tenants that are not ready.
CREATE INDEX tenants_created_at_id_idx ON tenants (created_at, id);
CREATE INDEX tenants_unfinished_idx ON tenants (status) WHERE status <> 'ready';

CREATE TABLE user_tenant_associations (
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    tenant_id UUID REFERENCES tenants(id) ON DELETE CASCADE,
    role VARCHAR(50) NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    joined_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (user_id, tenant_id)
);

-- The primary key serves a user's tenants; this serves a tenant's members and the last-admin check.
CREATE INDEX user_tenant_associations_tenant_id_idx ON user_tenant_associations (tenant_id);

-- Template databases, already migrated, that new tenant databases are cloned from: one per tenant server
-- and set of tenant migrations (the newest few are kept, so a rolling deploy's old and new processes each
-- find their own).
CREATE TABLE tenant_templates (
    server TEXT NOT NULL,
    checksum TEXT NOT NULL,
    database_name VARCHAR(63) NOT NULL UNIQUE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (server, checksum)
);

-- Tenant databases cloned ahead of need from a template (its server and checksum), so that creating a
-- tenant only renames one. `ready` once the clone is complete; only ready spares are claimed.
CREATE TABLE tenant_spares (
    database_name VARCHAR(63) PRIMARY KEY,
    server TEXT NOT NULL,
    checksum TEXT NOT NULL,
    ready BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tenant_spares_claim_idx ON tenant_spares (server, checksum, created_at) WHERE ready;
