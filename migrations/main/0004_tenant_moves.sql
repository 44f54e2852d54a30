-- Moves of tenants between tenant servers under way (tenants.move): one row per tenant while its move runs,
-- so that every process can see a tenant is mid-move, and repair (init()) can finish or undo a move whose
-- process died. `database_name` is the database the move builds on the target (a name of its own until the
-- switch renames it); `phase`: copying → blocked (writes refused) → renaming → switched (the
-- registry names the target; the source is left to clean up).
CREATE TABLE tenant_moves (
    tenant_id UUID PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    database_name VARCHAR(63) NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('logical', 'dump', 'copy')),
    phase TEXT NOT NULL CHECK (phase IN ('copying', 'blocked', 'renaming', 'switched')),
    started_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
