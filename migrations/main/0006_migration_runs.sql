-- Fleet migration runs (migrations.tenants.up/down/revert/resume): one row per run and one per tenant it
-- selected, so that a run can be read back, resumed from any process after its own died, retried for its
-- failures and reverted. A live run's process holds the session advisory lock 'tenantdb:run:<id>' (see
-- LockSession), which is how another process tells a live run from a dead one.
CREATE TABLE migration_runs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('up', 'down', 'revert')),
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'halted', 'failed')),
    halted_by TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    resumes JSONB NOT NULL DEFAULT '[]',
    options JSONB NOT NULL,
    -- The migration files the run applies (or, down, reverts to), in order, with their checksums: a resume
    -- refuses files that changed since.
    migrations JSONB NOT NULL,
    waves INTEGER NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    finished_at TIMESTAMP WITH TIME ZONE
);
CREATE INDEX migration_runs_started_idx ON migration_runs (started_at DESC);

-- No foreign key to tenants: a run's record outlives a dropped tenant, and names tenants that did not exist.
CREATE TABLE migration_run_tenants (
    run_id UUID NOT NULL REFERENCES migration_runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    database_name TEXT NOT NULL,
    server TEXT,
    wave INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'skipped')),
    applied JSONB NOT NULL DEFAULT '[]',
    migration TEXT,
    error JSONB,
    duration_ms INTEGER,
    PRIMARY KEY (run_id, position)
);
