import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantDbError, type Platform } from '../../src/index.js';
import { adminQuery, dbUrl, serverUrl, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

/** A unique tenant name whose slug is itself, so that its databases can be found by prefix. */
function tag(word: string): string {
  return `${word}_${randomUUID().slice(0, 8)}`;
}

async function databasesLike(slug: string): Promise<string[]> {
  const { rows } = await adminQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`tenant_${slug}_%`]);
  return rows.map((r) => r.datname);
}

async function rowsNamed(mainDb: string, name: string): Promise<number> {
  return (await adminQuery('SELECT 1 FROM tenants WHERE name = $1', [name], mainDb)).rowCount ?? 0;
}

async function templateOf(mainDb: string, server = 'default'): Promise<string> {
  const { rows } = await adminQuery<{ database_name: string }>(
    'SELECT database_name FROM tenant_templates WHERE server = $1',
    [server],
    mainDb,
  );
  return rows[0]!.database_name;
}

/** The server URL of the harness with a port nothing listens on. */
function deadServer(): string {
  const u = new URL(serverUrl());
  u.port = '1';
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}

describe('provisioning failures leave neither a row nor a database', () => {
  // The cloning path itself is under test here: no spares (tenant-spares.test.ts covers them).
  const env = useTestPlatform({ tenantServers: { broken: deadServer() }, tenantSpares: 0 });
  let platform: Platform;

  beforeAll(async () => {
    platform = await env.initPlatform();
  });

  it('a server that cannot be reached → UNAVAILABLE (retryable), no row', async () => {
    const name = tag('unreachable');
    const err = await platform.tenants.create({ name, server: 'broken' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(await rowsNamed(env.mainDb, name)).toBe(0);
    const templates = await adminQuery('SELECT 1 FROM tenant_templates WHERE server = $1', ['broken'], env.mainDb);
    expect(templates.rowCount).toBe(0);
    // The default server is unaffected.
    expect((await platform.tenants.create({ name: tag('fine') })).status).toBe('ready');
  });

  it('a failure after the clone drops the cloned database and removes the row', async () => {
    const name = tag('doomed');
    // Fails the step that marks the tenant ready, after its database was cloned.
    await adminQuery(
      `CREATE FUNCTION refuse_ready() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'refused'; END $$;
       CREATE TRIGGER refuse_ready BEFORE UPDATE ON tenants FOR EACH ROW
         WHEN (NEW.status = 'ready' AND NEW.name = '${name}') EXECUTE FUNCTION refuse_ready();`,
      [],
      env.mainDb,
    );
    try {
      expect(await rejectionCode(platform.tenants.create({ name }))).toBe('TENANT_NOT_READY');
      expect(await rowsNamed(env.mainDb, name)).toBe(0);
      expect(await databasesLike(name)).toEqual([]);
    } finally {
      await adminQuery('DROP TRIGGER refuse_ready ON tenants; DROP FUNCTION refuse_ready();', [], env.mainDb);
    }
  });

  it('a clone that finds the template in use (a pooler\'s leftover server connection) ends that session and succeeds', async () => {
    const template = await templateOf(env.mainDb);
    await adminQuery(`ALTER DATABASE "${template}" WITH ALLOW_CONNECTIONS true`);
    const intruder = new pg.Client({ connectionString: dbUrl(template) });
    intruder.on('error', () => {});
    await intruder.connect();
    await adminQuery(`ALTER DATABASE "${template}" WITH ALLOW_CONNECTIONS false`);
    const name = tag('blocked');
    try {
      // PostgreSQL refuses to copy a database others are connected to (after waiting 5 s for them): the
      // library's own template has no business being in use, so its sessions are ended and the clone retried.
      expect((await platform.tenants.create({ name })).status).toBe('ready');
      await expect(intruder.query('SELECT 1')).rejects.toBeInstanceOf(Error);
    } finally {
      await intruder.end().catch(() => {});
    }
    expect(await rowsNamed(env.mainDb, name)).toBe(1);
  }, 30_000);

  it('a template dropped behind the platform\'s back is rebuilt by the next create', async () => {
    const template = await templateOf(env.mainDb);
    await adminQuery(`DROP DATABASE "${template}" WITH (FORCE)`);
    const tenant = await platform.tenants.create({ name: tag('recovered') });
    expect(tenant.status).toBe('ready');
    const rebuilt = await templateOf(env.mainDb);
    expect((await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [rebuilt])).rowCount).toBe(1);
  });

  it('ten parallel creates all succeed when the template vanished behind the platform\'s back', async () => {
    await adminQuery(`DROP DATABASE "${await templateOf(env.mainDb)}" WITH (FORCE)`);
    const slug = tag('burst');
    const tenants = await Promise.all(Array.from({ length: 10 }, (_, i) => platform.tenants.create({ name: `${slug} ${i}` })));
    expect(tenants.map((t) => t.status)).toEqual(Array(10).fill('ready'));
    expect((await databasesLike(`${slug}_%`)).length).toBe(10);
  }, 30_000);
});

describe('close() while tenants are being created', () => {
  const env = useTestPlatform();

  it('settles every create (ready, or CLOSED and cleaned up) and closes', async () => {
    await env.platform().init();
    const platform = env.platform();
    const slug = tag('closing');
    // More creates than the server's admin connections, so that some clones wait in its queue.
    const creates = Array.from({ length: 6 }, (_, i) =>
      platform.tenants.create({ name: `${slug} ${i}` }).then(
        (t) => t.status,
        (e: unknown) => (e instanceof TenantDbError ? e.code : e),
      ),
    );
    // Close once every create has written its registry row, i.e. is cloning or waiting to.
    for (;;) {
      const { rows } = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM tenants WHERE name LIKE $1', [`${slug}%`], env.mainDb);
      if (Number(rows[0]!.n) === 6) break;
    }
    await platform.close();
    const outcomes = await Promise.all(creates);
    for (const outcome of outcomes) expect(['ready', 'CLOSED']).toContain(outcome);

    const { rows } = await adminQuery<{ status: string; database_name: string }>(
      'SELECT status, database_name FROM tenants WHERE name LIKE $1',
      [`${slug}%`],
      env.mainDb,
    );
    expect(rows.filter((r) => r.status === 'ready')).toHaveLength(outcomes.filter((o) => o === 'ready').length);
    // A create cut short leaves at most a provisioning row without a database, which repair() removes.
    const databases = await databasesLike(`${slug}_%`);
    expect(databases.sort()).toEqual(rows.filter((r) => r.status === 'ready').map((r) => r.database_name).sort());
    const other = env.platform();
    await other.init();
    const left = await adminQuery('SELECT 1 FROM tenants WHERE name LIKE $1 AND status <> $2', [`${slug}%`, 'ready'], env.mainDb);
    expect(left.rowCount).toBe(0);
  });
});

describe('a template that cannot be rebuilt', () => {
  let folder: string;
  const env = useTestPlatform();
  let platform: Platform;

  beforeAll(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-cleanup-'));
    await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id int PRIMARY KEY);\n');
    // No spares: a spare cloned before the template went would (rightly) serve the create.
    platform = await env.initPlatform({ tenantMigrations: [folder], tenantSpares: 0 });
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('fails the create with MIGRATION_FAILED and leaves nothing; the next create after a fix works', async () => {
    // The host edits a migration under a running process, and the template goes: the rebuild must fail.
    await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id bigint PRIMARY KEY);\n');
    await adminQuery(`DROP DATABASE "${await templateOf(env.mainDb)}" WITH (FORCE)`);
    const name = tag('stuck');
    expect(await rejectionCode(platform.tenants.create({ name }))).toBe('MIGRATION_FAILED');
    expect(await rowsNamed(env.mainDb, name)).toBe(0);
    expect(await databasesLike(name)).toEqual([]);

    await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id int PRIMARY KEY);\n');
    const tenant = await platform.tenants.create({ name });
    const notes = await platform.withTenant(tenant, async (ctx) => (await ctx.query("SELECT to_regclass('notes') AS t")).rows[0]!.t);
    expect(notes).toBe('notes');
  });
});
