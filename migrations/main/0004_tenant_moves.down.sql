-- Moves under way are forgotten: run tenants.repair() (or init()) before going down, so none is left half way.
DROP TABLE tenant_moves;
