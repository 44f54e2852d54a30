import { execFileSync } from 'node:child_process';
import path from 'node:path';
import diagnostics from 'node:diagnostics_channel';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STEP_CHANNEL, TenantDbError, type MoveProgressEvent, type Platform, type StepMessage, type StepName, type Tenant } from '../../src/index.js';
import { freePort, startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { crashAt } from '../support/crash.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { repoRoot, runProcess } from '../support/spawn.js';
import { buildCliIfStale, cliJs } from '../support/cli-build.js';
import { useTempFolders } from '../support/temp-folders.js';

// Moves between two PostgreSQL servers of this file's own (embedded, on loopback): `a` publishes
// (wal_level = logical), `b` does not (the default, replica), so a move a → b takes the logical path and
// b → a the copy; `c` is at wal_level = logical without a walsender. They start once, in parallel, for the whole file.
const skipReason = process.env.TENANTDB_TEST_PG_URL ? 'TENANTDB_TEST_PG_URL is set: no PostgreSQL servers of the test\'s own' : '';
if (skipReason) console.log(`tenants-move skipped: ${skipReason}`);

const tempFolder = useTempFolders('tenantdb-move-cli');
const LOGICAL = { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 };
/** A server that says it publishes but cannot: no walsender for a subscriber. */
const NO_SENDERS = { wal_level: 'logical', max_wal_senders: 0, max_replication_slots: 10 };
type Server = 'a' | 'b' | 'c';

describe.skipIf(Boolean(skipReason))('tenants.move', () => {
  const servers: Record<Server, RunningServer | undefined> = { a: undefined, b: undefined, c: undefined };
  const serverOf = (name: Server): string => servers[name]!.url.replace(/\/postgres$/, '');
  let downPort = 0;
  const env = useTestPlatform({
    tenantSpares: 0,
    // Filled in beforeAll, once the servers listen (options() reads them then).
    get tenantServers() {
      return { a: serverOf('a'), b: serverOf('b'), c: serverOf('c'), down: `postgres://postgres:postgres@127.0.0.1:${downPort}` };
    },
  });
  let platform: Platform;
  /** A second platform on the same main database: another process of the same app. */
  let other: Platform;

  async function on<R extends pg.QueryResultRow>(server: Server, database: string, sql: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: `${serverOf(server)}/${database}` });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** What a move may leave behind on either server: databases, slots, subscriptions of a move. */
  async function leftovers(): Promise<string[]> {
    const found: string[] = [];
    for (const server of ['a', 'b', 'c'] as const) {
      const dbs = await on<{ datname: string }>(server, 'postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'tenantdb_move_%'");
      const slots = await on<{ slot_name: string }>(server, 'postgres', 'SELECT slot_name FROM pg_replication_slots');
      const subs = await on<{ subname: string }>(server, 'postgres', 'SELECT subname FROM pg_subscription');
      found.push(...dbs.map((d) => `${server}: database ${d.datname}`), ...slots.map((s) => `${server}: slot ${s.slot_name}`));
      found.push(...subs.map((s) => `${server}: subscription ${s.subname}`));
    }
    const moves = await adminQuery<{ tenant_id: string }>('SELECT tenant_id FROM tenant_moves', [], env.mainDb);
    found.push(...moves.rows.map((m) => `move row ${m.tenant_id}`));
    return found;
  }

  async function databasesOf(server: Server): Promise<string[]> {
    return (await on<{ datname: string }>(server, 'postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_%'")).map((d) => d.datname);
  }

  /** Runs one statement on a server, synchronously (in a child process): a step subscriber does it before the next step. */
  function runSqlNow(server: Server, database: string, sql: string): void {
    const script = `import pg from 'pg'; const c = new pg.Client(process.argv[1]); await c.connect(); await c.query(process.argv[2]); await c.end();`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script, `${serverOf(server)}/${database}`, sql], { cwd: repoRoot });
  }

  /** Runs `fn` when the move of `tenant` publishes `step`, until `off()`. */
  function atStep(at: StepName, tenant: Tenant, fn: () => void): { off(): void } {
    const listener = (message: unknown): void => {
      const m = message as StepMessage;
      if (m.step === at && m.tenantId === tenant.id) fn();
    };
    diagnostics.subscribe(STEP_CHANNEL, listener);
    return { off: () => diagnostics.unsubscribe(STEP_CHANNEL, listener) };
  }

  /** A tenant on `server` with app tables made through ctx.query: a sequence, an identity, an index, a check. */
  async function appTenant(name: string, server: Server): Promise<Tenant> {
    const tenant = await platform.tenants.create({ name, server });
    await platform.withTenant(tenant, async (ctx) => {
      await ctx.query(
        `CREATE TABLE orders (id bigserial PRIMARY KEY, writer int NOT NULL, n int NOT NULL, note text CHECK (length(note) < 20),
                              UNIQUE (writer, n))`,
      );
      await ctx.query('CREATE INDEX orders_note_idx ON orders (note)');
      await ctx.query('CREATE TABLE events (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body jsonb, at timestamptz DEFAULT now())');
      await ctx.query(`INSERT INTO events (body) SELECT jsonb_build_object('i', i) FROM generate_series(1, 500) i`);
      await ctx.documents.upload({ filename: 'a.txt', body: 'moved bytes', userId: randomUUID() });
    });
    return tenant;
  }

  let nextWriter = 0;
  /** Writers through withTenant on both platforms until `stop()`; every insert whose promise resolved is kept. */
  function startWriters(tenant: Tenant, count: number): { stop(): Promise<{ committed: [number, number][]; errors: unknown[]; maxWaitMs: number }> } {
    let running = true;
    const committed: [number, number][] = [];
    const errors: unknown[] = [];
    let maxWaitMs = 0;
    const writers = Array.from({ length: count }, async (_, i) => {
      const writer = nextWriter++;
      const via = i % 3 === 2 ? other : platform;
      for (let n = 0; running; n++) {
        const started = performance.now();
        try {
          await via.withTenant(tenant.id, (ctx) => ctx.query('INSERT INTO orders (writer, n, note) VALUES ($1, $2, $3)', [writer, n, 'w']));
          committed.push([writer, n]);
        } catch (err) {
          errors.push(err);
          if (errors.length > 100) break; // something is badly wrong: the assertions say what
        }
        maxWaitMs = Math.max(maxWaitMs, performance.now() - started);
      }
    });
    return {
      async stop() {
        running = false;
        await Promise.all(writers);
        return { committed, errors, maxWaitMs };
      },
    };
  }

  /** A failed move's handler: the writers stop before the error goes on. */
  const stopping =
    (writers: { stop(): Promise<unknown> }) =>
    async (err: unknown): Promise<never> => {
      await writers.stop();
      throw err;
    };

  /** The move's data is all on `server`: every committed insert once, the sequence and identity past their old maximum, the app's index and check. */
  async function expectIntact(tenant: Tenant, server: Server, committed: [number, number][]): Promise<void> {
    const rows = await on<{ writer: number; n: number }>(server, tenant.databaseName, 'SELECT writer, n FROM orders');
    const found = new Set(rows.map((r) => `${r.writer}:${r.n}`));
    expect(rows.length).toBe(found.size);
    expect(committed.filter(([w, n]) => !found.has(`${w}:${n}`))).toEqual([]);
    const current = await platform.tenants.get(tenant.id);
    expect(current.server).toBe(server);
    await platform.withTenant(tenant.id, async (ctx) => {
      const max = (await ctx.query<{ m: string }>('SELECT max(id)::text AS m FROM orders')).rows[0]!.m;
      const next = (await ctx.query<{ id: string }>("INSERT INTO orders (writer, n) VALUES (-1, -1) RETURNING id::text AS id")).rows[0]!.id;
      expect(BigInt(next)).toBeGreaterThan(BigInt(max ?? '0'));
      const event = (await ctx.query<{ id: number; m: number }>('INSERT INTO events (body) VALUES (null) RETURNING id, (SELECT max(id) FROM events) AS m'))
        .rows[0]!;
      expect(event.id).toBeGreaterThan(event.m);
      await ctx.query('DELETE FROM orders WHERE writer = -1');
      await ctx.query('DELETE FROM events WHERE body IS NULL');
      expect((await ctx.query('SELECT 1 FROM events')).rowCount).toBe(500);
      await expect(ctx.query("INSERT INTO orders (writer, n, note) VALUES (-2, 0, 'far too long for the check')")).rejects.toMatchObject({ code: '23514' });
      expect((await ctx.query("SELECT 1 FROM pg_indexes WHERE indexname = 'orders_note_idx'")).rowCount).toBe(1);
      const docs = await ctx.documents.list({});
      expect(docs.items.map((d) => d.filename)).toEqual(['a.txt']);
      const migrations = await ctx.query('SELECT name FROM tenantdb_migrations');
      expect(migrations.rows.map((r) => r.name)).toEqual(['0001_initial']);
    });
  }

  beforeAll(async () => {
    if (skipReason) return;
    const [a, b, c, port] = await Promise.all([
      startPostgres({ settings: LOGICAL }, false),
      startPostgres({}, false),
      startPostgres({ settings: NO_SENDERS }, false),
      freePort(),
    ]);
    Object.assign(servers, { a, b, c });
    downPort = port;
    platform = await env.initPlatform();
    other = env.platform();
  });
  afterAll(async () => {
    await Promise.allSettled([platform?.close(), other?.close()]);
    await Promise.allSettled(Object.values(servers).map((server) => server?.stop()));
  });

  it('logical (a → b) under continuous writes from two processes, then a copy (b → a): nothing lost, nothing left', async () => {
    const tenant = await appTenant('Moving Co', 'a');
    const writers = startWriters(tenant, 6);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const events: MoveProgressEvent[] = [];
    const logical = await platform.tenants.move(tenant.id, 'b', { onProgress: (e) => events.push(e) }).catch(stopping(writers));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const first = await writers.stop();
    console.log(
      `logical move: ${logical.durationMs.toFixed(0)} ms, writes blocked ${logical.blockedMs.toFixed(1)} ms, ` +
        `longest writer wait ${first.maxWaitMs.toFixed(1)} ms, ${first.committed.length} inserts during it`,
    );
    expect(first.errors).toEqual([]);
    expect(logical).toMatchObject({ method: 'logical', from: 'a', to: 'b', tables: 5, sequences: 2 });
    expect(logical.tenant.server).toBe('b');
    expect(events.map((e) => e.phase)).toEqual(expect.arrayContaining(['preparing', 'schema', 'syncing', 'blocked', 'caught-up', 'switched', 'cleaned', 'done']));
    expect(first.committed.length).toBeGreaterThan(50);
    await expectIntact(tenant, 'b', first.committed);
    expect(await databasesOf('a')).toEqual([]);
    expect(await leftovers()).toEqual([]);

    const again = startWriters(tenant, 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const copy = await platform.tenants.move(tenant.id, 'a').catch(stopping(again));
    const second = await again.stop();
    console.log(`copy move: ${copy.durationMs.toFixed(0)} ms, writes blocked ${copy.blockedMs.toFixed(1)} ms, longest writer wait ${second.maxWaitMs.toFixed(1)} ms`);
    expect(second.errors).toEqual([]);
    expect(copy).toMatchObject({ method: 'copy', from: 'b', to: 'a', tables: 5, sequences: 2 });
    expect(copy.rows).toBeGreaterThan(500);
    await expectIntact(tenant, 'a', [...first.committed, ...second.committed]);
    expect(await databasesOf('b')).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });

  it('refuses what it cannot do: unknown or same server, unknown tenant, a second move at once', async () => {
    const tenant = await platform.tenants.create({ name: 'Refused', server: 'b' });
    await expect(platform.tenants.move(tenant.id, 'nowhere')).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.tenants.move(tenant.id, 'b')).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.tenants.move(tenant.id, 'a', { drainTimeoutMs: -1 })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(platform.tenants.move(randomUUID(), 'a')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // What the copy cannot rebuild exactly (a view, here) is refused before anything is made.
    await platform.withTenant(tenant, (ctx) => ctx.query('CREATE VIEW file_sizes AS SELECT id, size_bytes FROM files'));
    await expect(platform.tenants.move(tenant.id, 'a')).rejects.toMatchObject({ code: 'VALIDATION' });
    await platform.withTenant(tenant, (ctx) => ctx.query('DROP VIEW file_sizes'));
    const [one, two] = await Promise.allSettled([platform.tenants.move(tenant.id, 'a'), other.tenants.move(tenant.id, 'a')]);
    const outcomes = [one, two].map((r) => (r.status === 'fulfilled' ? 'moved' : (r.reason as TenantDbError).code)).sort();
    expect(outcomes).toEqual(['CONFLICT', 'moved']);
    expect(await leftovers()).toEqual([]);
  });

  it('a failure half way (the target server down; the tenant\'s name taken on the target at the switch) leaves the tenant working where it was', async () => {
    const tenant = await appTenant('Failing Co', 'a');
    const down = await platform.tenants.move(tenant.id, 'down').catch((err: unknown) => err);
    expect(down).toBeInstanceOf(TenantDbError);
    expect(down).toMatchObject({ code: 'UNAVAILABLE' });
    expect((down as Error).message).not.toContain('postgres:postgres');

    // Once the target is in sync and writes are blocked, someone takes the tenant's database name there.
    const squat = atStep('move:caught-up', tenant, () => runSqlNow('b', 'postgres', `CREATE DATABASE "${tenant.databaseName}"`));
    const writers = startWriters(tenant, 2);
    let failure: unknown;
    try {
      failure = await platform.tenants.move(tenant.id, 'b').catch((err: unknown) => err);
    } finally {
      squat.off();
    }
    const written = await writers.stop();
    expect(failure).toBeInstanceOf(TenantDbError);
    expect(written.errors).toEqual([]);
    await expectIntact(tenant, 'a', written.committed);
    // The squatter's database is not the move's to drop; nothing of the move is left.
    expect(await databasesOf('b')).toContain(tenant.databaseName);
    await on('b', 'postgres', `DROP DATABASE "${tenant.databaseName}"`);
    expect(await leftovers()).toEqual([]);
  });

  it('a migration that changes the schema during a logical move: the move is undone (DDL does not replicate), nothing is lost', async () => {
    const tenant = await appTenant('Migrating Co', 'a');
    const alter = atStep('move:copied', tenant, () => runSqlNow('a', tenant.databaseName, 'ALTER TABLE orders ADD COLUMN late text'));
    let failure: unknown;
    try {
      failure = await platform.tenants.move(tenant.id, 'b').catch((err: unknown) => err);
    } finally {
      alter.off();
    }
    expect(failure).toMatchObject({ code: 'CONFLICT' });
    await expectIntact(tenant, 'a', []);
    expect(await leftovers()).toEqual([]);
    // Moved again, the new column goes along.
    expect((await platform.tenants.move(tenant.id, 'b')).method).toBe('logical');
    expect(await on('b', tenant.databaseName, "SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'late'")).toHaveLength(1);
  });

  it('a scope that waits longer than pool.moveWaitMs for the switch gets UNAVAILABLE (retryable); after it, the tenant works', async () => {
    const impatient = env.platform({ pool: { moveWaitMs: 1 } });
    const tenant = await impatient.tenants.create({ name: 'Impatient', server: 'b' });
    let during: Promise<unknown> | undefined;
    const probe = atStep('move:blocked', tenant, () => {
      during = impatient.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1')).catch((err: unknown) => err);
    });
    try {
      await impatient.tenants.move(tenant.id, 'a', { method: 'copy' });
    } finally {
      probe.off();
    }
    expect(await during).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect((await impatient.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1 AS one'))).rows).toEqual([{ one: 1 }]);
    await impatient.close();
  });

  it('a source that cannot publish after all (no walsender free): the move, undone, copies instead', async () => {
    const tenant = await appTenant('Cannot Publish', 'c');
    const methods = new Set<string | undefined>();
    const result = await platform.tenants.move(tenant.id, 'b', { onProgress: (e) => methods.add(e.method) });
    expect(result.method).toBe('copy');
    expect(methods).toEqual(new Set([undefined, 'logical', 'copy']));
    await expectIntact(tenant, 'b', []);
    expect(await databasesOf('c')).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });

  it.each([
    ['move:blocked', 'a'],
    // Renamed on the target, not yet switched: writes were blocked, so repair switches.
    ['move:renamed', 'b'],
    ['move:switched', 'b'],
  ] as const)('killed at %s: init() leaves the tenant whole on %s alone', async (at, expected) => {
    const tenant = await appTenant(`Crash ${at}`, 'a');
    await platform.withTenant(tenant, (ctx) => ctx.query('INSERT INTO orders (writer, n) SELECT 0, n FROM generate_series(1, 100) n'));
    const committed = Array.from({ length: 100 }, (_, i): [number, number] => [0, i + 1]);
    await crashAt({ options: env.options(), action: 'move', at, tenant: tenant.id, to: 'b' });
    const restarted = await env.initPlatform();
    await restarted.close();
    await expectIntact(tenant, expected, committed);
    const elsewhere = expected === 'a' ? 'b' : 'a';
    expect(await databasesOf(elsewhere)).not.toContain(tenant.databaseName);
    expect(await leftovers()).toEqual([]);
  });

  it('tenantdb tenants move ID --to SERVER: progress on stderr, the result as JSON, exit 1 on failure', async () => {
    const folder = await tempFolder({ 'tenantdb.config.mjs': `export default ${JSON.stringify(env.options())};\n` });
    await buildCliIfStale(folder);
    const config = path.join(folder, 'tenantdb.config.mjs');
    const tenant = await appTenant('Cli Moved', 'b');
    const cliEnv = { PATH: process.env.PATH, HOME: process.env.HOME, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const run = await runProcess(process.execPath, [cliJs, 'tenants', 'move', tenant.databaseName, '--to', 'a', '--json', '--config', config], cliEnv);
    expect(run.code, run.stderr).toBe(0);
    const { moved } = JSON.parse(run.stdout) as { moved: { id: string; server: string; method: string; from: string; to: string } };
    expect(moved).toMatchObject({ id: tenant.id, method: 'copy', from: 'b', to: 'a' });
    expect(run.stderr).toContain('move: switched (copy)');
    expect(run.stderr).not.toContain('postgres:postgres');
    expect((await platform.tenants.get(tenant.id)).server).toBe('a');

    const failed = await runProcess(process.execPath, [cliJs, 'tenants', 'move', tenant.id, '--to', 'down', '--config', config], cliEnv);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^error UNAVAILABLE: /m);
    expect(failed.stderr).not.toContain('postgres:postgres');
    const usage = await runProcess(process.execPath, [cliJs, 'tenants', 'move', tenant.id, '--config', config], cliEnv);
    expect(usage.code).toBe(2);
    expect((await platform.tenants.get(tenant.id)).server).toBe('a');
    expect(await leftovers()).toEqual([]);
  });

  describe('with tenantRoles', () => {
    const roles = useTestPlatform({
      tenantSpares: 0,
      tenantRoles: true,
      credentialsKey: randomBytes(32).toString('hex'),
      get tenantServers() {
        return { a: serverOf('a'), b: serverOf('b') };
      },
    });

    it("the tenant's role and its rights come along, its password unchanged; the role leaves the source", async () => {
      const withRoles = await roles.initPlatform();
      const tenant = await withRoles.tenants.create({ name: 'Roles Co', server: 'a' });
      const whoAmI = (): Promise<string> =>
        withRoles.withTenant(tenant.id, async (ctx) => {
          await ctx.query('INSERT INTO files (id, s3_path, md5_hash, sha256, size_bytes, created_at, updated_at) VALUES ($1, $2, $3, $4, 1, now(), now())', [
            randomUUID(),
            randomUUID(),
            randomBytes(16).toString('hex'),
            randomBytes(32).toString('hex'),
          ]);
          return (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
        });
      expect(await whoAmI()).toBe(tenant.databaseName);
      const result = await withRoles.tenants.move(tenant.id, 'b');
      expect(result.method).toBe('logical');
      expect(await whoAmI()).toBe(tenant.databaseName);
      expect(await on('b', tenant.databaseName, 'SELECT 1 FROM files')).toHaveLength(2);
      const role = 'SELECT 1 FROM pg_roles WHERE rolname = $1';
      expect(await on('a', 'postgres', role, [tenant.databaseName])).toEqual([]);
      // CONNECT is the role's alone on the target, as at provisioning.
      const acl = await on<{ acl: string }>('b', 'postgres', 'SELECT datacl::text AS acl FROM pg_database WHERE datname = $1', [tenant.databaseName]);
      expect(acl[0]!.acl).toContain(`${tenant.databaseName}=Tc/`);
      expect(acl[0]!.acl).not.toMatch(/[{,]=/);
      expect(await leftovers()).toEqual([]);
    });
  });
});
