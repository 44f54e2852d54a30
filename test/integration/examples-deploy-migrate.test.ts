import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, inject } from 'vitest';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { runProcess, type ProcessRun } from '../support/spawn.js';

function run(env: NodeJS.ProcessEnv): Promise<ProcessRun> {
  return runProcess(process.execPath, ['--import', 'tsx', 'examples/deploy-migrate.ts', '--concurrency', '3'], { ...process.env, ...env });
}

describe('examples/deploy-migrate.ts', () => {
  const env = useTestPlatform();
  let folder: string;
  afterAll(() => rm(folder, { recursive: true, force: true }));

  it('migrates every tenant, exits 1 when one fails, and a rerun finishes it', async () => {
    const platform = await env.initPlatform();
    const tenants = await Promise.all(['One', 'Two', 'Three'].map((name) => platform.tenants.create({ name })));
    // The host migration fails in tenant Two, where its table already exists.
    await platform.withTenant(tenants[1]!, (ctx) => ctx.query('CREATE TABLE invoices (id int)'));
    folder = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-deploy-'));
    await writeFile(path.join(folder, '0100_invoices.sql'), 'CREATE TABLE invoices (id uuid PRIMARY KEY, total numeric NOT NULL);');
    const processEnv = {
      TENANTDB_MAIN_URL: env.mainUrl,
      TENANTDB_S3_BUCKET: inject('s3Bucket'),
      TENANTDB_TENANT_MIGRATIONS: folder,
    };

    const first = await run(processEnv);
    expect(first.code).toBe(1);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({ status: 'failed', total: 3, succeeded: 2, failed: [{ tenantId: tenants[1]!.id, migration: '0100_invoices' }] });
    expect((await platform.migrations.tenants.run(summary.runId)).failed.map((f) => f.tenantId)).toEqual([tenants[1]!.id]);
    expect(first.stderr).toMatch(/\[3\/3\]/);

    await platform.withTenant(tenants[1]!, (ctx) => ctx.query('DROP TABLE invoices'));
    const second = await run(processEnv);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ status: 'completed', total: 3, succeeded: 3, failed: [] });
    for (const t of tenants) {
      const { rows } = await adminQuery("SELECT count(*)::int AS n FROM tenantdb_migrations WHERE name = '0100_invoices'", [], t.databaseName);
      expect(rows[0]!.n).toBe(1);
    }
  });
});
