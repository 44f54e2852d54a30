import { hostname } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FleetProgressEvent, Platform, StepName, Tenant } from '../../src/index.js';
import { crashAt } from '../support/crash.js';
import { useTestPlatform } from '../support/env.js';
import { HITS_MIGRATION, appliedIn, createGroups, hitsIn } from '../support/fleet-runs.js';
import { useTempFolders } from '../support/temp-folders.js';

// A fleet run whose process is killed with SIGKILL at a chosen tenant, then resumed from this process: the
// tenants done before the kill are not migrated again, the others are, and the run completes.
const env = useTestPlatform({ tenantSpares: 0 });
const folderWith = useTempFolders('tenantdb-crash-resume');
let folder: string;
let platform: Platform;
let groups: Record<'started' | 'committed', Tenant[]>;

beforeAll(async () => {
  folder = await folderWith(HITS_MIGRATION);
  const base = await env.initPlatform();
  groups = await createGroups(base, { started: 4, committed: 4 });
  await base.close();
  platform = env.platform({ tenantMigrations: [folder] });
});

describe('a fleet run killed at a tenant, resumed from another process', () => {
  it.each<['started' | 'committed', StepName, number, { recorded: number; committed: number }]>([
    // About to start the third tenant: two done and recorded.
    ['started', 'fleet:tenant', 3, { recorded: 2, committed: 2 }],
    // The second tenant's migration committed, its outcome not recorded yet: pending in the record.
    ['committed', 'fleet:tenant-done', 2, { recorded: 1, committed: 2 }],
  ])('%s (%s #%i): done tenants untouched, the others migrated once, the run completed', async (group, at, nth, { recorded, committed }) => {
    const tenants = groups[group];
    const message = await crashAt({
      options: env.options({ tenantMigrations: [folder] }),
      action: 'fleet',
      fleet: { concurrency: 1, labels: { group } },
      at,
      nth,
      databasePrefix: 'tenant_',
    });
    expect(message.tenantId).toBe(tenants[nth - 1]!.id);

    // Read back while its process is dead: still running by its record, but nobody carries it.
    const [info] = await platform.migrations.tenants.runs({ limit: 1 });
    const dead = await platform.migrations.tenants.run(info!.id);
    expect(dead).toMatchObject({ kind: 'up', status: 'running', live: false, finishedAt: null, host: hostname(), resumes: [] });
    expect(dead.pid).not.toBe(process.pid);
    expect(dead.options).toEqual({ concurrency: 1, labels: { group } });
    expect(dead.tenants.map((t) => t.outcome)).toEqual(tenants.map((_, i) => (i < recorded ? 'succeeded' : 'pending')));
    for (const [i, t] of tenants.entries()) expect(await hitsIn(t), t.databaseName).toBe(i < committed ? 1 : null);

    const events: FleetProgressEvent[] = [];
    const run = await platform.migrations.tenants.resume(dead.id, { onProgress: (e) => events.push(e) });
    expect(run).toMatchObject({ id: dead.id, status: 'completed', live: false, succeeded: tenants.map((t) => t.id), failed: [] });
    expect(run.resumes).toEqual([{ host: hostname(), pid: process.pid, at: expect.any(Date) }]);
    // Every tenant has the migration once, and the run says so: a tenant whose commit came before the kill
    // but whose record did not is found by the run_id of its bookkeeping row, not migrated again.
    for (const t of tenants) {
      expect(await hitsIn(t), t.databaseName).toBe(1);
      expect(await appliedIn(t)).toEqual(['0001_initial', '0100_hits']);
    }
    expect(run.tenants.map((t) => t.applied)).toEqual(tenants.map(() => ['0100_hits']));
    // The recorded tenants were not started again.
    expect([...new Set(events.map((e) => e.tenantId))]).toEqual(tenants.slice(recorded).map((t) => t.id));
    expect(await platform.migrations.tenants.run(dead.id)).toEqual(run);
  });
});
