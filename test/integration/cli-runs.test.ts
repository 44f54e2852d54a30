import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, cleanUpPlatform, harnessProcessEnv, uniqueName } from '../support/env.js';
import { useTempFolders } from '../support/temp-folders.js';
import { buildCliIfStale } from '../support/cli-build.js';
import { cleanEnv, cli, json } from '../support/cli-process.js';

// The fleet-run commands of the CLI (migrate plan/tenants/resume/down/revert, runs) as a user runs them,
// against the harness' PostgreSQL and S3: judged by exit code, the --json document and the database.
const mainDb = uniqueName('tdbt_cliruns');
let work: string;
let env: Record<string, string | undefined>;
/** `env` with the host app's tenant migration folder: 0301_app_notes, pending on every tenant. */
let withNotes: Record<string, string | undefined>;
const migrationFolder = useTempFolders('migrations', () => work);

interface Made {
  id: string;
  databaseName: string;
}
const tenants: Made[] = [];

/** The pending tenant migrations of every tenant, by tenant id, as `status --json` reports them. */
async function pendingById(): Promise<Record<string, string[]>> {
  const run = await cli(['status', '--json'], withNotes);
  expect(run.code, run.stderr).toBe(0);
  const doc = json<{ tenants: Array<{ tenantId: string; pending: string[] }> }>(run);
  return Object.fromEntries(doc.tenants.map((t) => [t.tenantId, t.pending]));
}

/** `pendingById()` when every tenant has `pending`. */
function everyone(pending: string[]): Record<string, string[]> {
  return Object.fromEntries(tenants.map((t) => [t.id, pending]));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-cli-runs-'));
  await buildCliIfStale(work);
  env = cleanEnv(harnessProcessEnv(mainDb));
  const init = await cli(['init'], env);
  expect(init.code, init.stderr).toBe(0);
  // Created without the host folder, one after the other (creation order is the default order of a run).
  for (const [i, label] of ['plan=free', 'plan=free', 'plan=gold', 'plan=gold'].entries()) {
    const run = await cli(['tenants', 'create', '--name', `Runs ${i}`, '--label', label, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    tenants.push(json(run).tenant as Made);
  }
  const folder = await migrationFolder({
    '0301_app_notes.sql': 'CREATE TABLE app_notes (id serial PRIMARY KEY, body text);',
    '0301_app_notes.down.sql': 'DROP TABLE app_notes;',
  });
  withNotes = { ...env, TENANTDB_TENANT_MIGRATIONS: folder };
}, 180_000);

afterAll(async () => {
  await cleanUpPlatform(mainDb);
  await rm(work, { recursive: true, force: true });
});

describe('tenantdb fleet runs', { timeout: 180_000 }, () => {
  let firstRun: string;
  let haltedRun: string;
  let retryRun: string;

  it('migrate plan shows the pending set and the waves, and changes nothing', async () => {
    const before = await pendingById();
    expect(before).toEqual(everyone(['0301_app_notes']));
    const run = await cli(['migrate', 'plan', '--canary', '1', '--waves', '50%,100%', '--json'], withNotes);
    expect(run.code, run.stderr).toBe(0);
    const plan = json(run);
    expect(plan).toMatchObject({ total: 4, pending: 4, unread: [] });
    expect(plan.groups).toEqual([
      { pending: ['0301_app_notes'], tenants: tenants.map((t, i) => ({ tenantId: t.id, databaseName: t.databaseName, server: 'default', wave: [1, 2, 2, 3][i] })) },
    ]);
    expect(plan.waves).toEqual([
      { wave: 1, tenants: [tenants[0]!.id] },
      { wave: 2, tenants: [tenants[1]!.id, tenants[2]!.id] },
      { wave: 3, tenants: [tenants[3]!.id] },
    ]);
    // The order of --tenant, a label selection, and the human form.
    const chosen = json(await cli(['migrate', 'plan', '--tenant', tenants[3]!.databaseName, '--tenant', tenants[1]!.id, '--json'], withNotes));
    expect(chosen.groups[0].tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual([tenants[3]!.id, tenants[1]!.id]);
    const gold = json(await cli(['migrate', 'plan', '--label', 'plan=gold', '--json'], withNotes));
    expect(gold.waves).toEqual([{ wave: 1, tenants: [tenants[2]!.id, tenants[3]!.id] }]);
    const human = await cli(['migrate', 'plan', '--canary', '1'], withNotes);
    expect(human.stdout).toMatch(/^plan: 4 tenants, 4 with migrations pending; a run would have 2 waves$/m);
    expect(human.stdout).toMatch(/^ {2}pending 0301_app_notes: 4 tenants$/m);
    expect(human.stdout).toContain(`  wave 1: 1 tenant: ${tenants[0]!.databaseName}`);

    expect(await pendingById()).toEqual(before);
    const runs = json(await cli(['runs', '--json'], withNotes));
    expect(runs.runs).toEqual([]);
  });

  it('migrate tenants --canary --waves rolls out wave by wave, recorded as a run', async () => {
    const run = await cli(['migrate', 'tenants', '--canary', '1', '--waves', '50%,100%', '--json'], withNotes);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run).tenants;
    expect(doc).toMatchObject({
      kind: 'up',
      status: 'completed',
      live: false,
      total: 4,
      failed: [],
      skipped: [],
      counts: { total: 4, succeeded: 4, failed: 0, skipped: 0, pending: 0 },
      options: { waves: [1, '50%', '100%'] },
      migrations: expect.arrayContaining(['0301_app_notes']),
    });
    expect(doc.tenants.map((t: { tenantId: string; wave: number; outcome: string; applied: string[] }) => [t.tenantId, t.wave, t.outcome, t.applied])).toEqual(
      tenants.map((t, i) => [t.id, [1, 2, 2, 3][i], 'succeeded', ['0301_app_notes']]),
    );
    // Waves in order on stderr, each after the one before.
    const waveLines = run.stderr.match(/^wave \d\/3.*$/gm) ?? [];
    expect(waveLines).toEqual([
      'wave 1/3: 1 tenant',
      'wave 1/3 done: 1 succeeded, 0 failed, 0 skipped',
      'wave 2/3: 2 tenants',
      'wave 2/3 done: 2 succeeded, 0 failed, 0 skipped',
      'wave 3/3: 1 tenant',
      'wave 3/3 done: 1 succeeded, 0 failed, 0 skipped',
    ]);
    expect(await pendingById()).toEqual(everyone([]));
    firstRun = doc.id;
  });

  it('migrate revert RUN takes back what the run applied', async () => {
    const run = await cli(['migrate', 'revert', firstRun, '--json'], withNotes);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run).run;
    expect(doc).toMatchObject({ kind: 'revert', status: 'completed', options: { revertOf: firstRun } });
    expect(doc.tenants.map((t: { applied: string[] }) => t.applied)).toEqual(tenants.map(() => ['0301_app_notes']));
    expect(await pendingById()).toEqual(everyone(['0301_app_notes']));
  });

  it('a run that reaches --max-failures halts and exits 1; migrate resume RUN carries it on after the fix', async () => {
    // The second tenant already has the table the migration creates: its migration fails there.
    await adminQuery('CREATE TABLE app_notes (id int)', [], tenants[1]!.databaseName);
    const run = await cli(['migrate', 'tenants', '--max-failures', '1', '--concurrency', '1', '--json'], withNotes);
    expect(run.code).toBe(1);
    const doc = json(run).tenants;
    expect(doc).toMatchObject({ status: 'halted', haltedBy: 'maxFailures', counts: { total: 4, succeeded: 1, failed: 1, pending: 2 } });
    expect(doc.failed).toEqual([
      { tenantId: tenants[1]!.id, migration: '0301_app_notes', error: expect.objectContaining({ code: 'MIGRATION_FAILED' }) },
    ]);
    haltedRun = doc.id;
    expect(run.stderr).toContain(`run ${haltedRun} halted (maxFailures) with 2 tenants pending`);
    expect(run.stderr).toContain(`tenantdb migrate resume ${haltedRun}`);
    expect(await pendingById()).toEqual({ ...everyone(['0301_app_notes']), [tenants[0]!.id]: [] });

    // The fix; the resume migrates the pending tenants, the failed one stays failed (exit 1) ...
    await adminQuery('DROP TABLE app_notes', [], tenants[1]!.databaseName);
    const resumed = await cli(['migrate', 'resume', haltedRun, '--json'], withNotes);
    expect(resumed.code).toBe(1);
    const after = json(resumed).run;
    expect(after).toMatchObject({ id: haltedRun, status: 'failed', counts: { succeeded: 3, failed: 1, pending: 0 } });
    expect(after.resumes).toHaveLength(1);
    expect(resumed.stderr).toContain(`--only-failed ${haltedRun}`);
    // ... until --only-failed retries it.
    const retry = await cli(['migrate', 'tenants', '--only-failed', haltedRun, '--json'], withNotes);
    expect(retry.code, retry.stderr).toBe(0);
    expect(json(retry).tenants).toMatchObject({ status: 'completed', options: { only: 'failed', of: haltedRun }, succeeded: [tenants[1]!.id] });
    retryRun = json(retry).tenants.id;
    expect(await pendingById()).toEqual(everyone([]));

    expect((await cli(['migrate', 'resume', '00000000-0000-4000-8000-000000000000', '--json'], withNotes)).code).toBe(1);
  });

  it('runs lists the newest runs with counts; runs RUN shows every tenant', async () => {
    const list = await cli(['runs', '--json'], withNotes);
    expect(list.code, list.stderr).toBe(0);
    const { runs } = json(list);
    expect(runs.map((r: { id: string }) => r.id)).toEqual([retryRun, haltedRun, expect.any(String), firstRun]);
    expect(runs.map((r: { kind: string }) => r.kind)).toEqual(['up', 'up', 'revert', 'up']);
    expect(runs[1]).toMatchObject({ status: 'failed', live: false, counts: { total: 4, succeeded: 3, failed: 1, skipped: 0, pending: 0 } });
    expect(json(await cli(['runs', '--limit', '1', '--json'], withNotes)).runs.map((r: { id: string }) => r.id)).toEqual([retryRun]);
    const table = await cli(['runs'], withNotes);
    expect(table.stdout).toMatch(new RegExp(`^${haltedRun} +up +failed +no `, 'm'));

    const one = await cli(['runs', haltedRun, '--json'], withNotes);
    expect(one.code, one.stderr).toBe(0);
    const { run } = json(one);
    expect(run.tenants.map((t: { tenantId: string; outcome: string }) => [t.tenantId, t.outcome])).toEqual(
      tenants.map((t, i) => [t.id, i === 1 ? 'failed' : 'succeeded']),
    );
    expect(run.tenants[1]).toMatchObject({ migration: '0301_app_notes', error: { code: 'MIGRATION_FAILED' } });
    expect(run.options).toMatchObject({ maxFailures: 1, concurrency: 1 });
    const human = await cli(['runs', haltedRun], withNotes);
    expect(human.stdout).toContain(`run ${haltedRun} (up): failed; 4 tenants: 3 succeeded, 1 failed`);
    expect(human.stdout).toMatch(new RegExp(`^ {2}${tenants[1]!.id} +${tenants[1]!.databaseName} +1 +failed +\\d+ ms +0301_app_notes: MIGRATION_FAILED`, 'm'));
  });

  it('migrate down --to NAME reverts the selected tenants only', async () => {
    const run = await cli(['migrate', 'down', '--to', '0301_app_notes', '--label', 'plan=gold', '--max-failures', '1', '--json'], withNotes);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run).run;
    expect(doc).toMatchObject({ kind: 'down', status: 'completed', options: { to: '0301_app_notes', labels: { plan: 'gold' }, maxFailures: 1 } });
    expect(doc.tenants.map((t: { tenantId: string; applied: string[] }) => [t.tenantId, t.applied])).toEqual([
      [tenants[2]!.id, ['0301_app_notes']],
      [tenants[3]!.id, ['0301_app_notes']],
    ]);
    expect(await pendingById()).toEqual({ ...everyone([]), [tenants[2]!.id]: ['0301_app_notes'], [tenants[3]!.id]: ['0301_app_notes'] });
  });
});

describe('tenantdb fleet run flags', { timeout: 180_000 }, () => {
  it('a bad flag value or a missing operand is a usage error (exit 2), before any configuration', async () => {
    for (const args of [
      ['migrate', 'tenants', '--waves', '0%'],
      ['migrate', 'tenants', '--waves', '10%,,100%'],
      ['migrate', 'tenants', '--canary', 'x'],
      ['migrate', 'tenants', '--max-failures', '0'],
      ['migrate', 'tenants', '--max-failure-rate', '1.5'],
      ['migrate', 'tenants', '--created-before', 'someday'],
      ['migrate', 'main', '--canary', '1'],
      ['migrate', 'plan', '--max-failures', '1'],
      ['migrate', 'down'],
      ['migrate', 'resume'],
      ['migrate', 'revert', 'a', 'b'],
      ['runs', '--limit', '0'],
    ]) {
      const run = await cli([...args, '--json']);
      expect(run.code, args.join(' ')).toBe(2);
      expect(json(run).error.code).toBe('USAGE');
      expect(run.stderr).toMatch(/^error USAGE: /);
    }
  });

  it('--help names the fleet-run commands', async () => {
    const run = await cli(['--help']);
    for (const command of ['migrate plan', 'migrate resume RUN', 'migrate down --to NAME', 'migrate revert RUN', 'runs [RUN]']) {
      expect(run.stdout).toContain(command);
    }
    const plan = await cli(['migrate', 'plan', '--help']);
    expect(plan.stdout.startsWith('tenantdb migrate plan')).toBe(true);
  });
});
