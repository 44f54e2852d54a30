import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  createPlatform,
  isTenantDbError,
  TenantDbError,
  type Document,
  type FleetProgressEvent,
  type Platform,
  type PlatformOptions,
  type PlatformStats,
  type Role,
  type TenantStats,
  type User,
} from '../index.js';
import { plural } from './output.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Where the demo's narration goes, a line at a time. */
  log: (line: string) => void;
  /**
   * The options `platform` was created with. The tenant migration the demo adds is rolled out by a second
   * platform on the same servers, created from these plus one more `tenantMigrations` folder.
   */
  options: PlatformOptions;
  /** Progress of the fleet rollout. Default: a line per tenant finished, through `log`. */
  onProgress?: (event: FleetProgressEvent) => void;
}

/** What {@link runDemo} did, also printed by `tenantdb demo --json`. */
export interface DemoResult {
  /** Unique to this run: a suffix of the users' emails and the tenants' names. */
  run: string;
  users: Array<Pick<User, 'id' | 'email'>>;
  tenants: Array<{ id: string; name: string; databaseName: string; stats: TenantStats }>;
  documents: Array<Pick<Document, 'id' | 'filename' | 'sizeBytes' | 'deduplicated'> & { tenantId: string }>;
  migration: { name: string; total: number; succeeded: number; failed: number; skipped: number };
  platform: PlatformStats;
}

/** The tenant migration the demo adds. Same name and bytes every run, so a second run on kept data finds it applied. */
export const DEMO_MIGRATION = {
  name: '9001_demo_document_tags',
  sql: "-- Added by the tenantdb demo: labels on documents.\nALTER TABLE documents ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';\n",
};

const PASSWORD = 'demo-password-not-secret';

function mib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** A body streamed in 64 KiB chunks, as an HTTP request's would be. */
function streamOf(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += 65_536) yield bytes.subarray(at, at + 65_536);
    })(),
  );
}

/**
 * The guided tour of the library on whatever servers `platform` uses: users, two tenants with members
 * and roles, deduplicated document uploads, a tenant migration rolled out over the whole fleet with
 * progress, and statistics. Every name is unique to the run, so it runs again on kept data. Calls
 * `platform.init()`; does not close `platform`.
 *
 * @example
 * ```ts
 * const platform = createPlatform(options);
 * try { await runDemo(platform, { log: console.log, options }); } finally { await platform.close(); }
 * ```
 */
export async function runDemo(platform: Platform, demo: DemoOptions): Promise<DemoResult> {
  const { log } = demo;
  const run = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  log(`tenantdb demo, run ${run}`);
  await platform.init();
  log('• main database initialised (created if missing, migrated, tenant template ready)');

  log('• users');
  const people = [
    { firstName: 'Ada', lastName: 'Lovelace' },
    { firstName: 'Grace', lastName: 'Hopper' },
    { firstName: 'Linus', lastName: 'Pauling' },
  ];
  const [ada, grace, linus] = await Promise.all(
    people.map((p) =>
      platform.users.create({ ...p, email: `${p.firstName.toLowerCase()}+${run}@demo.tenantdb.dev`, password: PASSWORD }),
    ),
  ) as [User, User, User];
  for (const u of [ada, grace, linus]) log(`  created ${u.email}`);
  const again = await platform.users.authenticate(ada.email.toUpperCase(), PASSWORD);
  log(`  ${again.firstName} logs in with her email in upper case: emails compare case-insensitively`);

  log('• tenants (a PostgreSQL database each, cloned from the template)');
  const acme = await platform.tenants.create({ name: `Acme ${run}`, createdBy: ada.id });
  const globex = await platform.tenants.create({ name: `Globex ${run}`, createdBy: grace.id });
  for (const t of [acme, globex]) log(`  created "${t.name}" → database ${t.databaseName}`);
  const memberships: Array<[typeof acme, User, Role]> = [
    [acme, grace, 'user'],
    [acme, linus, 'viewer'],
    [globex, ada, 'viewer'],
  ];
  for (const [tenant, user, role] of memberships) await platform.memberships.add(tenant.id, user.id, role);
  for (const t of [acme, globex]) {
    const members = await platform.memberships.listMembers(t.id);
    log(`  ${t.name}: ${members.map((m) => `${m.user.firstName} (${m.role})`).join(', ')}`);
  }

  log('• documents (bytes in S3 once per content, per tenant)');
  const report = randomBytes(768 * 1024);
  const notes = Buffer.from(`Meeting notes of run ${run}\n`.repeat(200));
  const documents: DemoResult['documents'] = [];
  const upload = async (tenant: typeof acme, user: User, filename: string, bytes: Buffer): Promise<Document> => {
    const doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename, body: streamOf(bytes) }), { userId: user.id });
    documents.push({ id: doc.id, filename: doc.filename, sizeBytes: doc.sizeBytes, deduplicated: doc.deduplicated, tenantId: tenant.id });
    log(`  ${user.firstName} uploads ${filename} (${mib(doc.sizeBytes)}) to ${tenant.name}: ${doc.deduplicated ? 'deduplicated, no new bytes stored' : 'stored'}`);
    return doc;
  };
  await upload(acme, ada, 'q3-report.pdf', report);
  const copy = await upload(acme, grace, 'q3-report-copy.pdf', report);
  if (!copy.deduplicated) throw new TenantDbError('CONFLICT', 'the demo expected the second upload of the same bytes to be deduplicated');
  await upload(acme, ada, 'notes.txt', notes);
  await upload(globex, grace, 'q3-report.pdf', report);
  const refused = await upload(acme, linus, 'viewer-upload.txt', notes).then(
    () => false,
    (err: unknown) => {
      if (isTenantDbError(err, 'FORBIDDEN')) return true;
      throw err;
    },
  );
  if (!refused) throw new TenantDbError('CONFLICT', 'the demo expected a viewer\'s upload to be refused');
  log(`  ${linus.firstName} is a viewer of ${acme.name}: his upload is refused (FORBIDDEN)`);
  const listed = await platform.withTenant(acme, (ctx) => ctx.documents.list({}), { userId: linus.id });
  log(`  ${linus.firstName} can still list ${acme.name}'s documents: ${listed.items.map((d) => d.filename).join(', ')}`);
  const acmeStats = await platform.tenants.stats(acme.id);
  log(`  ${acme.name}: ${acmeStats.documents} documents, ${acmeStats.files} stored files, ${mib(acmeStats.storedBytes)} stored`);

  log(`• a tenant migration (${DEMO_MIGRATION.name}) rolled out over the whole fleet`);
  const folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-demo-migrations-'));
  let migration: DemoResult['migration'];
  try {
    await writeFile(path.join(folder, `${DEMO_MIGRATION.name}.sql`), DEMO_MIGRATION.sql);
    // The platform reads its migration folders once; a second one on the same servers sees the new file.
    const rollout = createPlatform({ ...demo.options, tenantMigrations: [...(demo.options.tenantMigrations ?? []), folder] });
    try {
      const behind = (await rollout.migrations.tenants.status()).filter((s) => s.pending.length > 0);
      log(`  ${behind.length} tenant database(s) have it pending`);
      const onProgress =
        demo.onProgress ??
        ((e: FleetProgressEvent) => {
          if (e.type === 'start') return;
          const what = e.type === 'success' ? (e.applied?.length ? 'migrated' : 'already up to date') : e.type === 'skip' ? 'skipped' : 'FAILED';
          log(`  [${e.done}/${e.total}] ${e.databaseName || e.tenantId}: ${what}`);
        });
      const result = await rollout.migrations.tenants.up({ concurrency: 4, onProgress });
      migration = {
        name: DEMO_MIGRATION.name,
        total: result.total,
        succeeded: result.succeeded.length,
        failed: result.failed.length,
        skipped: result.skipped.length,
      };
      log(`  ${migration.succeeded} of ${migration.total} tenants succeeded, ${migration.failed} failed, ${migration.skipped} skipped`);
      if (result.failed.length > 0) {
        throw new TenantDbError('MIGRATION_FAILED', `the demo migration failed in ${result.failed.length} tenant(s)`, { cause: result.failed[0]!.error });
      }
      const tagged = await rollout.withTenant(acme, async (ctx) => {
        await ctx.query("UPDATE documents SET tags = ARRAY['finance', 'q3'] WHERE filename LIKE 'q3-report%'");
        const { rows } = await ctx.query<{ n: string }>("SELECT count(*) AS n FROM documents WHERE 'q3' = ANY(tags)");
        return Number(rows[0]!.n);
      });
      log(`  the new column is in use: ${tagged} documents of ${acme.name} tagged "q3"`);
    } finally {
      await rollout.close();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }

  log('• statistics');
  const tenants: DemoResult['tenants'] = [];
  for (const t of [acme, globex]) {
    const stats = await platform.tenants.stats(t.id);
    tenants.push({ id: t.id, name: t.name, databaseName: t.databaseName, stats });
    log(`  ${t.name}: database ${mib(stats.databaseSizeBytes)}, ${plural(stats.documents, 'document')}, ${plural(stats.files, 'file')}, ${mib(stats.storedBytes)} stored`);
  }
  const fleet = await platform.tenants.list({ includeInactive: true });
  log(`  the fleet: ${fleet.length} tenant(s) in this main database`);
  const stats = platform.stats();
  log(
    `  pools: ${stats.pools.open} open of ${stats.pools.max}, ${stats.pools.hits} hits, ${stats.pools.misses} misses; ` +
      `connections: ${stats.connections.open} open of ${stats.connections.max}`,
  );
  log('done');
  return {
    run,
    users: [ada, grace, linus].map((u) => ({ id: u.id, email: u.email })),
    tenants,
    documents,
    migration,
    platform: stats,
  };
}
