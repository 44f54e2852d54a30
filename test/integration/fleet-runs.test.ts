import { hostname } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FleetProgressEvent, FleetRun, FleetWaveEvent, Platform, Tenant, TenantDbError } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { HITS_MIGRATION, appliedIn, breakHits, createGroups, fixHits, hitsIn, holdGate } from '../support/fleet-runs.js';
import { harnessServer, refusedServer } from '../support/server-urls.js';
import { useTempFolders } from '../support/temp-folders.js';

// Fleet migrations as recorded runs: what a run returns and what is read back, waves and stop rules, resume,
// only-failed retries, revert, down, the selection. Each test works on its own group of tenants (a label),
// so that the runs of one never reach the tenants of another.
const SERVERS = { default: harnessServer('default'), eu1: harnessServer('eu1') };
const env = useTestPlatform({ tenantServers: SERVERS, tenantSpares: 0 });
const folderWith = useTempFolders('tenantdb-fleet-runs');
const BUILT_IN = ['0001_initial'];
const GROUPS = { durable: 3, waves: 6, rate: 3, live: 2, race: 3, revert: 2, select: 4, wide: 42 } as const;
type Group = keyof typeof GROUPS;

let folder: string;
/** The host app's deploy with {@link HITS_MIGRATION}. */
let hosted: Platform;
/** Another process of the same deploy. */
let other: Platform;
let groups: Record<Group, Tenant[]>;

const idsOf = (tenants: readonly Tenant[]): string[] => tenants.map((t) => t.id);
const inGroup = (group: Group): { labels: { group: string } } => ({ labels: { group } });

/** A run as `runs()` lists it: without its tenants and the `up`-style outcome lists. */
function infoOf(run: FleetRun): Omit<FleetRun, 'tenants' | 'total' | 'succeeded' | 'failed' | 'skipped'> {
  const { tenants: _t, total: _n, succeeded: _s, failed: _f, skipped: _k, ...info } = run;
  return info;
}

async function expectHits(tenants: readonly Tenant[], hits: number | null): Promise<void> {
  for (const t of tenants) expect(await hitsIn(t), t.databaseName).toBe(hits);
}

beforeAll(async () => {
  folder = await folderWith(HITS_MIGRATION);
  const base = await env.initPlatform();
  groups = await createGroups(base, GROUPS, (group, i) => ((group === 'durable' && i === 2) || (group === 'select' && i % 2 === 1) ? 'eu1' : 'default'));
  await base.close();
  hosted = env.platform({ tenantMigrations: [folder] });
  other = env.platform({ tenantMigrations: [folder] });
});

describe('a run is recorded', () => {
  it('up returns the run, and run(id) and runs() read back the same from another platform', async () => {
    const tenants = groups.durable;
    const run = await hosted.migrations.tenants.up({ ...inGroup('durable'), concurrency: 2 });

    expect(run.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(run).toMatchObject({
      kind: 'up',
      status: 'completed',
      live: false,
      host: hostname(),
      pid: process.pid,
      resumes: [],
      options: { concurrency: 2, labels: { group: 'durable' } },
      migrations: [...BUILT_IN, '0100_hits'],
      counts: { total: 3, succeeded: 3, failed: 0, skipped: 0, pending: 0 },
      total: 3,
      succeeded: idsOf(tenants),
      failed: [],
      skipped: [],
    });
    expect(run.haltedBy).toBeUndefined();
    expect(run.finishedAt!.getTime()).toBeGreaterThanOrEqual(run.startedAt.getTime());
    expect(run.tenants).toEqual(
      tenants.map((t) => ({
        tenantId: t.id,
        databaseName: t.databaseName,
        server: t.server,
        wave: 1,
        outcome: 'succeeded',
        applied: ['0100_hits'],
        durationMs: expect.any(Number),
      })),
    );
    expect(run.tenants.map((t) => t.server)).toEqual(['default', 'default', 'eu1']);
    await expectHits(tenants, 1);

    expect(await other.migrations.tenants.run(run.id)).toEqual(run);
    // Ids in either case.
    expect((await other.migrations.tenants.run(run.id.toUpperCase())).id).toBe(run.id);
    expect(await other.migrations.tenants.runs({ limit: 1 })).toEqual([infoOf(run)]);
  });

  it('run() of an unknown id is NOT_FOUND; runs() refuses a bad limit', async () => {
    expect(await rejectionCode(other.migrations.tenants.run('00000000-0000-4000-8000-000000000000'))).toBe('NOT_FOUND');
    expect(await rejectionCode(other.migrations.tenants.run('not-a-run'))).toBe('NOT_FOUND');
    expect(await rejectionCode(other.migrations.tenants.resume('not-a-run'))).toBe('NOT_FOUND');
    for (const limit of [0, 1001, 1.5]) expect(await rejectionCode(other.migrations.tenants.runs({ limit }))).toBe('VALIDATION');
  });

  it("down({ to }) is a run of kind 'down', reverting each selected tenant", async () => {
    const tenants = groups.durable;
    const run = await hosted.migrations.tenants.down({ to: '0100_hits', ...inGroup('durable') });
    expect(run).toMatchObject({ kind: 'down', status: 'completed', options: { to: '0100_hits', labels: { group: 'durable' } }, succeeded: idsOf(tenants) });
    for (const t of run.tenants) expect(t.applied).toEqual(['0100_hits']);
    for (const t of tenants) expect(await appliedIn(t)).toEqual(BUILT_IN);
    await expectHits(tenants, null);
    const [latest] = await other.migrations.tenants.runs({ limit: 1 });
    expect(latest).toMatchObject({ id: run.id, kind: 'down', status: 'completed', counts: { total: 3, succeeded: 3 } });
    expect(await other.migrations.tenants.run(run.id)).toEqual(run);
    expect(await rejectionCode(hosted.migrations.tenants.down({ to: '0999_nothing', ...inGroup('durable') }))).toBe('VALIDATION');
  });
});

describe('waves and stop rules', () => {
  it('a canary failing halts the run before the next wave; resume carries the later waves in order, the canary untouched', async () => {
    const tenants = groups.waves;
    const [canary, ...rest] = tenants as [Tenant, ...Tenant[]];
    await breakHits(canary);
    const log: string[] = [];
    const onWave = (e: FleetWaveEvent): void => void log.push(`${e.type} ${e.wave}/${e.waves} of ${e.tenants}${e.haltedBy ? ` ${e.haltedBy}` : ''}`);
    const onProgress = (e: FleetProgressEvent): void => void log.push(`${e.type} ${e.wave} ${e.databaseName}`);
    // The canary first in `tenants`; the others in an order of our choosing.
    const order = [canary, ...rest.reverse()];
    const run = await hosted.migrations.tenants.up({
      tenants: order.map((t) => t.id),
      ...inGroup('waves'),
      waves: [1, '50%', '100%'],
      maxFailures: 1,
      concurrency: 4,
      onWave,
      onProgress,
    });

    expect(run).toMatchObject({ status: 'halted', haltedBy: 'maxFailures', counts: { total: 6, failed: 1, pending: 5, succeeded: 0 } });
    // 1, then half of six (3), then the rest (2), in the order given.
    expect(run.tenants.map((t) => [t.tenantId, t.wave])).toEqual(order.map((t, i) => [t.id, i === 0 ? 1 : i <= 3 ? 2 : 3]));
    expect(run.tenants[0]).toMatchObject({ outcome: 'failed', migration: '0100_hits', applied: [] });
    expect((run.tenants[0]!.error as TenantDbError).code).toBe('MIGRATION_FAILED');
    for (const t of run.tenants.slice(1)) expect(t).toMatchObject({ outcome: 'pending', applied: [], durationMs: null });
    expect(log).toEqual([
      'wave-start 1/3 of 1',
      `start 1 ${canary.databaseName}`,
      `failure 1 ${canary.databaseName}`,
      'wave-end 1/3 of 1 maxFailures',
    ]);
    for (const t of rest) expect(await appliedIn(t)).toEqual(BUILT_IN);
    await expectHits(rest, null);

    // Read back: the failure's code and message, the halt.
    const back = await other.migrations.tenants.run(run.id);
    expect(back).toMatchObject({ status: 'halted', haltedBy: 'maxFailures', live: false, counts: run.counts });
    expect(back.failed).toHaveLength(1);
    expect(back.failed[0]).toMatchObject({ tenantId: canary.id, migration: '0100_hits' });
    expect((back.failed[0]!.error as TenantDbError).code).toBe('MIGRATION_FAILED');
    expect(back.failed[0]!.error.message).toBe(run.failed[0]!.error.message);

    // Fixed, resumed from another platform: the pending tenants only, wave after wave.
    await fixHits(canary);
    log.length = 0;
    const resumed = await other.migrations.tenants.resume(run.id, { onWave, onProgress });
    expect(resumed.id).toBe(run.id);
    // The canary failed in this run and a resume does not retry it: every tenant done, one failed.
    expect(resumed).toMatchObject({ status: 'failed', live: false, counts: { total: 6, succeeded: 5, failed: 1, pending: 0 } });
    expect(resumed.haltedBy).toBeUndefined();
    expect(resumed.resumes).toEqual([{ host: hostname(), pid: process.pid, at: expect.any(Date) }]);
    expect(log.filter((l) => l.startsWith('wave'))).toEqual(['wave-start 2/3 of 3', 'wave-end 2/3 of 3', 'wave-start 3/3 of 2', 'wave-end 3/3 of 2']);
    // Each wave after the one before: nothing of wave 3 before wave 2 has ended.
    const wave2End = log.indexOf('wave-end 2/3 of 3');
    expect(log.slice(0, wave2End).filter((l) => / 2 tenant_/.test(l))).toHaveLength(6);
    expect(log.slice(0, wave2End).some((l) => / 3 tenant_/.test(l))).toBe(false);
    expect(log.some((l) => l.includes(canary.databaseName))).toBe(false);
    expect(await appliedIn(canary)).toEqual(BUILT_IN);
    await expectHits(rest, 1);
    expect(await other.migrations.tenants.run(run.id)).toMatchObject({ status: 'failed', resumes: resumed.resumes, counts: resumed.counts });

    // A finished run is given back as it is by resume: nothing is carried out again.
    const again = await hosted.migrations.tenants.resume(run.id);
    expect(again).toMatchObject({ status: 'failed', resumes: resumed.resumes, counts: resumed.counts });

    // Only the failures of the run: the canary, in a run of its own.
    const retry = await hosted.migrations.tenants.up({ only: 'failed', of: run.id });
    expect(retry).toMatchObject({ status: 'completed', options: { only: 'failed', of: run.id }, total: 1, succeeded: [canary.id], failed: [] });
    await expectHits(tenants, 1);
    expect(await rejectionCode(hosted.migrations.tenants.up({ only: 'failed' }))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.up({ of: run.id }))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.up({ only: 'failed', of: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');
  });

  it('maxFailureRate halts once the failed share of the finished tenants reaches it; a resume refuses changed migration files', async () => {
    const [r0, r1, r2] = groups.rate as [Tenant, Tenant, Tenant];
    await breakHits(r1);
    const run = await hosted.migrations.tenants.up({ ...inGroup('rate'), maxFailureRate: 0.5, concurrency: 1 });
    // r0 succeeded (0 of 1), r1 failed (1 of 2: the rate reached); r2 never started.
    expect(run).toMatchObject({ status: 'halted', haltedBy: 'maxFailureRate', succeeded: [r0.id], counts: { failed: 1, pending: 1 } });
    expect(run.failed.map((f) => f.tenantId)).toEqual([r1.id]);
    await expectHits([r2], null);

    // The same migration name with other SQL: the run's files changed since it started.
    const changed = env.platform({ tenantMigrations: [await folderWith({ ...HITS_MIGRATION, '0100_hits.sql': `${HITS_MIGRATION['0100_hits.sql']}-- edited\n` })] });
    expect(await rejectionCode(changed.migrations.tenants.resume(run.id))).toBe('CONFLICT');
    expect(await other.migrations.tenants.run(run.id)).toMatchObject({ status: 'halted', resumes: [], counts: { pending: 1 } });
    await expectHits([r2], null);

    // With the run's own files, the resume goes on (r1 still broken: it is not retried).
    const resumed = await other.migrations.tenants.resume(run.id);
    expect(resumed).toMatchObject({ status: 'failed', succeeded: [r0.id, r2.id], counts: { failed: 1, pending: 0 } });
    await expectHits([r0, r2], 1);
  });
});

describe('at ten times the default concurrency', () => {
  it('concurrency 40 with waves over 42 tenants: every outcome recorded once, each migration applied once', async () => {
    const tenants = groups.wide;
    // Budget for all 40 workers on each server; the main pool stays at its default, which the run's lock
    // session and the workers' record writes share.
    const wide = env.platform({ tenantMigrations: [folder], pool: { maxConnections: 40 } });
    const waves: number[] = [];
    const run = await wide.migrations.tenants.up({
      ...inGroup('wide'),
      concurrency: 40,
      waves: [5, '10%', '100%'],
      onWave: (e) => e.type === 'wave-start' && waves.push(e.tenants),
    });
    expect(waves).toEqual([5, 5, 32]);
    expect(run).toMatchObject({ status: 'completed', counts: { total: 42, succeeded: 42, failed: 0, pending: 0 } });
    const read = await other.migrations.tenants.run(run.id);
    expect(read.tenants.map((t) => [t.tenantId, t.outcome, t.applied])).toEqual(tenants.map((t) => [t.id, 'succeeded', ['0100_hits']]));
    expect(read.tenants.every((t) => typeof t.durationMs === 'number')).toBe(true);
    await expectHits(tenants, 1);
    await wide.close();
  });
});

describe('resume and the run lock', () => {
  it('a live run cannot be resumed nor reverted (CONFLICT), from another platform or its own; live says so', async () => {
    const [l0, l1] = groups.live as [Tenant, Tenant];
    const gate = await holdGate(l1);
    let pending: Promise<FleetRun> | undefined;
    try {
      pending = hosted.migrations.tenants.up({ ...inGroup('live'), concurrency: 1 });
      await gate.waiting();
      const [info] = await other.migrations.tenants.runs({ limit: 1 });
      expect(info).toMatchObject({ status: 'running', live: true, finishedAt: null, counts: { total: 2, succeeded: 1, pending: 1 } });
      expect((await other.migrations.tenants.run(info!.id)).tenants.map((t) => [t.tenantId, t.outcome])).toEqual([
        [l0.id, 'succeeded'],
        [l1.id, 'pending'],
      ]);
      expect(await rejectionCode(other.migrations.tenants.resume(info!.id))).toBe('CONFLICT');
      expect(await rejectionCode(hosted.migrations.tenants.resume(info!.id))).toBe('CONFLICT');
      expect(await rejectionCode(other.migrations.tenants.revert(info!.id))).toBe('CONFLICT');
    } finally {
      await gate.release();
    }
    const run = await pending;
    expect(run).toMatchObject({ status: 'completed', live: false, resumes: [], succeeded: [l0.id, l1.id] });
    expect(await other.migrations.tenants.run(run.id)).toMatchObject({ status: 'completed', live: false });
    await expectHits([l0, l1], 1);
  });

  it('two platforms resuming one halted run at once: one carries it, the other gets CONFLICT; each migration runs once', async () => {
    const [x0, ...rest] = groups.race as [Tenant, ...Tenant[]];
    await breakHits(x0);
    const run = await hosted.migrations.tenants.up({ ...inGroup('race'), waves: [1, '100%'], maxFailures: 1 });
    expect(run).toMatchObject({ status: 'halted', counts: { failed: 1, pending: 2 } });

    // The gate keeps the winner's run live until the loser has been answered.
    const gate = await holdGate(rest[0]!);
    const [a, b] = [0, 1].map(() => env.platform({ tenantMigrations: [folder] })) as [Platform, Platform];
    const outcomes = [a, b].map((p) =>
      p.migrations.tenants.resume(run.id).then(
        (value) => ({ value }),
        (error: unknown) => ({ error: error as TenantDbError }),
      ),
    );
    let settled;
    try {
      const first = await Promise.race(outcomes);
      expect('error' in first && first.error.code).toBe('CONFLICT');
      await gate.waiting();
    } finally {
      await gate.release();
      settled = await Promise.all(outcomes);
    }
    const carried = settled.flatMap((o) => ('value' in o ? [o.value] : []));
    const refused = settled.flatMap((o) => ('error' in o ? [o.error.code] : []));
    expect(refused).toEqual(['CONFLICT']);
    expect(carried).toHaveLength(1);
    expect(carried[0]).toMatchObject({ id: run.id, status: 'failed', succeeded: idsOf(rest), counts: { failed: 1, pending: 0 } });
    expect(carried[0]!.resumes).toHaveLength(1);
    await expectHits(rest, 1);
    expect(await appliedIn(x0)).toEqual(BUILT_IN);
    expect((await other.migrations.tenants.run(run.id)).resumes).toHaveLength(1);
  });
});

describe('revert', () => {
  it('takes back exactly what the run applied; a tenant with a later migration on top fails with CONFLICT, left as it is', async () => {
    const [v0, v1] = groups.revert as [Tenant, Tenant];
    const run = await hosted.migrations.tenants.up(inGroup('revert'));
    expect(run.status).toBe('completed');

    // A later deploy applies a further migration to v1 only.
    const later = env.platform({
      tenantMigrations: [
        await folderWith({ ...HITS_MIGRATION, '0101_hits_note.sql': 'ALTER TABLE hits ADD COLUMN note text;\n', '0101_hits_note.down.sql': 'ALTER TABLE hits DROP COLUMN note;\n' }),
      ],
    });
    expect((await later.migrations.tenants.up({ tenants: [v1.id] })).succeeded).toEqual([v1.id]);

    const revert = await later.migrations.tenants.revert(run.id);
    expect(revert).toMatchObject({ kind: 'revert', status: 'failed', options: { revertOf: run.id, tenants: [v0.id, v1.id] }, succeeded: [v0.id] });
    expect(revert.tenants.map((t) => t.applied)).toEqual([['0100_hits'], []]);
    expect(revert.failed.map((f) => f.tenantId)).toEqual([v1.id]);
    expect((revert.failed[0]!.error as TenantDbError).code).toBe('CONFLICT');
    expect(await appliedIn(v0)).toEqual(BUILT_IN);
    expect(await hitsIn(v0)).toBeNull();
    expect(await appliedIn(v1)).toEqual([...BUILT_IN, '0100_hits', '0101_hits_note']);
    expect(await hitsIn(v1)).toBe(1);
    const back = await other.migrations.tenants.run(revert.id);
    expect(back).toMatchObject({ kind: 'revert', status: 'failed' });
    expect((back.failed[0]!.error as TenantDbError).code).toBe('CONFLICT');

    // Only an up run is reverted.
    expect(await rejectionCode(later.migrations.tenants.revert(revert.id))).toBe('VALIDATION');
    expect(await rejectionCode(later.migrations.tenants.revert('00000000-0000-4000-8000-000000000000'))).toBe('NOT_FOUND');
  });
});

describe('selection', () => {
  it('by server, by creation instants and by labels, combined', async () => {
    const [s0, s1, s2, s3] = groups.select as [Tenant, Tenant, Tenant, Tenant];
    expect([s0, s1, s2, s3].map((t) => t.server)).toEqual(['default', 'eu1', 'default', 'eu1']);

    const byServer = await hosted.migrations.tenants.up({ server: 'eu1', ...inGroup('select') });
    expect(byServer).toMatchObject({ status: 'completed', options: { server: 'eu1' }, succeeded: [s1.id, s3.id] });

    const byInstant = await hosted.migrations.tenants.up({ createdAfter: s1.createdAt, createdBefore: s3.createdAt.toISOString(), ...inGroup('select') });
    expect(byInstant.options).toMatchObject({ createdAfter: s1.createdAt.toISOString(), createdBefore: s3.createdAt.toISOString() });
    expect(byInstant.succeeded).toEqual([s1.id, s2.id]);
    expect(byInstant.tenants.map((t) => t.applied)).toEqual([[], ['0100_hits']]);
    expect(await appliedIn(s0)).toEqual(BUILT_IN);
    await expectHits([s1, s2, s3], 1);
  });

  it('with a server down: status() reports its tenants unreachable and the rest; a run fails them fast and does the rest', async () => {
    const [s0, s1, s2, s3] = groups.select as [Tenant, Tenant, Tenant, Tenant];
    const down = env.platform({ tenantServers: { default: SERVERS.default, eu1: refusedServer() }, tenantMigrations: [folder], tenantSpares: 0 });
    const rows = await down.migrations.tenants.status(inGroup('select'));
    expect(rows.map((r) => [r.tenantId, r.server, r.reachable])).toEqual([
      [s0.id, 'default', true],
      [s1.id, 'eu1', false],
      [s2.id, 'default', true],
      [s3.id, 'eu1', false],
    ]);
    expect(rows[0]).toMatchObject({ executed: BUILT_IN, pending: ['0100_hits'] });
    expect(rows[2]).toMatchObject({ executed: [...BUILT_IN, '0100_hits'], pending: [] });
    for (const row of [rows[1]!, rows[3]!]) {
      expect(row).toMatchObject({ executed: [], pending: [] });
      expect((row.error as TenantDbError).code).toBe('UNAVAILABLE');
    }

    const run = await down.migrations.tenants.up(inGroup('select'));
    expect(run).toMatchObject({ status: 'failed', succeeded: [s0.id, s2.id] });
    expect(run.failed.map((f) => [f.tenantId, f.migration, (f.error as TenantDbError).code])).toEqual([
      [s1.id, null, 'UNAVAILABLE'],
      [s3.id, null, 'UNAVAILABLE'],
    ]);
    await expectHits([s0, s1, s2, s3], 1);
  });
});
