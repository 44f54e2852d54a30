-- The tenants' labels are lost.
DROP INDEX tenants_labels_idx;
ALTER TABLE tenants DROP COLUMN labels;
