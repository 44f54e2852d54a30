-- The record of every fleet run is lost.
DROP TABLE migration_run_tenants;
DROP TABLE migration_runs;
