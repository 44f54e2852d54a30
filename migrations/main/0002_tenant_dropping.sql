-- A drop marks its tenant `dropping` before its first step, so a drop that stopped half way (its database
-- gone, its objects not yet deleted) can no longer be entered or activated: a later drop, the storage sweep
-- or init()'s repair finishes it.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('provisioning', 'ready', 'failed', 'dropping'));
