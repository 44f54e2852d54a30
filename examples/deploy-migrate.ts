// A deploy step: migrate the main database, then every tenant database, several at a time, with
// progress on stderr: with --canary N, the first N tenants go first, and --max-failures M halts the
// rollout once M tenants failed. Exits 1 when any tenant failed or the run halted, so a deploy script
// can stop; run it again once the cause is fixed and it finishes what failed (or resume the halted run:
// `tenantdb migrate resume RUN`, its id is in the JSON summary).
//
//   TENANTDB_MAIN_URL=postgres://… TENANTDB_S3_BUCKET=… [TENANTDB_TENANT_MIGRATIONS=./migrations/tenant] \
//     npx tsx examples/deploy-migrate.ts [--concurrency 8] [--canary 5 --max-failures 1]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPlatform } from '@org/tenantdb';

const { values } = parseArgs({
  options: { concurrency: { type: 'string', default: '4' }, canary: { type: 'string' }, 'max-failures': { type: 'string' } },
});
const folders = (value: string | undefined): string[] =>
  value ? value.split(path.delimiter).filter(Boolean).map((f) => path.resolve(f)) : [];

const mainUrl = process.env.TENANTDB_MAIN_URL;
if (!mainUrl) {
  console.error('set TENANTDB_MAIN_URL (and TENANTDB_S3_BUCKET)');
  process.exit(2);
}

await using platform = createPlatform({
  mainUrl,
  s3: {
    bucket: process.env.TENANTDB_S3_BUCKET ?? 'tenantdb',
    ...(process.env.TENANTDB_S3_ENDPOINT && { endpoint: process.env.TENANTDB_S3_ENDPOINT }),
  },
  mainMigrations: folders(process.env.TENANTDB_MAIN_MIGRATIONS),
  tenantMigrations: folders(process.env.TENANTDB_TENANT_MIGRATIONS),
});

await platform.init();
const applied = await platform.migrations.main.up();
console.error(`main: ${applied.length} migration(s) applied`);

const run = await platform.migrations.tenants.up({
  concurrency: Number(values.concurrency),
  ...(values.canary && { waves: [Number(values.canary), '100%'] }),
  ...(values['max-failures'] && { maxFailures: Number(values['max-failures']) }),
  onWave: (e) => console.error(`wave ${e.wave}/${e.waves}: ${e.type === 'wave-start' ? `${e.tenants} tenants` : `${e.failed} failed`}`),
  onProgress: (e) => {
    if (e.type === 'start') return;
    const what = e.type === 'failure' ? `FAILED: ${e.error?.message}` : e.type === 'skip' ? 'skipped (not ready)' : `ok (${e.applied?.length ?? 0} applied)`;
    console.error(`[${e.done}/${e.total}] ${e.databaseName || e.tenantId}: ${what}`);
  },
});

console.log(
  JSON.stringify({
    runId: run.id,
    status: run.status,
    total: run.total,
    succeeded: run.succeeded.length,
    skipped: run.skipped,
    failed: run.failed.map((f) => ({ tenantId: f.tenantId, migration: f.migration, error: f.error.message })),
  }),
);
process.exitCode = run.status === 'completed' ? 0 : 1;
