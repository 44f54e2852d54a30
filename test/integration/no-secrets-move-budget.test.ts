import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, TenantDbError, type MoveProgressEvent, type Platform, type PlatformOptions, type Tenant } from '../../src/index.js';
import { freePort, startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { dumpSchema, restoreSection } from '../../src/tenants/pg-dump.js';
import { adminQuery, dropPlatformDatabases, serverUrl, uniqueName } from '../support/env.js';
import { causeCodes } from '../support/errors.js';
import { expectNoLeaks, newSecret, passwordParam, scramParts, secretForms, SecretWatch, urlWithPassword, watchFor } from '../support/secret-watch.js';

// no-secrets.test.ts for tenants.move and pool.sharedBudget: the database password in every URL, and a
// refused one, must come out of no error (its cause chain included), log line, progress event, result or
// rendering of the platform. The moves need a second PostgreSQL server of the file's own, at
// wal_level = logical, so that a move back takes the logical path, whose subscription carries the source's
// admin URL, password included.
const skipMoves = process.env.TENANTDB_TEST_PG_URL ? 'TENANTDB_TEST_PG_URL is set: no PostgreSQL server of the test\'s own' : '';
if (skipMoves) console.log(`no-secrets-move-budget: moves skipped: ${skipMoves}`);

const db = newSecret('db'); // the password of a login role made for this file, in every working URL
const wrong = newSecret('wrong'); // a password the servers refuse
const role = uniqueName('tdbt_secret_mover');
const mainDb = uniqueName('tdbt_secret_move');

const needles: Array<[string, string[]]> = [
  ['db password', [...secretForms(db.secret), db.core]],
  ['refused password', [...secretForms(wrong.secret), wrong.core]],
];

const newWatch = (): SecretWatch => watchFor(needles);

/** `postgres://<role>:<password>@host:port[/database]` on `base`'s server (the harness's by default), on `port` if given. */
function pgUrl(password: string, options: { database?: string; base?: string; port?: number } = {}): string {
  const u = new URL(urlWithPassword(options.base ?? serverUrl(), role, password, options.database));
  if (options.port !== undefined) u.port = String(options.port);
  return u.toString();
}

let second: RunningServer | undefined;
let deadPort: number;
const platforms: Platform[] = [];
let platform: Platform;
let home: Tenant;
const setupWatch = newWatch();

/** The second server's URL with `password`. */
const onSecond = (password: string): string => pgUrl(password, { base: second!.url });

/**
 * A platform, closed after the file, on options that work (with `extra` on top): the secret in every URL, on
 * the harness's server (`default`) and the second (`second`).
 */
function make(extra: Partial<PlatformOptions> = {}): Platform {
  const p = createPlatform({
    mainUrl: pgUrl(db.secret, { database: mainDb }),
    mainAdminUrl: passwordParam(pgUrl(db.secret, { database: mainDb }), db.secret),
    tenantServers: {
      default: { url: pgUrl(db.secret), adminUrl: pgUrl(db.secret) },
      ...(second ? { second: `${onSecond(db.secret)}?application_name=tenantdb_second` } : {}),
    },
    // No document is stored: the bucket is never reached.
    s3: { bucket: 'unused', endpoint: `http://127.0.0.1:${deadPort}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } },
    tenantSpares: 0,
    ...extra,
  });
  platforms.push(p);
  return p;
}

const createRole = `CREATE ROLE "${role}" LOGIN SUPERUSER PASSWORD '${db.secret.replace(/'/g, "''")}'`;

beforeAll(async () => {
  deadPort = await freePort();
  await adminQuery(createRole);
  needles.push(['SCRAM verifier of the db password', await scramParts(role)]);
  if (!skipMoves) {
    second = await startPostgres({ settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 } }, false);
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    try {
      await client.query(createRole);
    } finally {
      await client.end();
    }
  }
  platform = make({ logger: setupWatch.logger() });
  await platform.init();
  home = await platform.tenants.create({ name: 'Home', server: 'default' });
  await platform.withTenant(home, (ctx) => ctx.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); INSERT INTO notes (body) VALUES (\'kept\')'));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(platforms.map((p) => p.close()));
  // The role owns the databases: they go first. The second server goes with its temp folder.
  await dropPlatformDatabases(mainDb);
  await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
  await second?.stop();
}, 60_000);

/** What a platform lets out after the work of a test: the tenant, stats(), the platform itself. */
async function watchPlatform(watch: SecretWatch, p: Platform, where = ''): Promise<void> {
  watch.value(`${where}tenants.get`, await p.tenants.get(home.id));
  watch.value(`${where}platform.stats()`, p.stats());
  watch.text(`${where}inspect(platform)`, inspect(p, { depth: Infinity }));
}

/** A move's result or error, its progress events and its log lines, recorded. */
async function watchMove(watch: SecretWatch, what: string, p: Platform, id: string, to: string, method?: 'copy'): Promise<unknown> {
  const events: MoveProgressEvent[] = [];
  const moving = p.tenants.move(id, to, { ...(method ? { method } : {}), onProgress: (e) => events.push(e) });
  const outcome = await moving.then(
    (result) => {
      watch.value(`${what} result`, result);
      return result;
    },
    (err: unknown) => {
      watch.error(what, err);
      return err;
    },
  );
  expect(events.length, what).toBeGreaterThan(0);
  watch.value(`${what} progress`, events);
  return outcome;
}

describe.skipIf(Boolean(skipMoves))('tenants.move with secrets in both servers\' URLs', () => {
  it('a copy there and the logical path back: results, progress and log lines name no secret', async () => {
    const watch = newWatch();
    const p = make({ logger: watch.logger() });
    // The harness's server does not publish (wal_level replica): a copy.
    const there = (await watchMove(watch, 'move to second', p, home.id, 'second')) as { method: string; to: string };
    expect(there).toMatchObject({ to: 'second' });
    expect(['copy', 'dump']).toContain(there.method);
    // The second server publishes: the harness's server subscribes with the second's admin URL.
    const back = (await watchMove(watch, 'move back', p, home.id, 'default')) as { method: string; to: string };
    expect(back).toMatchObject({ to: 'default', method: 'logical' });
    expect(await p.withTenant(home.id, async (ctx) => (await ctx.query<{ body: string }>('SELECT body FROM notes')).rows)).toEqual([{ body: 'kept' }]);
    await watchPlatform(watch, p);
    expectNoLeaks(watch);
    expectNoLeaks(setupWatch);
  }, 30_000);

  it('to a server that refuses the password or is unreachable: errors, causes, progress and log lines name no secret', async () => {
    const watch = newWatch();
    const p = make({
      logger: watch.logger(),
      pool: { connectTimeoutMs: 500, acquireTimeoutMs: 2_000 },
      tenantServers: {
        default: { url: pgUrl(db.secret), adminUrl: pgUrl(db.secret) },
        refused: onSecond(wrong.secret),
        dead: { url: pgUrl(db.secret, { port: deadPort }), adminUrl: pgUrl(db.secret, { port: deadPort }) },
      },
    });
    const refused = (await watchMove(watch, 'move to a server that refuses', p, home.id, 'refused')) as TenantDbError;
    expect(refused).toBeInstanceOf(TenantDbError);
    expect(causeCodes(refused)).toContain('28P01');
    const dead = (await watchMove(watch, 'move to an unreachable server', p, home.id, 'dead')) as TenantDbError;
    expect(dead).toMatchObject({ code: 'UNAVAILABLE' });
    // The tenant stayed where it was and still answers.
    expect(await p.withTenant(home.id, async (ctx) => (await ctx.query('SELECT 1')).rowCount)).toBe(1);
    await watchPlatform(watch, p);
    expectNoLeaks(watch);
  }, 30_000);

  it('a subscription that cannot connect to the source: the warning of the fallback to a copy names no secret', async () => {
    const watch = newWatch();
    // libpq (the subscription) honours target_session_attrs and refuses a primary; pg (the platform) ignores it.
    const p = make({
      logger: watch.logger(),
      tenantServers: { default: pgUrl(db.secret), second: `${onSecond(db.secret)}?target_session_attrs=read-only` },
    });
    const away = await p.tenants.create({ name: 'Away', server: 'second' });
    const result = await watchMove(watch, 'move with a failing subscription', p, away.id, 'default');
    expect(result).toMatchObject({ to: 'default' });
    expect((result as { method: string }).method).not.toBe('logical');
    const fallback = watch.logLines.filter((l) => l.level === 'warn' && /copying instead/.test(l.msg ?? ''));
    expect(fallback).toHaveLength(1);
    await watchPlatform(watch, p);
    expectNoLeaks(watch);
  }, 30_000);
});

describe('pg_dump and pg_restore of a move', () => {
  it('get the password in PGPASSWORD, never on their command line (which ps shows), a password parameter included', async () => {
    const watch = newWatch();
    // Stand-ins that print their arguments and fail, and keep the PGPASSWORD they were given.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-fake-pg-dump-'));
    const saved = process.env.PATH;
    try {
      for (const tool of ['pg_dump', 'pg_restore']) {
        await writeFile(path.join(bin, tool), `#!/bin/sh\nprintf %s "$PGPASSWORD" > "${bin}/${tool}.password"\necho "$@" >&2\nexit 1\n`);
        await chmod(path.join(bin, tool), 0o755);
      }
      process.env.PATH = `${bin}${path.delimiter}${saved ?? ''}`;
      const inUserinfo = pgUrl(db.secret, { database: 'tenant_x' });
      for (const [what, url] of [
        ['userinfo', inUserinfo],
        ['parameter', passwordParam(inUserinfo, db.secret)],
      ] as const) {
        const file = path.join(bin, 'schema.dump');
        for (const [tool, run] of [
          ['pg_dump', () => dumpSchema(url, file)],
          ['pg_restore', () => restoreSection(url, file, 'pre-data')],
        ] as const) {
          const err = (await watch.rejection(`${what} ${tool}`, run())) as TenantDbError;
          expect(err).toMatchObject({ code: 'DATABASE' });
          // The cause holds what the tool printed: its command line.
          expect(String((err.cause as Error).message), `${what} ${tool}`).toContain('--dbname=postgres://');
          expect(await readFile(path.join(bin, `${tool}.password`), 'utf8'), `${what} ${tool}`).toBe(db.secret);
        }
      }
    } finally {
      process.env.PATH = saved;
      await rm(bin, { recursive: true, force: true });
    }
    expectNoLeaks(watch);
  });
});

describe('pool.sharedBudget with secrets in the servers\' URLs', () => {
  it('a control connection refused or unreachable: DATABASE or UNAVAILABLE, and no error, log line or stats() names a secret', async () => {
    const watch = newWatch();
    const adminUrls: Array<[string, string]> = [
      ['refused', pgUrl(wrong.secret)],
      ['unreachable', pgUrl(db.secret, { port: deadPort })],
    ];
    for (const [what, adminUrl] of adminUrls) {
      // The tenant connections would work: only the control connection, on adminUrl, fails.
      const p = make({
        logger: watch.logger(),
        pool: { connectTimeoutMs: 500, acquireTimeoutMs: 2_000, sharedBudget: { maxConnections: 4 } },
        tenantServers: { default: { url: pgUrl(db.secret), adminUrl } },
      });
      for (const attempt of [1, 2]) {
        const err = await watch.rejection(`${what} withTenant ${attempt}`, p.withTenant(home.id, (ctx) => ctx.query('SELECT 1')));
        expect(err, what).toBeInstanceOf(TenantDbError);
        // A refused password is the host's to fix (DATABASE, the driver's 28P01 as the cause); no server is UNAVAILABLE.
        if (what === 'refused') expect(causeCodes(err), what).toEqual(['DATABASE', '28P01']);
        else expect(err, what).toMatchObject({ code: 'UNAVAILABLE', retryable: true, cause: { code: 'ECONNREFUSED' } });
      }
      await watchPlatform(watch, p, `${what} `);
      await p.close();
    }
    expectNoLeaks(watch);
  }, 30_000);

  it('working and exhausted, the password in the userinfo and as a parameter: no result, error, stats() or log line names it', async () => {
    const watch = newWatch();
    const p = make({
      logger: watch.logger(),
      pool: { acquireTimeoutMs: 500, sharedBudget: { maxConnections: 1 } },
      tenantServers: { default: { url: pgUrl(db.secret), adminUrl: passwordParam(pgUrl(db.secret), db.secret) } },
    });
    const other = await p.tenants.create({ name: 'Other', server: 'default' });
    watch.value('withTenant', await p.withTenant(home.id, (ctx) => ctx.query('SELECT 1 AS one')));
    // The one slot stays with home's connection, held by a transaction, while other's scope waits for it, then times out.
    await p.withTenant(home.id, (ctx) =>
      ctx.transaction(async (tx) => {
        await tx.query('SELECT 1');
        const err = (await watch.rejection('budget exhausted', p.withTenant(other.id, (c) => c.query('SELECT 1')))) as TenantDbError;
        expect(err).toMatchObject({ code: 'UNAVAILABLE' });
      }),
    );
    await watchPlatform(watch, p);
    expectNoLeaks(watch);
  }, 30_000);
});
