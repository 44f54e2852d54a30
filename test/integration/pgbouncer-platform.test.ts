import { randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import type { Platform, PlatformOptions, Tenant } from '../../src/index.js';
import { adminQuery, databaseExists, serverUrl, useTestPlatform } from '../support/env.js';
import { describeWithPgBouncer, pgbouncerUrl, viaPgBouncer, type PgBouncerMode } from '../support/pgbouncer.js';
import { bytesOf } from '../support/streams.js';
import { useTempFolders } from '../support/temp-folders.js';
import { createTestUser } from '../support/users.js';

/** A server URL without a database, as `tenantServers` takes it. */
function serverOf(url: string): string {
  const u = new URL(url);
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}

interface Setup {
  name: string;
  mode: PgBouncerMode;
  /** Direct admin URLs beside the pooled ones. */
  admin: boolean;
}

const SETUPS: Setup[] = [
  { name: 'session mode, nothing but pooled URLs', mode: 'session', admin: false },
  { name: 'transaction mode, with admin URLs', mode: 'transaction', admin: true },
  { name: 'transaction mode, nothing but pooled URLs', mode: 'transaction', admin: false },
];

for (const setup of SETUPS) {
  describeWithPgBouncer(`behind PgBouncer (${setup.name})`, () => {
    const env = useTestPlatform();
    const folderWith = useTempFolders('tenantdb-pgbouncer');
    const pooled = (extra: Partial<PlatformOptions> = {}): Partial<PlatformOptions> => {
      const bouncer = serverOf(pgbouncerUrl(setup.mode)!);
      const direct = serverOf(serverUrl());
      return {
        mainUrl: viaPgBouncer(setup.mode, env.mainDb),
        ...(setup.admin && { mainAdminUrl: env.mainUrl }),
        tenantServers: { default: setup.admin ? { url: bouncer, adminUrl: direct } : bouncer },
        ...extra,
      };
    };
    let platform: Platform;
    let tenants: Tenant[];

    beforeAll(async () => {
      expect(await databaseExists(env.mainDb)).toBe(false);
      platform = await env.initPlatform(pooled());
    });

    it('init() creates and migrates a brand-new main database through the pooler', async () => {
      expect(await databaseExists(env.mainDb)).toBe(true);
      expect(await platform.migrations.main.pending()).toEqual([]);
      // Idempotent, also from a second platform.
      await env.initPlatform(pooled());
    });

    it('tenants.create works with spares and without, in parallel, and the tenants answer', async () => {
      const withSpares = await Promise.all(Array.from({ length: 5 }, (_, i) => platform.tenants.create({ name: `bouncer ${i}` })));
      const noSpares = env.platform(pooled({ tenantSpares: 0 }));
      const cloned = await Promise.all(Array.from({ length: 3 }, (_, i) => noSpares.tenants.create({ name: `bouncer clone ${i}` })));
      tenants = [...withSpares, ...cloned];
      for (const t of tenants) {
        expect(t.status).toBe('ready');
        const rows = await platform.withTenant(t, async (ctx) => (await ctx.query<{ db: string }>('SELECT current_database() AS db')).rows);
        expect(rows).toEqual([{ db: t.databaseName }]);
      }
    });

    it('transactions commit on return and roll back on throw', async () => {
      const tenant = tenants[0]!;
      await platform.withTenant(tenant, (ctx) => ctx.query('CREATE TABLE IF NOT EXISTS notes (body text)'));
      await platform.withTenant(tenant, (ctx) => ctx.transaction((tx) => tx.query(`INSERT INTO notes VALUES ('kept')`)));
      const boom = new Error('boom');
      await expect(
        platform.withTenant(tenant, (ctx) =>
          ctx.transaction(async (tx) => {
            await tx.query(`INSERT INTO notes VALUES ('dropped')`);
            throw boom;
          }),
        ),
      ).rejects.toBe(boom);
      const rows = await platform.withTenant(tenant, async (ctx) => (await ctx.query('SELECT body FROM notes ORDER BY body')).rows);
      expect(rows).toEqual([{ body: 'kept' }]);
    });

    it('statementTimeoutMs cancels a slow query with the driver error (57014), and the next query works', async () => {
      const timed = env.platform(pooled({ pool: { statementTimeoutMs: 300 } }));
      const tenant = tenants[1]!;
      for (const run of [
        (q: string) => timed.withTenant(tenant, (ctx) => ctx.query(q)),
        (q: string) => timed.withTenant(tenant, (ctx) => ctx.transaction((tx) => tx.query(q))),
      ]) {
        const started = Date.now();
        await expect(run('SELECT pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
        expect(Date.now() - started).toBeLessThan(2_500);
        expect((await run('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      }
      // Nothing leaked to the pooler's other clients: a platform without the option runs slow queries.
      await platform.withTenant(tenant, (ctx) => ctx.query('SELECT pg_sleep(0.5)'));
    });

    it('uploads and downloads the same bytes, deduplicated', async () => {
      const owner = await createTestUser(platform, `Bouncer${setup.mode}${setup.admin ? 'A' : 'P'}`);
      const tenant = tenants[2]!;
      const bytes = randomBytes(3 * 1024 * 1024 + 7);
      const [first, second] = await Promise.all(
        ['one.bin', 'two.bin'].map((filename) => platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename, body: bytes, userId: owner.id }))),
      );
      expect([first!.deduplicated, second!.deduplicated].sort()).toEqual([false, true]);
      const { body } = await platform.withTenant(tenant, (ctx) => ctx.documents.download(first!.id));
      expect((await bytesOf(body)).equals(bytes)).toBe(true);
    });

    it('two platforms migrating the fleet at once apply each migration exactly once', async () => {
      // Not idempotent on purpose: a second application would fail.
      const folder = await folderWith({
        '0100_audit.sql': 'SELECT pg_sleep(0.05);\nCREATE TABLE audit (id int PRIMARY KEY);\n',
        '0101_audit_seed.sql': 'INSERT INTO audit (id) VALUES (1);\n',
      });
      const [a, b] = [0, 1].map(() => env.platform(pooled({ tenantMigrations: [folder] }))) as [Platform, Platform];
      const results = await Promise.all([a, b].map((p) => p.migrations.tenants.up({ concurrency: 3 })));
      for (const result of results) {
        expect(result.failed).toEqual([]);
        expect(result.succeeded).toHaveLength(tenants.length);
      }
      for (const t of tenants) {
        const { rows } = await adminQuery<{ name: string; n: string }>(
          'SELECT name, count(*) AS n FROM tenantdb_migrations GROUP BY name ORDER BY name',
          [],
          t.databaseName,
        );
        expect(rows.map((r) => [r.name, Number(r.n)])).toEqual([
          ['0001_initial', 1],
          ['0100_audit', 1],
          ['0101_audit_seed', 1],
        ]);
      }
      // A tenant created after the rollout comes from the refreshed template.
      const late = await a.tenants.create({ name: 'bouncer late' });
      expect((await a.withTenant(late, (ctx) => ctx.query('SELECT id FROM audit'))).rows).toEqual([{ id: 1 }]);
      tenants.push(late);
    });

    it('repair() removes a half-provisioned tenant and drop() removes a tenant whole', async () => {
      const id = randomUUID();
      await adminQuery(
        `INSERT INTO tenants (id, name, database_name, server, status, is_active, created_at, updated_at)
         VALUES ($1, 'half', $2, 'default', 'provisioning', true, now(), now())`,
        [id, `tenant_half_${id.slice(0, 8)}`],
        env.mainDb,
      );
      const repaired = await platform.tenants.repair();
      expect(repaired.removed).toEqual([id]);
      expect(repaired.failed).toEqual([]);

      const doomed = tenants.pop()!;
      await platform.withTenant(doomed, (ctx) => ctx.query('SELECT 1'));
      await platform.tenants.drop(doomed.id);
      expect(await databaseExists(doomed.databaseName)).toBe(false);
      await expect(platform.tenants.get(doomed.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });
}
