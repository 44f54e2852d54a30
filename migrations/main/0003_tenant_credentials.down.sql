-- The roles themselves stay on their servers: drop them (DROP ROLE) once nothing connects with them.
DROP TABLE tenant_credentials;
