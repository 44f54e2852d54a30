import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { majorOf } from '../../src/tenants/pg-dump.js';
import { useTestPlatform } from '../support/env.js';

// A move whose schema goes by pg_dump/pg_restore: they must be installed and of the servers' major version,
// so this file runs two PostgreSQL servers of that version from the system's binaries (Debian's
// /usr/lib/postgresql/<major>/bin), one publishing (wal_level = logical), and skips where there are none.
function dumpMajor(): number | undefined {
  try {
    return majorOf(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }));
  } catch {
    return undefined;
  }
}
const major = dumpMajor();
const binDir = major === undefined ? '' : `/usr/lib/postgresql/${major}/bin`;
const skipReason =
  major === undefined ? 'no pg_dump on the PATH' : existsSync(`${binDir}/postgres`) ? '' : `no PostgreSQL ${major} server binaries in ${binDir}`;
if (skipReason) console.log(`tenants-move-dump skipped: ${skipReason}`);

describe.skipIf(Boolean(skipReason))('tenants.move with pg_dump and pg_restore of the servers\' version', () => {
  const servers: Record<'p' | 'q', RunningServer | undefined> = { p: undefined, q: undefined };
  const serverOf = (name: 'p' | 'q'): string => servers[name]!.url.replace(/\/postgres$/, '');
  const env = useTestPlatform({
    tenantSpares: 0,
    get tenantServers() {
      return { p: serverOf('p'), q: serverOf('q') };
    },
  });
  let platform: Platform;

  async function on<R extends pg.QueryResultRow>(server: 'p' | 'q', database: string, sql: string): Promise<R[]> {
    const client = new pg.Client({ connectionString: `${serverOf(server)}/${database}` });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  /** The app's objects work on the tenant's server: the view, the enum, the trigger, the sequence past the old rows. */
  async function expectWhole(tenant: Tenant, notes: number): Promise<void> {
    await platform.withTenant(tenant.id, async (ctx) => {
      expect((await ctx.query('SELECT body FROM great_notes')).rows).toEqual([{ body: 'hello' }]);
      const added = await ctx.query<{ id: number; length: number; max: number }>(
        "INSERT INTO notes (body, mood) VALUES ('later', 'great') RETURNING id, length, (SELECT max(id) FROM notes) AS max",
      );
      expect(added.rows[0]).toMatchObject({ length: 5 });
      expect(added.rows[0]!.id).toBeGreaterThan(added.rows[0]!.max);
      expect((await ctx.query('SELECT 1 FROM notes')).rowCount).toBe(notes + 1);
      await ctx.query("DELETE FROM notes WHERE body = 'later'");
    });
  }

  async function leftovers(): Promise<string[]> {
    const found: string[] = [];
    for (const server of ['p', 'q'] as const) {
      const rows = await on<{ what: string }>(
        server,
        'postgres',
        `SELECT 'database ' || datname AS what FROM pg_database WHERE datname LIKE 'tenantdb_move_%'
         UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots UNION ALL SELECT 'subscription ' || subname FROM pg_subscription`,
      );
      found.push(...rows.map((r) => `${server}: ${r.what}`));
    }
    return found;
  }

  beforeAll(async () => {
    const [p, q] = await Promise.all([
      startPostgres({ binDir, settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 } }, false),
      startPostgres({ binDir }, false),
    ]);
    Object.assign(servers, { p, q });
    platform = await env.initPlatform();
  });
  afterAll(async () => {
    await platform?.close();
    await Promise.allSettled(Object.values(servers).map((server) => server?.stop()));
  });

  it('views, functions, triggers and types of the app go along, logical (p → q) then dump (q → p)', async () => {
    const tenant = await platform.tenants.create({ name: 'Dumped Co', server: 'p' });
    await platform.withTenant(tenant, async (ctx) => {
      await ctx.query(`
        CREATE TYPE mood AS ENUM ('ok', 'great');
        CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, mood mood NOT NULL DEFAULT 'ok', length int);
        CREATE FUNCTION notes_length() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.length := length(NEW.body); RETURN NEW; END $$;
        CREATE TRIGGER notes_length BEFORE INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION notes_length();
        CREATE VIEW great_notes AS SELECT id, body FROM notes WHERE mood = 'great';
        INSERT INTO notes (body, mood) VALUES ('hello', 'great'), ('bye', 'ok');
      `);
    });
    const logical = await platform.tenants.move(tenant.id, 'q');
    expect(logical).toMatchObject({ method: 'logical', from: 'p', to: 'q' });
    await expectWhole(tenant, 2);
    expect(await leftovers()).toEqual([]);

    const dumped = await platform.tenants.move(tenant.id, 'p');
    expect(dumped).toMatchObject({ method: 'dump', from: 'q', to: 'p' });
    expect(dumped.rows).toBeGreaterThanOrEqual(2);
    await expectWhole(tenant, 2);
    expect(await on('q', 'postgres', `SELECT 1 FROM pg_database WHERE datname = '${tenant.databaseName}'`)).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });
});
