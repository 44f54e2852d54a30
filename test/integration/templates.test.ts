import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger, Platform, Tenant } from '../../src/index.js';
import { adminQuery, serverUrl, useTestPlatform } from '../support/env.js';

/** A logger that records which templates were built. */
function buildLog(): { logger: Logger; built: string[] } {
  const built: string[] = [];
  const noop = (): void => {};
  return {
    built,
    logger: {
      debug: noop,
      warn: noop,
      error: noop,
      info: (obj, msg) => {
        if (msg === 'building tenant template') built.push((obj as { template: string }).template);
      },
    },
  };
}

async function templateRows(mainDb: string): Promise<Array<{ server: string; database_name: string }>> {
  const { rows } = await adminQuery<{ server: string; database_name: string }>(
    'SELECT server, database_name FROM tenant_templates ORDER BY server, updated_at DESC',
    [],
    mainDb,
  );
  return rows;
}

async function database(name: string): Promise<{ datallowconn: boolean } | undefined> {
  const { rows } = await adminQuery<{ datallowconn: boolean }>('SELECT datallowconn FROM pg_database WHERE datname = $1', [name]);
  return rows[0];
}

async function sessionsOn(name: string): Promise<number> {
  const { rows } = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [name]);
  return Number(rows[0]!.n);
}

async function tablesOf(platform: Platform, tenant: Tenant): Promise<string[]> {
  return platform.withTenant(tenant, async (ctx) => {
    const { rows } = await ctx.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    return rows.map((r) => r.t);
  });
}

/** The harness server's URL (no database) with extra connection parameters. */
function serverWithParams(params: string): string {
  const u = new URL(serverUrl());
  u.pathname = '';
  return `${u.toString().replace(/\/$/, '')}?${params}`;
}

describe('templates on one main database', () => {
  const env = useTestPlatform();
  let folder: string;
  let first: Platform;
  let firstTemplate: string;

  beforeAll(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-templates-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('init() builds the default server\'s template once, closed to connections, nobody connected', async () => {
    const log = buildLog();
    first = env.platform({ logger: log.logger });
    await first.init();
    const rows = await templateRows(env.mainDb);
    expect(rows.map((r) => r.server)).toEqual(['default']);
    firstTemplate = rows[0]!.database_name;
    expect(log.built).toEqual([firstTemplate]);
    expect(await database(firstTemplate)).toEqual({ datallowconn: false });
    expect(await sessionsOn(firstTemplate)).toBe(0);

    // init() again, and another process's init(), reuse it.
    await first.init();
    const again = buildLog();
    await env.platform({ logger: again.logger }).init();
    expect(again.built).toEqual([]);
    expect(await templateRows(env.mainDb)).toEqual(rows);
  });

  it('creates clone it with nobody left connected to it', async () => {
    const tenants = await Promise.all([1, 2, 3].map((i) => first.tenants.create({ name: `Clone ${i}` })));
    for (const t of tenants) expect(await tablesOf(first, t)).toEqual(['documents', 'files', 'tenantdb_migrations']);
    expect(await sessionsOn(firstTemplate)).toBe(0);
    expect(await database(firstTemplate)).toEqual({ datallowconn: false });
  });

  it('is rebuilt when the host adds a tenant migration: new tenants have it; the previous template stays for old processes', async () => {
    await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);\n');
    const log = buildLog();
    const second = env.platform({ tenantMigrations: [folder], logger: log.logger });
    await second.init();
    const rows = await templateRows(env.mainDb);
    const rebuilt = rows[0]!.database_name;
    expect(rebuilt).not.toBe(firstTemplate);
    expect(log.built).toEqual([rebuilt]);
    expect(await database(rebuilt)).toEqual({ datallowconn: false });

    const tenant = await second.tenants.create({ name: 'After the change' });
    expect(await tablesOf(second, tenant)).toEqual(['documents', 'files', 'notes', 'tenantdb_migrations']);
    const executed = (await (await second.migrations.tenant(tenant)).executed()).map((m) => m.name);
    expect(executed).toEqual(['0001_initial', '0100_notes']);
    expect(await sessionsOn(rebuilt)).toBe(0);

    // A process still on the previous set (a rolling deploy) finds its template: no rebuild back and forth.
    expect(await database(firstTemplate)).toEqual({ datallowconn: false });
    const oldLog = buildLog();
    const old = env.platform({ logger: oldLog.logger });
    const oldTenant = await old.tenants.create({ name: 'Still old' });
    expect(oldLog.built).toEqual([]);
    expect(await tablesOf(old, oldTenant)).toEqual(['documents', 'files', 'tenantdb_migrations']);
    expect((await templateRows(env.mainDb))[0]!.database_name).toBe(rebuilt);
  });

  it('keeps the three newest templates of a server and drops older ones', async () => {
    for (const n of [101, 102]) {
      await writeFile(path.join(folder, `0${n}_more.sql`), `CREATE TABLE t${n} (id int);\n`);
      await env.platform({ tenantMigrations: [folder] }).init();
    }
    const rows = await templateRows(env.mainDb);
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => r.database_name)).not.toContain(firstTemplate);
    expect(await database(firstTemplate)).toBeUndefined();
  });
});

describe('templates built by several processes at once', () => {
  const env = useTestPlatform({ tenantServers: { second: serverWithParams('application_name=tenantdb_second') } });

  it('two platforms initialising and creating tenants at once on a fresh main database build each template once', async () => {
    const logs = [buildLog(), buildLog()];
    const [a, b] = logs.map((log) => env.platform({ logger: log.logger })) as [Platform, Platform];
    await Promise.all([a.init(), b.init()]);
    // The second server's template is built on its first create: here, by ten creates from two processes.
    const tenants = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).tenants.create({ name: `Race ${i}`, server: i < 4 ? 'default' : 'second' })),
    );
    expect(tenants.map((t) => t.status)).toEqual(Array(10).fill('ready'));
    const built = [...logs[0]!.built, ...logs[1]!.built].sort();
    const rows = await templateRows(env.mainDb);
    expect(rows.map((r) => r.server)).toEqual(['default', 'second']);
    expect(built).toEqual(rows.map((r) => r.database_name).sort());
    for (const row of rows) expect(await sessionsOn(row.database_name)).toBe(0);
  });

  it('a server URL with connection parameters keeps them, and the template and tenants land in the right databases', async () => {
    const platform = env.platform();
    const tenant = await platform.tenants.create({ name: 'With params', server: 'second' });
    expect(tenant.server).toBe('second');
    expect(await tablesOf(platform, tenant)).toEqual(['documents', 'files', 'tenantdb_migrations']);
    const app = await platform.withTenant(tenant, async (ctx) => (await ctx.query('SELECT current_setting($1) AS v', ['application_name'])).rows[0]!.v);
    expect(app).toBe('tenantdb_second');
    // Nothing of the tenant schema ever reaches the maintenance database.
    const stray = await adminQuery("SELECT to_regclass('public.tenantdb_migrations') AS t");
    expect(stray.rows[0]!.t).toBeNull();
  });
});
