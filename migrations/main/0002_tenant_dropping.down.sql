-- Before 0002 a drop half way left its tenant inactive: such rows go back as `failed`, which repair removes
-- (the storage sweep then deletes the objects of a tenant no longer registered).
UPDATE tenants SET status = 'failed' WHERE status = 'dropping';
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('provisioning', 'ready', 'failed'));
