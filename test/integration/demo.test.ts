import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { adminQuery, dbUrl, deletePrefix, dropPlatformDatabases, testS3Client, uniqueName } from '../support/env.js';

// `npm run demo` as a user runs it, pointed at the harness' servers through the environment (so that it
// starts none of its own); the run with nothing configured is the fresh-clone check's.
const repo = path.resolve(import.meta.dirname, '../..');
const mainDb = uniqueName('tdbt_demo');
const prefix = `${mainDb}/`;

afterAll(async () => {
  await dropPlatformDatabases(mainDb);
  const s3 = testS3Client();
  try {
    await deletePrefix(s3, inject('s3Bucket'), prefix);
  } finally {
    s3.destroy();
  }
});

function npmRunDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const credentials = inject('s3Credentials');
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TENANTDB_MAIN_URL: dbUrl(mainDb),
    TENANTDB_S3_BUCKET: inject('s3Bucket'),
    TENANTDB_S3_ENDPOINT: inject('s3Endpoint'),
    TENANTDB_S3_REGION: 'us-east-1',
    TENANTDB_S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'demo'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
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
