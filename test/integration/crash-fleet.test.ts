import { beforeAll, describe, expect, it } from 'vitest';
import type { StepName } from '../../src/index.js';
import { crashAt, expectConsistent } from '../support/crash.js';
import { uniqueName, useTestPlatform } from '../support/env.js';
import { useTempFolders } from '../support/temp-folders.js';

// A process killed with SIGKILL at each step of a fleet migration. Each migration commits with its
// bookkeeping row or not at all, so every tenant database is at one schema version (a prefix of the
// migrations, each whole), and the next run finishes the fleet.
const folderWith = useTempFolders('tenantdb-crash-fleet');
const MIGRATIONS = ['0001_initial', '0100_crash_a', '0101_crash_b'];
const TABLES = { '0100_crash_a': 'crash_a', '0101_crash_b': 'crash_b' };

describe('killed during a fleet migration', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  const tag = uniqueName('crash');
  let folder: string;

  beforeAll(async () => {
    const platform = await env.initPlatform();
    for (let i = 0; i < 3; i++) await platform.tenants.create({ name: `${tag} ${i}` });
    await platform.close();
    folder = await folderWith({
      '0100_crash_a.sql': 'CREATE TABLE crash_a (id int);',
      '0101_crash_b.sql': 'CREATE TABLE crash_b (id int); INSERT INTO crash_b VALUES (1);',
    });
  });

  // In order: each run starts where the last one died, so every step still has work to die in.
  it.each<[StepName, number]>([
    ['migration:applied', 1], // the first tenant's 0100, inside its transaction
    ['migration:committed', 1], // the first tenant's 0100 committed, its 0101 not begun
    ['fleet:tenant-done', 1], // the first tenant whole, the others untouched
    ['fleet:tenant', 2], // the second tenant about to start
    ['migration:applied', 2], // mid-transaction of a later migration
  ])('at %s (#%i): every tenant is at one version, and the next run finishes', async (at, nth) => {
    const options = env.options({ tenantMigrations: [folder] });
    await crashAt({ options, action: 'fleet', at, nth, databasePrefix: 'tenant_' });
    const platform = await env.initPlatform({ tenantMigrations: [folder] });
    await platform.close();
    await expectConsistent(env.mainDb, { migrations: MIGRATIONS, tables: TABLES, namePrefix: `tenant_${tag}` });
  });

  it('a last run completes the fleet', async () => {
    const platform = await env.initPlatform({ tenantMigrations: [folder] });
    const run = await platform.migrations.tenants.up();
    expect(run.failed).toEqual([]);
    expect(run.succeeded).toHaveLength(3);
    for (const row of await platform.migrations.tenants.status()) expect(row.executed).toEqual(MIGRATIONS);
    await platform.close();
    await expectConsistent(env.mainDb, { migrations: MIGRATIONS, tables: TABLES, namePrefix: `tenant_${tag}` });
  });
});
