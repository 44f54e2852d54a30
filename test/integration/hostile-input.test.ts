import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TenantDbError, type Document, type Platform, type Tenant, type TenantContext, type User } from '../../src/index.js';
import { adminQuery, listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
const s3 = useTestS3Client();
let platform: Platform;
let ada: User;
let bob: User;
let tenant: Tenant;
let doc: Document;
const PASSWORD = 'correct horse battery';
// The documented shape of a tenant database name.
const SHAPE = /^tenant_(?:[a-z0-9]+(?:_[a-z0-9]+)*_)?[0-9a-f]{8}$/;

beforeAll(async () => {
  platform = await env.initPlatform();
  ada = await platform.users.create({ firstName: 'Ada', lastName: 'Lovelace', email: 'Ada.Lovelace@Example.io', password: PASSWORD });
  bob = await platform.users.create({ firstName: 'Bob', lastName: 'Hostile', email: 'bob@example.io', password: PASSWORD });
  tenant = await platform.tenants.create({ name: 'Hostile input', createdBy: ada.id });
  await platform.memberships.add(tenant.id, bob.id, 'user');
  doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'first.txt', body: 'one', userId: ada.id }));
  await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'second.txt', body: 'two', userId: ada.id }));
});
afterAll(() => platform.close());

/** `ok`, the code of the TenantDbError it rejected with, or what else it threw (always a failure here). */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (err) {
    if (err instanceof TenantDbError) return err.code;
    return `not a TenantDbError: ${(err as Error)?.name}: ${(err as Error)?.message}`;
  }
}

describe('tenant names', () => {
  const shared = 'Acme Corporation International Holdings Europe Division';
  const accepted = [
    `Robert'); DROP DATABASE postgres;--`,
    `O'Brien "Quoted" & Sons; Ltd.`,
    '$$; SELECT pg_sleep(10); $$',
    '"; DROP TABLE tenants; --',
    '株式会社ハッカー'.repeat(4), // 32 characters, 96 bytes: no ASCII letter or digit at all
    `Ünïcødé GmbH ${'é'.repeat(60)}`, // 73 characters, 134 bytes
    '😀'.repeat(40), // 160 bytes of 4-byte characters
    'KELVIN \u212A and \u0130stanbul', // characters whose lower case is ASCII
    '\u202Egnp.exe\u202C', // bidi overrides are allowed in a display name: it never reaches a path
    '   padded on both sides   ',
    // Twelve names whose slugs are the same 47 characters: only the id's 8 hex tell their databases apart.
    ...Array.from({ length: 12 }, (_, i) => `${shared} ${i} ${'x'.repeat(i)}`),
  ];

  it('creates a database for every hostile name: each exists in pg_database, all names distinct, each of the documented shape', async () => {
    const created = await Promise.all(accepted.map((name) => platform.tenants.create({ name })));
    const names = created.map((t) => t.databaseName);
    expect(new Set(names).size).toBe(accepted.length);
    created.forEach((t, i) => {
      expect(t.name).toBe(accepted[i]!.trim());
      expect(t.databaseName).toMatch(SHAPE);
      expect(Buffer.byteLength(t.databaseName)).toBeLessThanOrEqual(63);
      expect(t.databaseName.endsWith(`_${t.id.slice(0, 8)}`)).toBe(true);
    });
    // The shared-prefix names all got one slug, cut to 47 characters (54 bytes with `tenant_`).
    const sharing = created.slice(-12).map((t) => t.databaseName.slice(0, -9));
    expect(new Set(sharing)).toEqual(new Set(['tenant_acme_corporation_international_holdings_europe']));
    const { rows } = await adminQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
    expect(rows.map((r) => r.datname).sort()).toEqual([...names].sort());
    // Stored as given: the registry returns the same name, and the scope is on the tenant's own database.
    for (const t of created) {
      expect((await platform.tenants.get(t.databaseName)).name).toBe(t.name);
      const { rows: db } = await platform.withTenant(t.id, (ctx) => ctx.query<{ db: string }>('SELECT current_database() AS db'));
      expect(db[0]!.db).toBe(t.databaseName);
    }
  });

  it.each([
    ['empty', ''],
    ['only spaces', '   '],
    ['NUL inside', 'nul\u0000inside'],
    ['only a NUL', '\u0000'],
    ['tab', 'tab\tname'],
    ['newline', 'two\nlines'],
    ['escape sequence', '\u001b[31mred'],
    ['DEL', 'del\u007f'],
    ['C1 control', 'next\u0085line'],
    ['lone surrogate', 'half \ud800 a pair'],
    ['256 characters', 'x'.repeat(256)],
    ['not a string', 42],
    ['null', null],
  ])('refuses a name that is %s with VALIDATION, registering nothing', async (_what, name) => {
    const before = (await platform.tenants.list({ includeInactive: true })).length;
    expect(await rejectionCode(platform.tenants.create({ name: name as string }))).toBe('VALIDATION');
    const { rows } = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM tenants', [], env.mainDb);
    expect(Number(rows[0]!.n)).toBe(before);
  });
});

describe('filenames', () => {
  const user = randomUUID();
  const trusted = <T>(fn: (ctx: TenantContext) => Promise<T>): Promise<T> => platform.withTenant(tenant, fn);
  let target: Document;
  beforeAll(async () => {
    target = await trusted((ctx) => ctx.documents.upload({ filename: 'target.txt', body: 'target', userId: user }));
  });

  it.each([
    ['traversal', '../../etc/passwd'],
    ['Windows traversal', '..\\..\\boot.ini'],
    ['absolute path', '/etc/passwd'],
    ['traversal inside', 'a/../../b'],
    ['dot dot', '..'],
    ['NUL', 'report.pdf\u0000.exe'],
    ['bell', 'ding\u0007.txt'],
    ['terminal escape', '\u001b]0;owned\u0007.txt'],
    ['DEL', 'x\u007f.txt'],
    ['C1 control', 'x\u0085.txt'],
    ['right-to-left override', 'invoice\u202Efdp.exe'],
    ['left-to-right override', '\u202Dtxt.exe'],
    ['bidi isolate', 'a\u2067b\u2069.txt'],
    ['lone surrogate', 'x\udc00.txt'],
    ['256 bytes of ASCII', `${'x'.repeat(252)}.txt`],
    ['256 bytes of 4-byte characters', '😀'.repeat(64)],
  ])('refuses a filename with %s (upload and rename) with VALIDATION, storing nothing', async (_what, filename) => {
    const keys = (): Promise<string[]> => listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${tenant.id}/`);
    const before = await keys();
    await trusted(async (ctx) => {
      expect(await rejectionCode(ctx.documents.upload({ filename, body: 'x', userId: user }))).toBe('VALIDATION');
      expect(await rejectionCode(ctx.documents.rename(target.id, filename))).toBe('VALIDATION');
      expect((await ctx.documents.get(target.id)).filename).toBe('target.txt');
      const { rows } = await ctx.query<{ n: string }>('SELECT count(*) AS n FROM documents WHERE user_id = $1', [user]);
      expect(Number(rows[0]!.n)).toBe(1);
    });
    expect(await keys()).toEqual(before);
  });

  it('stores look-alike but harmless names literally', async () => {
    await trusted(async (ctx) => {
      for (const filename of ['%2e%2e%2fetc%2fpasswd', '....', '..hidden', 'CON', 'a:b', ' leading space', 'mark\u200F.txt', 'x'.repeat(255)]) {
        const stored = await ctx.documents.upload({ filename, body: filename, userId: user });
        expect(stored.filename).toBe(filename);
        await ctx.documents.delete(stored.id);
      }
    });
  });

  it('takes the NFC and NFD spellings of a name for one name: CONFLICT for the same user', async () => {
    await trusted(async (ctx) => {
      // U+212B ANGSTROM SIGN and A + U+030A both normalise to U+00C5; Hangul jamo compose into one syllable.
      const angstrom = await ctx.documents.upload({ filename: '\u212B.txt', body: 'a', userId: user });
      expect(angstrom.filename).toBe('\u00C5.txt');
      expect(await rejectionCode(ctx.documents.upload({ filename: 'A\u030A.txt', body: 'b', userId: user }))).toBe('CONFLICT');
      const hangul = await ctx.documents.upload({ filename: '\u1100\u1161.txt', body: 'c', userId: user });
      expect(hangul.filename).toBe('\uac00.txt');
      expect(await rejectionCode(ctx.documents.rename(angstrom.id, '\uac00.txt'))).toBe('CONFLICT');
      await ctx.documents.delete(angstrom.id);
      await ctx.documents.delete(hangul.id);
    });
  });
});

describe('emails', () => {
  const spellings = ['Ada.Lovelace@Example.io', 'ada.lovelace@example.io', 'ADA.LOVELACE@EXAMPLE.IO', '  ada.LOVELACE@example.IO \t', '\u00a0Ada.Lovelace@Example.io\u2003'];

  it('is one account whatever its case or surrounding spaces: a second create is CONFLICT, every spelling authenticates and finds the same user', async () => {
    for (const email of spellings) {
      expect(await rejectionCode(platform.users.create({ firstName: 'Eve', lastName: 'Dup', email, password: PASSWORD }))).toBe('CONFLICT');
      expect((await platform.users.authenticate(email, PASSWORD)).id).toBe(ada.id);
      expect((await platform.users.findByEmail(email))?.id).toBe(ada.id);
    }
    // Nor can another account take it by an update.
    for (const email of spellings) expect(await rejectionCode(platform.users.update(bob.id, { email }))).toBe('CONFLICT');
    expect((await platform.users.get(bob.id)).email).toBe('bob@example.io');
  });

  it.each([
    ['NUL inside', 'ada.lovelace@example.io\u0000'],
    ['only a NUL', '\u0000'],
    ['control character', 'ada\u0007@example.io'],
    ['lone surrogate', 'ada\ud800@example.io'],
    ['1 MB long', `${'a'.repeat(1 << 20)}@example.io`],
    ['empty', ''],
  ])('never fails with a database error for an email that is %s: findByEmail finds nobody, authenticate is INVALID_CREDENTIALS or VALIDATION', async (_what, email) => {
    expect(await platform.users.findByEmail(email).catch((err: TenantDbError) => err.code)).toSatisfy((r) => r === null || r === 'VALIDATION');
    expect(['INVALID_CREDENTIALS', 'VALIDATION']).toContain(await rejectionCode(platform.users.authenticate(email, PASSWORD)));
    expect(await rejectionCode(platform.users.create({ firstName: 'Eve', lastName: 'Bad', email, password: PASSWORD }))).toBe('VALIDATION');
  });
});

describe('passwords', () => {
  const MIB = 1 << 20;
  // 1 MiB of UTF-8: 1 Mi ASCII characters, or 256 Ki 4-byte ones.
  const huge = [
    ['ASCII', 'p'.repeat(MIB)],
    ['4-byte characters', '🔑'.repeat(MIB / 4)],
  ] as const;

  /** The code `call` rejects with, and how long the call took (performance.now() around it alone). */
  async function timed(call: () => Promise<unknown>): Promise<{ code: string; ms: number }> {
    const start = performance.now();
    const code = await outcome(call);
    return { code, ms: performance.now() - start };
  }

  it.each(huge)('refuses a 1 MB password (%s) with VALIDATION within 50 ms: users.create, users.update, users.authenticate', async (_what, password) => {
    expect(Buffer.byteLength(password)).toBe(MIB);
    const create = await timed(() => platform.users.create({ firstName: 'Eve', lastName: 'Long', email: 'long@example.io', password }));
    const update = await timed(() => platform.users.update(bob.id, { password }));
    // A password no account can have: refused as input, before any hashing (and before looking the email up).
    const authenticate = await timed(() => platform.users.authenticate('bob@example.io', password));
    expect({ create: create.code, update: update.code, authenticate: authenticate.code }).toEqual({
      create: 'VALIDATION',
      update: 'VALIDATION',
      authenticate: 'VALIDATION',
    });
    expect(create.ms).toBeLessThan(50);
    expect(update.ms).toBeLessThan(50);
    expect(authenticate.ms).toBeLessThan(50);
    // Bob's password did not change.
    expect((await platform.users.authenticate('bob@example.io', PASSWORD)).id).toBe(bob.id);
    expect(await platform.users.findByEmail('long@example.io')).toBeNull();
  });
});

describe('malformed ids and cursors', () => {
  const ABSENT = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
  // Values an id parameter must survive. Non-strings too: JavaScript callers can pass anything.
  const BAD_IDS: Array<[string, unknown]> = [
    ['empty', ''],
    ['space', ' '],
    ['x', 'x'],
    ['NUL inside a UUID', '6f1c2a3b-4d5e-4f60-8a7b-9c0d\u00001e2f3a4b'],
    ['NUL after a UUID', `${ABSENT}\u0000`],
    ['64+ bytes', 'a'.repeat(70)],
    ['64+ bytes of 2-byte characters', 'é'.repeat(40)],
    ['SQL', "' OR '1'='1"],
    ['UUID with upper-case hex, exists nowhere', ABSENT.toUpperCase()],
    ['valid-shaped UUID that exists nowhere', ABSENT],
    ['UUID without dashes', ABSENT.replace(/-/g, '')],
    ['number', 42],
    ['null', null],
    ['object', {}],
    ['array', [ABSENT]],
  ];
  const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
  const at = '2024-01-01T00:00:00.000000Z';
  const badCursors = async (): Promise<Array<[string, unknown]>> => {
    const users = (await platform.users.list({ limit: 1 })).nextCursor!;
    const docs = (await platform.withTenant(tenant, (ctx) => ctx.documents.list({ limit: 1 }))).nextCursor!;
    return [
      ['garbage', 'not a cursor!'],
      ['empty', ''],
      ['base64 of garbage', b64('\u0000\u0001garbage')],
      ['base64 of a JSON object', b64({ createdAt: at, id: ABSENT })],
      ['huge date', b64(['+275760-09-13T00:00:00.000000Z', ABSENT])],
      ['negative date', b64(['-000001-01-01T00:00:00.000000Z', ABSENT])],
      ['year 0', b64(['0000-01-01T00:00:00.000000Z', ABSENT])],
      ['31 February', b64(['2024-02-31T00:00:00.000000Z', ABSENT])],
      ['huge offset', b64({ offset: 1e308 })],
      ['negative offset', b64([-1, ABSENT])],
      ['NUL in its id', b64([at, `${ABSENT}\u0000`])],
      ['a users cursor truncated', users.slice(0, -3)],
      ['a documents cursor truncated', docs.slice(0, -1)],
      ['too long', 'A'.repeat(4096)],
      ['number', 42],
      ['object', {}],
    ];
  };

  type Call = (value: unknown) => Promise<unknown>;
  const inScope = (fn: (ctx: TenantContext, value: unknown) => Promise<unknown>): Call => (value) =>
    platform.withTenant(tenant, (ctx) => fn(ctx, value));
  let emails = 0;
  const fresh = (): string => `fresh${++emails}@example.io`;
  const v = (value: unknown): string => value as string;

  // Every public method that takes an id; what each may answer. `skip` names the values that are not
  // malformed for it (a createdBy of null is "none"; an upload may name any user id).
  const ID_METHODS: Array<[string, Call, string[], ((value: unknown) => boolean)?]> = [
    ['users.get', (x) => platform.users.get(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['users.update', (x) => platform.users.update(v(x), { firstName: 'X' }), ['NOT_FOUND', 'VALIDATION']],
    ['users.update (password)', (x) => platform.users.update(v(x), { password: 'another password' }), ['NOT_FOUND', 'VALIDATION']],
    ['users.deactivate', (x) => platform.users.deactivate(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['users.activate', (x) => platform.users.activate(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['users.create createdBy', (x) => platform.users.create({ firstName: 'C', lastName: 'B', email: fresh(), password: PASSWORD, createdBy: v(x) }), ['NOT_FOUND', 'VALIDATION'], (x) => x === null || x === ABSENT || x === ABSENT.toUpperCase()],
    ['tenants.get', (x) => platform.tenants.get(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['tenants.stats', (x) => platform.tenants.stats(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['tenants.deactivate', (x) => platform.tenants.deactivate(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['tenants.activate', (x) => platform.tenants.activate(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['tenants.drop', (x) => platform.tenants.drop(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['tenants.create createdBy', (x) => platform.tenants.create({ name: 'By nobody', createdBy: v(x) }), ['NOT_FOUND', 'VALIDATION'], (x) => x === null],
    ['tenants.create server', (x) => platform.tenants.create({ name: 'Nowhere', server: v(x) }), ['VALIDATION'], (x) => x === null],
    ['memberships.add tenantId', (x) => platform.memberships.add(v(x), bob.id, 'viewer'), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.add userId', (x) => platform.memberships.add(tenant.id, v(x), 'viewer'), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.setRole tenantId', (x) => platform.memberships.setRole(v(x), bob.id, 'viewer'), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.setRole userId', (x) => platform.memberships.setRole(tenant.id, v(x), 'viewer'), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.remove tenantId', (x) => platform.memberships.remove(v(x), bob.id), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.remove userId', (x) => platform.memberships.remove(tenant.id, v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.listMembers', (x) => platform.memberships.listMembers(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['memberships.listTenants', (x) => platform.memberships.listTenants(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['withTenant', (x) => platform.withTenant(v(x), () => 'entered'), ['NOT_FOUND', 'VALIDATION']],
    // The documented answer for a user who is not an active member is FORBIDDEN.
    ['withTenant userId', (x) => platform.withTenant(tenant.id, () => 'entered', { userId: v(x) }), ['FORBIDDEN', 'NOT_FOUND', 'VALIDATION']],
    ['documents.get', inScope((ctx, x) => ctx.documents.get(v(x))), ['NOT_FOUND', 'VALIDATION']],
    ['documents.download', inScope((ctx, x) => ctx.documents.download(v(x))), ['NOT_FOUND', 'VALIDATION']],
    ['documents.url', inScope((ctx, x) => ctx.documents.url(v(x))), ['NOT_FOUND', 'VALIDATION']],
    ['documents.rename', inScope((ctx, x) => ctx.documents.rename(v(x), 'renamed.txt')), ['NOT_FOUND', 'VALIDATION']],
    ['documents.delete', inScope((ctx, x) => ctx.documents.delete(v(x))), ['NOT_FOUND', 'VALIDATION']],
    ['documents.upload userId', inScope((ctx, x) => ctx.documents.upload({ filename: `u-${randomUUID()}.txt`, body: 'u', userId: v(x) })), ['VALIDATION'], (x) => x === ABSENT || x === ABSENT.toUpperCase()],
    ['storage.sweep tenantId', (x) => platform.storage.sweep({ tenantId: v(x) }), ['NOT_FOUND', 'VALIDATION']],
    // migrations.tenant(null) rejects with a TypeError: see the known failure below.
    ['migrations.tenant', (x) => platform.migrations.tenant(v(x)), ['NOT_FOUND', 'VALIDATION'], (x) => x === null],
    ['migrations.tenants.run', (x) => platform.migrations.tenants.run(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['migrations.tenants.resume', (x) => platform.migrations.tenants.resume(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['migrations.tenants.revert', (x) => platform.migrations.tenants.revert(v(x)), ['NOT_FOUND', 'VALIDATION']],
    ['migrations.tenants.up({ only, of })', (x) => platform.migrations.tenants.up({ only: 'failed', of: v(x) }), ['NOT_FOUND', 'VALIDATION']],
  ];

  it.each(ID_METHODS)('%s: NOT_FOUND or VALIDATION for every malformed id, never DATABASE or a non-TenantDbError', async (_name, call, allowed, skip) => {
    const unexpected: string[] = [];
    for (const [what, value] of BAD_IDS) {
      if (skip?.(value)) continue;
      const got = await outcome(() => call(value));
      if (!allowed.includes(got)) unexpected.push(`${what}: ${got}`);
    }
    expect(unexpected).toEqual([]);
  });

  it('documents.list({ userId }) and migrations.tenants.up({ tenants }) answer a malformed id with an empty page and a NOT_FOUND entry', async () => {
    for (const [what, value] of BAD_IDS) {
      const page = await platform.withTenant(tenant, (ctx) => ctx.documents.list({ userId: v(value) }));
      expect(page, what).toEqual({ items: [], nextCursor: null });
      const run = await platform.migrations.tenants.up({ tenants: [v(value)] });
      expect(run.succeeded, what).toEqual([]);
      expect(run.failed.map((f) => (f.error as TenantDbError).code), what).toEqual(['NOT_FOUND']);
    }
  });

  it.each([
    ['users.list', (cursor: unknown) => platform.users.list({ cursor: v(cursor) })],
    ['documents.list', inScope((ctx, cursor) => ctx.documents.list({ cursor: v(cursor) }))],
  ])('%s: VALIDATION for every malformed cursor, never DATABASE or a non-TenantDbError', async (_name, call) => {
    const unexpected: string[] = [];
    for (const [what, cursor] of await badCursors()) {
      const got = await outcome(() => call(cursor));
      if (got !== 'VALIDATION') unexpected.push(`${what}: ${got}`);
    }
    expect(unexpected).toEqual([]);
  });

  it('reads a well-formed cursor of any instant PostgreSQL can hold (years 0001 to 9999) or of an id in upper case', async () => {
    for (const list of [
      (cursor: string) => platform.users.list({ cursor }),
      (cursor: string) => platform.withTenant(tenant, (ctx) => ctx.documents.list({ cursor })),
    ]) {
      expect((await list(b64(['9999-12-31T23:59:59.999999Z', ABSENT]))).items).toEqual([]);
      expect((await list(b64(['0001-01-01T00:00:00.000000Z', ABSENT.toUpperCase()]))).items.length).toBeGreaterThan(0);
    }
  });

  it('takes an id with upper-case hex for the same entity everywhere', async () => {
    const upper = (id: string): string => id.toUpperCase();
    expect((await platform.users.get(upper(bob.id))).id).toBe(bob.id);
    expect((await platform.tenants.get(upper(tenant.id))).id).toBe(tenant.id);
    expect((await platform.memberships.listMembers(upper(tenant.id))).map((m) => m.user.id).sort()).toEqual([ada.id, bob.id].sort());
    expect((await platform.memberships.listTenants(upper(bob.id))).map((m) => m.tenant.id)).toEqual([tenant.id]);
    // The membership guard compares the ids it read back with the ones given.
    expect((await platform.memberships.setRole(upper(tenant.id), upper(bob.id), 'viewer')).role).toBe('viewer');
    expect((await platform.memberships.setRole(tenant.id, bob.id, 'user')).role).toBe('user');
    expect(await rejectionCode(platform.memberships.setRole(upper(tenant.id), upper(ada.id), 'viewer'))).toBe('CONFLICT'); // the last admin
    const role = await platform.withTenant(upper(tenant.id), (ctx) => ctx.role, { userId: upper(bob.id) });
    expect(role).toBe('user');
    expect((await platform.withTenant(tenant, (ctx) => ctx.documents.get(upper(doc.id)))).id).toBe(doc.id);
  });

  it('storage.sweep({ tenantId: upper-case id }) sweeps that tenant (S3 keys are case-sensitive: the prefix is the one of the tenant)', async () => {
    const t = await platform.tenants.create({ name: 'Swept by upper case' });
    const key = `${env.prefix}tenants/${t.id}/files/${randomUUID()}`;
    await s3.send(new PutObjectCommand({ Bucket: inject('s3Bucket'), Key: key, Body: 'orphan' }));
    const swept = await platform.storage.sweep({ tenantId: t.id.toUpperCase(), olderThanMs: 0 });
    expect(swept.objectsDeleted).toBe(1);
    expect(await listKeys(s3, inject('s3Bucket'), `${env.prefix}tenants/${t.id}/`)).toEqual([]);
  });

  // Upper-case ids: each place that compares an id as given with one PostgreSQL printed in lower case (or
  // builds a key from it) would fail these.
  describe('upper-case ids', () => {
    // tenants-service #setActive forgets the tenant under its id as the row gives it.
    it('tenants.deactivate(upper-case id): the tenant can no longer be entered', async () => {
      // A long cache, so that only the forgetting (not the cache's expiry) can make the deactivation seen.
      const cached = await env.initPlatform({ tenantCacheMs: 600_000 });
      const t = await cached.tenants.create({ name: 'Deactivated by upper case' });
      await cached.withTenant(t.id, () => 'warm the cache');
      await cached.tenants.deactivate(t.id.toUpperCase());
      expect(await rejectionCode(cached.withTenant(t.id, () => 'entered'))).toBe('TENANT_INACTIVE');
    });

    // tenant-scope keeps the user id in lower case: DocumentsServiceImpl#assertMayWrite compares it with documents.user_id.
    it("a 'user' member entering with an upper-case user id may rename their own document", async () => {
      const own = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: `bob-${randomUUID()}.txt`, body: 'bob', userId: bob.id }));
      const renamed = await platform.withTenant(tenant, (ctx) => ctx.documents.rename(own.id, `renamed-${own.filename}`), {
        userId: bob.id.toUpperCase(),
      });
      expect(renamed.userId).toBe(bob.id);
    });

    // fleet-migrations #select compares ids in lower case.
    it('migrations.tenants.up({ tenants: [upper-case id] }) migrates that tenant', async () => {
      const run = await platform.migrations.tenants.up({ tenants: [tenant.id.toUpperCase()] });
      expect(run.succeeded).toEqual([tenant.id]);
    });
  });

  // FleetMigrations.tenant reads a Tenant again by its id: null is no tenant, not a TypeError.
  it('migrations.tenant(null) rejects with a TenantDbError', async () => {
    expect(await rejectionCode(platform.migrations.tenant(null as never))).toBe('NOT_FOUND');
  });
});
