-- With tenantRoles: the login role of each tenant database and its password, encrypted with the platform's
-- credentialsKey (AES-256-GCM, bound to the tenant's id). next_secret is a rotation under way: set before
-- the server's password changes, moved to secret after, so a crash in between is finished by repair.
CREATE TABLE tenant_credentials (
    tenant_id UUID PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    role_name TEXT NOT NULL,
    secret TEXT NOT NULL,
    next_secret TEXT,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
CREATE INDEX tenant_credentials_rotating_idx ON tenant_credentials (tenant_id) WHERE next_secret IS NOT NULL;
