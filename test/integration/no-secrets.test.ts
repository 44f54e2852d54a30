import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, TenantDbError, type Platform, type PlatformOptions, type Tenant, type User } from '../../src/index.js';
import { LOCAL_S3_CREDENTIALS } from '../../scripts/dev-servers.js';
import { decryptSecret } from '../../src/tenants/credentials.js';
import { adminQuery, dropPlatformDatabases, serverUrl, uniqueName } from '../support/env.js';
import { startPrivateS3, type PrivateS3 } from '../support/private-s3.js';
import { causeCodes } from '../support/errors.js';
import { expectNoLeaks, newSecret, passwordParam, scramParts, secretForms, SecretWatch, urlWithPassword, watchFor } from '../support/secret-watch.js';
import { runProcess } from '../support/spawn.js';
import { bytesOf } from '../support/streams.js';
import { buildCliIfStale, cliJs } from '../support/cli-build.js';
import { silentServer } from '../support/silent-server.js';

// Every secret a host gives the platform (database passwords in any URL, the S3 secret key and session
// token, user passwords) must come out of no error, log line, returned object or CLI output, in any form.

const db = newSecret('db'); // the password of a login role made for this file, in every working URL
const wrong = newSecret('wrong'); // a password the server refuses
const s3Key = newSecret('s3key'); // the S3 secret access key (s3rver does not check SigV4 signatures)
const token = newSecret('token'); // the S3 session token
const userPassword = newSecret('user');
const userPassword2 = newSecret('user2');
const role = uniqueName('tdbt_secret_role');
const mainDb = uniqueName('tdbt_secret');
const prefix = `${mainDb}/`;
const bucket = 'tdbt-secrets';
const USER_KEYS = ['createdAt', 'createdBy', 'email', 'firstName', 'id', 'isActive', 'lastName', 'updatedAt'];

/** Needles every watch looks for; grows with the hashes the servers derive. */
const needles: Array<[string, string[]]> = [
  ['db password', [...secretForms(db.secret), db.core]],
  ['refused password', [...secretForms(wrong.secret), wrong.core]],
  ['S3 secret key', [...secretForms(s3Key.secret), s3Key.core]],
  ['S3 session token', [...secretForms(token.secret), token.core]],
  ['user password', [...secretForms(userPassword.secret), userPassword.core]],
  ['second user password', [...secretForms(userPassword2.secret), userPassword2.core]],
];

const newWatch = (): SecretWatch => watchFor(needles);

/** `postgres://<user>:<password>@host:port[/database]` on the test server. */
function pgUrl(password: string, database?: string, user = role): string {
  return urlWithPassword(serverUrl(), user, password, database);
}

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let s3: PrivateS3;
const platforms: Platform[] = [];
let hang: Awaited<ReturnType<typeof silentServer>>;
let deadPort: number;
let work: string;
/** The working platform of the file, its tenants on both servers, a user and a document. */
let platform: Platform;
let home: Tenant;
let abroad: Tenant;
let user: User;
let documentId: string;
const setupWatch = newWatch();

/** Options that work: the secret in every URL (as userinfo and as a `password` parameter) and in the S3 keys. */
function workingOptions(extra: Partial<PlatformOptions> = {}): PlatformOptions {
  return {
    mainUrl: pgUrl(db.secret, mainDb),
    mainAdminUrl: passwordParam(pgUrl(db.secret, mainDb), db.secret),
    tenantServers: {
      default: { url: pgUrl(db.secret), adminUrl: pgUrl(db.secret) },
      eu1: `${pgUrl(db.secret)}?application_name=tenantdb_eu1`,
    },
    s3: {
      bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      prefix,
      credentials: { accessKeyId: LOCAL_S3_CREDENTIALS.accessKeyId, secretAccessKey: s3Key.secret, sessionToken: token.secret },
    },
    tenantSpares: 0,
    ...extra,
  };
}

function make(options: PlatformOptions): Platform {
  const p = createPlatform(options);
  platforms.push(p);
  return p;
}

/** The scrypt hash stored for a user, and its salt and key. */
async function passwordHashParts(id: string): Promise<string[]> {
  const { rows } = await adminQuery<{ h: string }>('SELECT password_hash AS h FROM users WHERE id = $1', [id], mainDb);
  const hash = rows[0]!.h;
  return [hash, ...hash.split('$').slice(2)];
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-secrets-'));
  s3 = await startPrivateS3(bucket);
  hang = await silentServer();
  deadPort = await closedPort();
  await adminQuery(`CREATE ROLE "${role}" LOGIN SUPERUSER PASSWORD '${db.secret.replace(/'/g, "''")}'`);
  needles.push(['SCRAM verifier of the db password', await scramParts(role)]);
  platform = make(workingOptions({ logger: setupWatch.logger() }));
  await platform.init();
  [home, abroad] = await Promise.all([platform.tenants.create({ name: 'Home' }), platform.tenants.create({ name: 'Abroad', server: 'eu1' })]);
  user = await platform.users.create({ firstName: 'Sec', lastName: 'Ret', email: 'sec@example.com', password: userPassword.secret });
  needles.push(['user password hash', await passwordHashParts(user.id)]);
  await platform.memberships.add(home.id, user.id, 'admin');
  documentId = (await platform.withTenant(home, (ctx) => ctx.documents.upload({ filename: 'kept.txt', body: 'kept', userId: user.id }))).id;
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(platforms.map((p) => p.close()));
  // The role owns the databases: they go first. The objects go with the private S3's folder.
  await dropPlatformDatabases(mainDb);
  await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
  await hang?.close();
  await s3?.dispose();
  await rm(work, { recursive: true, force: true });
}, 120_000);

describe('the watch itself', () => {
  it('finds a secret as given, percent-encoded in a URL, in JSON, in a log object and deep in a cause chain', () => {
    const watch = newWatch();
    watch.text('text', `a ${wrong.secret} b`);
    watch.text('url', pgUrl(db.secret, mainDb));
    const whatwg = new URL('postgres://u@h/d');
    whatwg.password = token.secret;
    watch.text('whatwg url', whatwg.toString());
    watch.value('object', { nested: [{ key: s3Key.secret }] });
    watch.logger().debug({ err: new Error('x', { cause: { config: { password: userPassword.secret } } }) }, 'line');
    watch.error('error', new Error('outer', { cause: new Error('middle', { cause: new Error(`inner ${userPassword2.secret}`) }) }));
    const labels = new Set(watch.leaks().map((leak) => leak.slice(0, leak.indexOf(' in …'))));
    expect([...labels].sort()).toEqual(
      [
        'text: refused password',
        'url: db password',
        'whatwg url: S3 session token',
        'object (inspect): S3 secret key',
        'object (JSON): S3 secret key',
        'log debug line: user password',
        'error (inspect): second user password',
      ].sort(),
    );
  });
});

describe('a working platform with secrets in every option', () => {
  it('lets none out: returned objects, the platform, its stats, its log lines', async () => {
    const watch = newWatch();
    expect(setupWatch.logLines.length).toBeGreaterThan(0);
    expectNoLeaks(setupWatch);
    const p = make(workingOptions({ logger: watch.logger() }));
    await p.init();
    watch.value('platform before use', p);
    for (const t of [home, abroad]) {
      await p.withTenant(t, async (ctx) => {
        watch.value('ctx', ctx);
        watch.value('ctx.query', await ctx.query('SELECT current_user, current_database()'));
        watch.value('ctx.transaction', await ctx.transaction((tx) => tx.query('SELECT 1 AS one')));
        const doc = await ctx.documents.upload({ filename: `${t.name}.txt`, body: Buffer.from('secret-free bytes'), userId: user.id });
        watch.value('upload', doc);
        watch.value('get', await ctx.documents.get(doc.id));
        watch.value('list', await ctx.documents.list({}));
        const download = await ctx.documents.download(doc.id);
        expect((await bytesOf(download.body)).toString()).toBe('secret-free bytes');
        watch.value('download', download);
        // A presigned URL carries the session token by design (that is how temporary credentials sign);
        // never the secret key.
        const url = new URL(await ctx.documents.url(doc.id));
        expect(url.searchParams.get('X-Amz-Security-Token')).toBe(token.secret);
        url.searchParams.delete('X-Amz-Security-Token');
        watch.text('url without its token', url.toString());
        watch.value('rename', await ctx.documents.rename(doc.id, `${t.name}-renamed.txt`));
        watch.value('delete', await ctx.documents.delete(doc.id));
      });
      watch.value('tenants.get', await p.tenants.get(t.id));
      watch.value('tenants.stats', await p.tenants.stats(t.id));
      watch.value('migrations.tenant', await p.migrations.tenant(t));
    }
    watch.value('tenants.list', await p.tenants.list({ includeInactive: true }));
    watch.value('listMembers', await p.memberships.listMembers(home.id));
    watch.value('listTenants', await p.memberships.listTenants(user.id));
    watch.value('migrations.main.executed', await p.migrations.main.executed());
    watch.value('migrations.main.pending', await p.migrations.main.pending());
    watch.value('migrations.main', p.migrations.main);
    watch.value('migrations.tenants.up', await p.migrations.tenants.up());
    watch.value('migrations.tenants.status', await p.migrations.tenants.status());
    watch.value('storage.sweep', await p.storage.sweep({ olderThanMs: 0 }));
    const extra = await p.tenants.create({ name: 'Dropped', server: 'eu1' });
    watch.value('tenants.deactivate', await p.tenants.deactivate(extra.id));
    watch.value('tenants.drop', await p.tenants.drop(extra.id));
    watch.value('platform.stats()', p.stats());
    watch.value('platform in use', p);
    await p.close();
    watch.value('platform closed', p);
    expect(watch.logLines.length).toBeGreaterThan(0);
    expectNoLeaks(watch);
  });

  it('users: no password and no hash in any User, error or log line', async () => {
    const watch = newWatch();
    const p = make(workingOptions({ logger: watch.logger() }));
    const email = `u-${randomBytes(4).toString('hex')}@example.com`;
    const created = await p.users.create({ firstName: 'A', lastName: 'B', email, password: userPassword2.secret });
    const hash = await passwordHashParts(created.id);
    watch.needle('second user password hash', ...hash);
    const results: User[] = [
      created,
      await p.users.get(created.id),
      (await p.users.findByEmail(email))!,
      await p.users.authenticate(email, userPassword2.secret),
      await p.users.update(created.id, { password: userPassword.secret }),
      await p.users.authenticate(email.toUpperCase(), userPassword.secret),
      await p.users.deactivate(created.id),
      await p.users.activate(created.id),
      ...(await p.users.list({ limit: 100 })).items,
    ];
    for (const [i, u] of results.entries()) {
      expect(Object.keys(u).sort()).toEqual(USER_KEYS);
      watch.value(`user ${i}`, u);
    }
    // The update replaced the hash: the new one must not come out either.
    watch.needle('updated user password hash', ...(await passwordHashParts(created.id)));
    const failures: Array<[string, () => Promise<unknown>, string]> = [
      ['wrong password', () => p.users.authenticate(email, userPassword2.secret), 'INVALID_CREDENTIALS'],
      ['unknown email', () => p.users.authenticate('nobody@example.com', userPassword.secret), 'INVALID_CREDENTIALS'],
      ['duplicate email', () => p.users.create({ firstName: 'A', lastName: 'B', email, password: userPassword.secret }), 'CONFLICT'],
      ['bad email', () => p.users.create({ firstName: 'A', lastName: 'B', email: 'no-at-sign', password: userPassword.secret }), 'VALIDATION'],
      ['over-long password', () => p.users.create({ firstName: 'A', lastName: 'B', email: 'x@example.com', password: userPassword.secret.repeat(60) }), 'VALIDATION'],
      ['bad id', () => p.users.update('not-an-id', { password: userPassword.secret }), 'NOT_FOUND'],
    ];
    for (const [what, call, code] of failures) {
      const err = await watch.rejection(what, call());
      expect(err, what).toBeInstanceOf(TenantDbError);
      expect((err as TenantDbError).code, what).toBe(code);
    }
    watch.value('listMembers', await p.memberships.listMembers(home.id));
    expectNoLeaks(watch);
  });
});

describe('tenantRoles: the credentials key and the tenant roles\' passwords', () => {
  it('appear in no result, error, log line or rendering of the platform, working or failing', async () => {
    const watch = newWatch();
    const key = randomBytes(32);
    watch.needle('credentialsKey', key.toString('hex'), key.toString('base64'), key.toString('base64url'));
    const roles = { tenantRoles: true, credentialsKey: key.toString('base64'), tenantCacheMs: 0 };
    const p = make(workingOptions({ ...roles, logger: watch.logger() }));
    await p.init();
    const t = await p.tenants.create({ name: 'With a role' });
    watch.value('tenants.create', t);
    const rolePassword = async (): Promise<string> => {
      const { rows } = await adminQuery<{ secret: string }>('SELECT secret FROM tenant_credentials WHERE tenant_id = $1', [t.id], mainDb);
      return decryptSecret(key, t.id, rows[0]!.secret);
    };
    const first = await rolePassword();
    const asRole = async (platform: Platform): Promise<unknown> =>
      platform.withTenant(t, async (ctx) => (await ctx.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    expect(await asRole(p)).toBe(t.databaseName);
    watch.value('tenants.rotateCredentials', await p.tenants.rotateCredentials(t.id));
    const second = await rolePassword();
    watch.needle('tenant role password', ...secretForms(first), ...secretForms(second));
    watch.needle('SCRAM verifier of a tenant role', ...(await scramParts(t.databaseName)));
    expect(await asRole(p)).toBe(t.databaseName);
    watch.value('tenants.get', await p.tenants.get(t.id));
    watch.value('platform.stats()', p.stats());
    watch.value('platform with roles', p);
    // Failing: the role's password changed behind the platform's back (refused), and another key (undecryptable).
    await adminQuery(`ALTER ROLE "${t.databaseName}" PASSWORD 'changed-behind-its-back'`);
    const refused = make(workingOptions({ ...roles, logger: watch.logger() }));
    expect(await watch.rejection('a tenant role refused', asRole(refused))).toBeInstanceOf(TenantDbError);
    const otherKey = make(workingOptions({ ...roles, credentialsKey: randomBytes(32), logger: watch.logger() }));
    expect(await watch.rejection('a credentialsKey that is not the one', asRole(otherKey))).toMatchObject({ code: 'DATABASE' });
    watch.value('platform after failures', refused);
    await p.tenants.rotateCredentials(t.id);
    expect(await asRole(p)).toBe(t.databaseName);
    await p.tenants.drop(t.id);
    expectNoLeaks(watch);
  });
});

describe('failures with secrets in every option', () => {
  it('a refused password (main and tenant servers): errors name no secret, cause kept', async () => {
    const watch = newWatch();
    const refused = make({
      ...workingOptions({ logger: watch.logger() }),
      mainUrl: pgUrl(wrong.secret, mainDb),
      mainAdminUrl: passwordParam(pgUrl(wrong.secret, mainDb), wrong.secret),
      tenantServers: { default: pgUrl(wrong.secret), eu1: { url: pgUrl(wrong.secret), adminUrl: pgUrl(wrong.secret) } },
    });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['init', () => refused.init()],
      ['users.create', () => refused.users.create({ firstName: 'A', lastName: 'B', email: 'a@example.com', password: userPassword.secret })],
      ['users.authenticate', () => refused.users.authenticate('sec@example.com', userPassword.secret)],
      ['tenants.list', () => refused.tenants.list()],
      ['tenants.create', () => refused.tenants.create({ name: 'Never' })],
      ['withTenant', () => refused.withTenant(home.id, (ctx) => ctx.query('SELECT 1'))],
      ['migrations.main.pending', () => refused.migrations.main.pending()],
      ['storage.sweep', () => refused.storage.sweep()],
    ];
    for (const [what, call] of calls) {
      const err = (await watch.rejection(what, call())) as TenantDbError;
      expect(err, what).toBeInstanceOf(TenantDbError);
      // The driver's refusal stays reachable as the cause (API.md).
      expect(causeCodes(err), what).toContain('28P01');
    }

    // The main database answers; the tenant servers refuse.
    const servers = make({
      ...workingOptions({ logger: watch.logger() }),
      tenantServers: { default: pgUrl(wrong.secret), eu1: { url: pgUrl(wrong.secret), adminUrl: pgUrl(wrong.secret) } },
    });
    for (const t of [home, abroad]) {
      const err = (await watch.rejection(`withTenant ${t.name}`, servers.withTenant(t, (ctx) => ctx.query('SELECT 1')))) as TenantDbError;
      expect(causeCodes(err)).toContain('28P01');
      await watch.rejection(`tenants.stats ${t.name}`, servers.tenants.stats(t.id));
    }
    await watch.rejection('tenants.create on eu1', servers.tenants.create({ name: 'Never', server: 'eu1' }));
    const up = await servers.migrations.tenants.up();
    expect(up.failed.length).toBeGreaterThan(0);
    watch.value('migrations.tenants.up', up);
    for (const f of up.failed) watch.error(`migrations.tenants.up: ${f.tenantId}`, f.error);
    watch.value('migrations.tenants.status', await servers.migrations.tenants.status().catch((err: unknown) => err));
    watch.value('platform.stats()', servers.stats());
    watch.value('platform', servers);
    await servers.close();
    await refused.close();
    expectNoLeaks(watch);
  });

  it('an unreachable port and a server that never answers: UNAVAILABLE, no secret', async () => {
    const watch = newWatch();
    for (const [what, port] of [
      ['unreachable', deadPort],
      ['hung', hang.port],
    ] as const) {
      const at = (password: string, database?: string): string => {
        const u = new URL(pgUrl(password, database));
        u.port = String(port);
        return u.toString();
      };
      const p = make({
        ...workingOptions({ logger: watch.logger(), pool: { connectTimeoutMs: 500, acquireTimeoutMs: 2_000 } }),
        mainUrl: at(db.secret, mainDb),
        mainAdminUrl: passwordParam(at(db.secret, mainDb), db.secret),
        tenantServers: { default: at(db.secret), eu1: { url: at(db.secret), adminUrl: at(db.secret) } },
      });
      for (const [call, run] of [
        ['init', () => p.init()],
        ['users.get', () => p.users.get(user.id)],
        ['withTenant', () => p.withTenant(home.id, (ctx) => ctx.query('SELECT 1'))],
      ] as const) {
        const err = (await watch.rejection(`${what} ${call}`, run())) as TenantDbError;
        expect(err, `${what} ${call}`).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
        expect(err.cause, `${what} ${call}`).toBeDefined();
      }
      // The main database answers; the tenant servers do not.
      const servers = make({
        ...workingOptions({ logger: watch.logger(), pool: { connectTimeoutMs: 500, acquireTimeoutMs: 2_000 } }),
        tenantServers: { default: at(db.secret), eu1: { url: at(db.secret), adminUrl: at(db.secret) } },
      });
      for (const t of [home, abroad]) {
        const err = (await watch.rejection(`${what} withTenant ${t.name}`, servers.withTenant(t, (ctx) => ctx.query('SELECT 1')))) as TenantDbError;
        expect(err.code).toBe('UNAVAILABLE');
      }
      const up = await servers.migrations.tenants.up();
      expect(up.failed.length).toBeGreaterThan(0);
      watch.value(`${what} migrations.tenants.up`, up);
      for (const f of up.failed) watch.error(`${what} migrations.tenants.up: ${f.tenantId}`, f.error);
      watch.value(`${what} platform`, servers);
      watch.value(`${what} stats`, servers.stats());
      await servers.close();
      await p.close();
    }
    expectNoLeaks(watch);
  });

  it('S3: an unknown key id with the secret key and token, a missing bucket, an unreachable endpoint: STORAGE, no secret', async () => {
    const watch = newWatch();
    const base = workingOptions().s3;
    const variants: Array<[string, PlatformOptions['s3']]> = [
      ['bad credentials', { ...base, credentials: { accessKeyId: 'NO-SUCH-KEY-ID', secretAccessKey: s3Key.secret, sessionToken: token.secret } }],
      ['missing bucket', { ...base, bucket: `tdbt-missing-${randomBytes(4).toString('hex')}` }],
      ['unreachable endpoint', { ...base, endpoint: `http://127.0.0.1:${deadPort}` }],
    ];
    for (const [what, s3Options] of variants) {
      const p = make(workingOptions({ s3: s3Options, logger: watch.logger() }));
      await p.withTenant(home, async (ctx) => {
        const upload = (await watch.rejection(`${what} upload`, ctx.documents.upload({ filename: 'x.txt', body: 'x', userId: user.id }))) as TenantDbError;
        expect(upload.code, what).toBe('STORAGE');
        expect(upload.cause, what).toBeDefined();
        const download = (await watch.rejection(`${what} download`, ctx.documents.download(documentId).then((d) => bytesOf(d.body)))) as TenantDbError;
        expect(download.code, what).toBe('STORAGE');
      });
      const sweep = (await watch.rejection(`${what} sweep`, p.storage.sweep({ tenantId: home.id, olderThanMs: 0 }))) as TenantDbError;
      expect(sweep.code, what).toBe('STORAGE');
      watch.value(`${what} platform`, p);
      await p.close();
    }
    expectNoLeaks(watch);
  });

  it('invalid options: VALIDATION naming the option, no secret', () => {
    const watch = newWatch();
    const good = workingOptions();
    const cases: Array<[string, Partial<PlatformOptions> | Record<string, unknown>]> = [
      ['mainUrl', { mainUrl: `mysql://${role}:${encodeURIComponent(db.secret)}@127.0.0.1/x` }],
      ['mainUrl', { mainUrl: pgUrl(db.secret) }],
      ['mainUrl', { mainUrl: `postgres://${role}:${db.secret}@127.0.0.1:99999/x` }],
      ['mainAdminUrl', { mainAdminUrl: `http://${role}:${encodeURIComponent(db.secret)}@127.0.0.1/x` }],
      ['mainAdminUrl', { mainAdminUrl: pgUrl(db.secret) }],
      ['tenantServers.eu1', { tenantServers: { eu1: `https://${role}:${encodeURIComponent(db.secret)}@h` } }],
      ['tenantServers.eu1.url', { tenantServers: { eu1: { url: `not a url ${db.secret}` } } }],
      ['tenantServers.eu1.adminUrl', { tenantServers: { eu1: { url: pgUrl(db.secret), adminUrl: `ftp://u:${encodeURIComponent(db.secret)}@h` } } }],
      ['pool.connectTimeoutMs', { pool: { connectTimeoutMs: -1 } }],
      ['s3.bucket', { s3: { ...good.s3, bucket: '' } }],
      ['s3.partSize', { s3: { ...good.s3, partSize: 1 } }],
      ['logger', { logger: { info: () => {} } }],
    ];
    for (const [option, patch] of cases) {
      const err = watch.thrown(option, () => make({ ...good, ...patch } as PlatformOptions)) as TenantDbError;
      expect(err, option).toBeInstanceOf(TenantDbError);
      expect(err.code, option).toBe('VALIDATION');
      expect(err.message, option).toContain(option);
    }
    expectNoLeaks(watch);
  });
});

describe('tenantdb CLI with secrets in its environment, flags and config module', () => {
  const env = (extra: Record<string, string>): Record<string, string | undefined> => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    TENANTDB_S3_BUCKET: bucket,
    TENANTDB_S3_ENDPOINT: s3.endpoint,
    TENANTDB_S3_REGION: 'us-east-1',
    TENANTDB_S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3Key.secret,
    AWS_SESSION_TOKEN: token.secret,
    ...extra,
  });
  /** Runs the CLI, records its output, and checks its exit code (`'failed'`: any but 0). */
  const cli = async (watch: SecretWatch, args: string[], environment: Record<string, string | undefined>, exit: number | 'failed'): Promise<void> => {
    const run = await runProcess(process.execPath, [cliJs, ...args], environment);
    watch.text(`${args[0]} ${args[1]} stdout`, run.stdout);
    watch.text(`${args[0]} ${args[1]} stderr`, run.stderr);
    if (exit === 'failed') expect(run.code, run.stderr).not.toBe(0);
    else expect(run.code, run.stderr).toBe(exit);
  };

  beforeAll(async () => {
    // The CLI runs from dist/.
    await buildCliIfStale(work);
  }, 120_000);

  it('works and fails without printing a secret', async () => {
    const watch = newWatch();
    // From the environment (the default server only), then from a config module (both servers).
    const working = env({ TENANTDB_MAIN_URL: pgUrl(db.secret, mainDb) });
    await cli(watch, ['tenants', 'create', '--name', 'From CLI', '--json', '--verbose'], working, 0);
    await cli(watch, ['tenants', 'list', '--json', '--verbose'], working, 0);
    const configured = path.join(work, 'working.config.mjs');
    await writeFile(configured, `export default ${JSON.stringify(workingOptions())};\n`);
    for (const args of [['status', '--json'], ['migrate'], ['sweep', '--json'], ['tenants', 'list']]) {
      await cli(watch, [...args, '--verbose', '--config', configured], env({}), 0);
    }

    // The failures are independent of each other: run four at a time.
    const failures: Array<[string[], Record<string, string | undefined>, number | 'failed']> = [];
    // Refused, unreachable, hung.
    const refused = env({ TENANTDB_MAIN_URL: pgUrl(wrong.secret, mainDb), TENANTDB_MAIN_ADMIN_URL: pgUrl(wrong.secret, mainDb) });
    const dead = new URL(pgUrl(db.secret, mainDb));
    dead.port = String(deadPort);
    const hung = new URL(pgUrl(db.secret, mainDb));
    hung.port = String(hang.port);
    for (const environment of [refused, env({ TENANTDB_MAIN_URL: dead.toString() })]) {
      for (const args of [['init', '--verbose'], ['migrate', '--json', '--verbose']]) failures.push([args, environment, 1]);
    }
    failures.push([['tenants', 'list', '--verbose'], env({ TENANTDB_MAIN_URL: hung.toString() }), 1]);

    // What was typed where it does not belong: a URL with a password configured nowhere (only its shape
    // gives it away), the configured password or session token pasted as a tenant id, an unknown option.
    for (const args of [
      ['tenants', 'drop', pgUrl(wrong.secret, mainDb), '--yes', '--verbose'],
      ['migrate', 'tenants', '--tenant', pgUrl(wrong.secret, mainDb), '--json'],
      ['migrate', 'tenants', '--tenant', db.secret],
      ['migrate', pgUrl(wrong.secret, mainDb)],
      [`--main-url=${pgUrl(wrong.secret, mainDb)}`, 'status'],
      ['status', '--config', pgUrl(wrong.secret, mainDb)],
    ]) {
      failures.push([args, working, 'failed']);
    }
    const { AWS_SESSION_TOKEN: _token, AWS_SECRET_ACCESS_KEY: _key, ...noAwsSecrets } = env({});
    failures.push([['migrate', 'tenants', '--tenant', token.secret, '--config', configured], noAwsSecrets, 1]);

    // A config module: secrets in every URL and in the S3 keys, refused; then with an invalid option.
    const options = { ...workingOptions(), mainUrl: pgUrl(wrong.secret, mainDb) };
    const module = path.join(work, 'secret.config.mjs');
    await writeFile(module, `export default ${JSON.stringify(options)};\n`);
    failures.push([['status', '--verbose', '--config', module], env({}), 1]);
    failures.push([['tenants', 'list', '--json', '--config', module], env({}), 1]);
    const invalid = path.join(work, 'invalid.config.mjs');
    await writeFile(invalid, `export default ${JSON.stringify({ ...options, tenantServers: { eu1: `http://u:${encodeURIComponent(db.secret)}@h` } })};\n`);
    failures.push([['status', '--config', invalid], env({}), 3]);
    const queue = [...failures];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await cli(watch, ...next);
      }),
    );
    expectNoLeaks(watch);
  }, 180_000);
});
