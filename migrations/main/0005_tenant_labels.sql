-- Labels of tenants (tenants.create/update({ labels })): string keys to string values, so that a fleet can
-- be picked by them (tenants.list({ labels }), staged migrations). The GIN index serves `labels @> $1`.
ALTER TABLE tenants ADD COLUMN labels JSONB NOT NULL DEFAULT '{}';
CREATE INDEX tenants_labels_idx ON tenants USING gin (labels);
