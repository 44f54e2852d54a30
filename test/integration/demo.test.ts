import { afterAll, describe, expect, it } from 'vitest';
import { adminQuery, cleanUpPlatform, harnessProcessEnv, uniqueName } from '../support/env.js';
import { runProcess, type ProcessRun } from '../support/spawn.js';

// `npm run demo` as a user runs it, pointed at the harness' servers through the environment (so that it
// starts none of its own); the run with nothing configured is the fresh-clone check's.
const mainDb = uniqueName('tdbt_demo');

afterAll(() => cleanUpPlatform(mainDb));

function npmRunDemo(): Promise<ProcessRun> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...harnessProcessEnv(mainDb) };
  return runProcess('npm', ['run', '--silent', 'demo'], env);
}

describe('npm run demo', () => {
  it('runs twice in a row on the same servers, keeping the data, and exits 0 each time', async () => {
    for (let run = 1; run <= 2; run++) {
      const result = await npmRunDemo();
      expect(result.code, `run ${run}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('deduplicated');
    }
    // Both runs' tenants are kept, and the demo's migration reached every one of them.
    const tenants = await adminQuery<{ database_name: string }>('SELECT database_name FROM tenants', [], mainDb);
    expect(tenants.rows).toHaveLength(4);
    for (const { database_name: db } of tenants.rows) {
      const applied = await adminQuery('SELECT 1 FROM tenantdb_migrations WHERE name = $1', ['9001_demo_document_tags'], db);
      expect(applied.rowCount, db).toBe(1);
    }
    const users = await adminQuery('SELECT 1 FROM users', [], mainDb);
    expect(users.rowCount).toBe(6);
  }, 120_000);
});
