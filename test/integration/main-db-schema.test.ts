import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/logger.js';
import { clientConnector, createSqlUmzug, loadMigrationFiles } from '../../src/migrations/sql-migrations.js';
import { adminQuery, dbUrl, dropPlatformDatabases, uniqueName, useTestPlatform } from '../support/env.js';

interface Column {
  column_name: string;
  data_type: string;
  character_maximum_length: number | null;
  is_nullable: 'YES' | 'NO';
  column_default: string | null;
}

async function columns(database: string, table: string): Promise<Array<[string, string, number | null, boolean, string | null]>> {
  const { rows } = await adminQuery<Column>(
    `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
    database,
  );
  return rows.map((c) => [c.column_name, c.data_type, c.character_maximum_length, c.is_nullable === 'YES', c.column_default]);
}

async function indexes(database: string, table: string): Promise<string[]> {
  const { rows } = await adminQuery<{ indexdef: string }>(
    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1",
    [table],
    database,
  );
  return rows.map((r) => r.indexdef.replace(/^.* USING /, ''));
}

async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return (err as { code?: string } | undefined)?.code;
}

const TZ = 'timestamp with time zone';

describe('the main database schema', () => {
  const env = useTestPlatform();
  const q = <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => adminQuery<R>(sql, params, env.mainDb);

  beforeAll(async () => {
    await env.platform().init();
  });

  it('has the registry tables and no tenant tables', async () => {
    const { rows } = await q<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(rows.map((r) => r.table_name)).toEqual([
      'migration_run_tenants',
      'migration_runs',
      'tenant_credentials',
      'tenant_moves',
      'tenant_spares',
      'tenant_templates',
      'tenantdb_migrations',
      'tenants',
      'user_tenant_associations',
      'users',
    ]);
  });

  it('has the guide’s columns and types, plus tenants.server, tenants.status and tenants.labels', async () => {
    expect(await columns(env.mainDb, 'users')).toEqual([
      ['id', 'uuid', null, false, null],
      ['first_name', 'character varying', 100, false, null],
      ['last_name', 'character varying', 100, false, null],
      ['email', 'character varying', 255, false, null],
      ['password_hash', 'character varying', 255, false, null],
      ['is_active', 'boolean', null, true, 'true'],
      ['created_at', TZ, null, false, null],
      ['updated_at', TZ, null, false, null],
      ['created_by', 'uuid', null, true, null],
    ]);
    expect(await columns(env.mainDb, 'tenants')).toEqual([
      ['id', 'uuid', null, false, null],
      ['name', 'character varying', 255, false, null],
      ['database_name', 'character varying', 63, false, null],
      ['is_active', 'boolean', null, true, 'true'],
      ['created_at', TZ, null, false, null],
      ['updated_at', TZ, null, false, null],
      ['created_by', 'uuid', null, true, null],
      ['server', 'text', null, false, "'default'::text"],
      ['status', 'text', null, false, "'provisioning'::text"],
      ['labels', 'jsonb', null, false, "'{}'::jsonb"],
    ]);
    expect(await columns(env.mainDb, 'user_tenant_associations')).toEqual([
      ['user_id', 'uuid', null, false, null],
      ['tenant_id', 'uuid', null, false, null],
      ['role', 'character varying', 50, false, null],
      ['joined_at', TZ, null, false, null],
    ]);
    expect(await columns(env.mainDb, 'tenant_templates')).toEqual([
      ['server', 'text', null, false, null],
      ['checksum', 'text', null, false, null],
      ['database_name', 'character varying', 63, false, null],
      ['updated_at', TZ, null, false, 'now()'],
    ]);
  });

  it('has the indexes the lookups need', async () => {
    expect(await indexes(env.mainDb, 'users')).toEqual(
      expect.arrayContaining(['btree (id)', 'btree (email)', 'btree (lower((email)::text))', 'btree (created_at, id)']),
    );
    expect(await indexes(env.mainDb, 'tenants')).toEqual(
      expect.arrayContaining(['btree (id)', 'btree (database_name)', 'btree (created_at, id)', 'gin (labels)']),
    );
    expect(await indexes(env.mainDb, 'user_tenant_associations')).toEqual(
      expect.arrayContaining(['btree (user_id, tenant_id)', 'btree (tenant_id)']),
    );
  });

  it('enforces the constraints: unique email whatever its case, roles, statuses, cascades', async () => {
    const user = randomUUID();
    const insertUser = (id: string, email: string) =>
      q(
        `INSERT INTO users (id, first_name, last_name, email, password_hash, created_at, updated_at)
         VALUES ($1, 'A', 'B', $2, 'x', now(), now())`,
        [id, email],
      );
    await insertUser(user, 'Schema@Example.io');
    expect(await sqlState(insertUser(randomUUID(), 'schema@example.IO'))).toBe('23505');

    const tenant = randomUUID();
    await q(
      `INSERT INTO tenants (id, name, database_name, created_at, updated_at) VALUES ($1, 'T', $2, now(), now())`,
      [tenant, `tenant_t_${tenant.slice(0, 8)}`],
    );
    const { rows } = await q<{ server: string; status: string; is_active: boolean }>(
      'SELECT server, status, is_active FROM tenants WHERE id = $1',
      [tenant],
    );
    expect(rows).toEqual([{ server: 'default', status: 'provisioning', is_active: true }]);
    expect(await sqlState(q(`UPDATE tenants SET status = 'gone' WHERE id = $1`, [tenant]))).toBe('23514');

    const member = (role: string) =>
      q('INSERT INTO user_tenant_associations (user_id, tenant_id, role, joined_at) VALUES ($1, $2, $3, now())', [user, tenant, role]);
    expect(await sqlState(member('owner'))).toBe('23514');
    await member('admin');
    expect(await sqlState(member('viewer'))).toBe('23505');

    await q('DELETE FROM tenants WHERE id = $1', [tenant]);
    expect((await q('SELECT 1 FROM user_tenant_associations WHERE user_id = $1', [user])).rowCount).toBe(0);

    const other = randomUUID();
    await q(
      `INSERT INTO tenants (id, name, database_name, created_at, updated_at) VALUES ($1, 'T2', $2, now(), now())`,
      [other, `tenant_t2_${other.slice(0, 8)}`],
    );
    await q('INSERT INTO user_tenant_associations (user_id, tenant_id, role, joined_at) VALUES ($1, $2, $3, now())', [
      user,
      other,
      'user',
    ]);
    await q('DELETE FROM users WHERE id = $1', [user]);
    expect((await q('SELECT 1 FROM user_tenant_associations WHERE tenant_id = $1', [other])).rowCount).toBe(0);
  });
});

describe('the tenant database schema', () => {
  const database = uniqueName('tdbt_tschema');

  beforeAll(async () => {
    await adminQuery(`CREATE DATABASE "${database}"`);
    const files = await loadMigrationFiles('tenant', []);
    await createSqlUmzug({ connect: clientConnector(dbUrl(database)), files, family: 'tenant', logger: silentLogger }).up();
  });
  afterAll(async () => {
    await dropPlatformDatabases(database);
  });

  it('has the guide’s files and documents, plus files.sha256 and documents.deduplicated', async () => {
    expect(await columns(database, 'files')).toEqual([
      ['id', 'uuid', null, false, null],
      ['s3_path', 'character varying', 1024, false, null],
      ['md5_hash', 'character varying', 32, false, null],
      ['sha256', 'character', 64, false, null],
      ['size_bytes', 'bigint', null, false, null],
      ['mime_type', 'character varying', 255, true, null],
      ['created_at', TZ, null, false, null],
      ['updated_at', TZ, null, false, null],
      ['created_by', 'uuid', null, true, null],
    ]);
    expect(await columns(database, 'documents')).toEqual([
      ['id', 'uuid', null, false, null],
      ['filename', 'character varying', 255, false, null],
      ['file_id', 'uuid', null, true, null],
      ['user_id', 'uuid', null, false, null],
      ['mime_type', 'character varying', 255, true, null],
      ['size_bytes', 'bigint', null, true, null],
      ['created_at', TZ, null, false, null],
      ['updated_at', TZ, null, false, null],
      ['created_by', 'uuid', null, true, null],
      ['deduplicated', 'boolean', null, false, 'false'],
    ]);
    expect(await indexes(database, 'files')).toEqual(expect.arrayContaining(['btree (s3_path)', 'btree (md5_hash)']));
    expect(await indexes(database, 'documents')).toEqual(
      expect.arrayContaining(['btree (user_id, filename)', 'btree (created_at, id)', 'btree (user_id, created_at, id)', 'btree (file_id)']),
    );
    const { rows } = await adminQuery<{ t: string | null }>(
      "SELECT to_regclass('users') AS t UNION ALL SELECT to_regclass('tenants')",
      [],
      database,
    );
    expect(rows.every((r) => r.t === null)).toBe(true);
  });

  it('enforces one filename per user and a document’s file', async () => {
    const file = randomUUID();
    await adminQuery(
      `INSERT INTO files (id, s3_path, md5_hash, sha256, size_bytes, created_at, updated_at)
       VALUES ($1, 'k/1', repeat('a', 32), repeat('b', 64), 1, now(), now())`,
      [file],
      database,
    );
    const user = randomUUID();
    const doc = (fileId: string, filename = 'a.txt') =>
      adminQuery(
        `INSERT INTO documents (id, filename, file_id, user_id, created_at, updated_at) VALUES ($1, $4, $2, $3, now(), now())`,
        [randomUUID(), fileId, user, filename],
        database,
      );
    await doc(file);
    expect(await sqlState(doc(file))).toBe('23505');
    await doc(file, 'b.txt');
    expect(await sqlState(doc(randomUUID(), 'c.txt'))).toBe('23503');
    expect(
      await sqlState(
        adminQuery(
          `INSERT INTO files (id, s3_path, md5_hash, size_bytes, created_at, updated_at) VALUES ($1, 'k/2', repeat('c', 32), 1, now(), now())`,
          [randomUUID()],
          database,
        ),
      ),
    ).toBe('23502');
  });
});
