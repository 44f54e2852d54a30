import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Api from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';

// `npm test` builds first: these load what a host app loads, not the sources, and check that the
// shipped migrations folder is found from there.
const repo = path.resolve(import.meta.dirname, '../..');
const dist = path.join(repo, 'dist');
const run = promisify(execFile);

const env = useTestPlatform();
const work: string[] = [];

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${env.mainDb}"`);
});
afterAll(async () => {
  for (const dir of work) await rm(dir, { recursive: true, force: true });
});

async function pendingWith(api: typeof Api): Promise<Array<{ name: string; path?: string }>> {
  const platform = api.createPlatform(env.options());
  try {
    return await platform.migrations.main.pending();
  } finally {
    await platform.close();
  }
}

/** The main migrations of the package at `root`, as `pending()` lists them. */
const shippedIn = (root: string): Array<{ name: string; path: string }> =>
  ['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs'].map((name) => ({ name, path: path.join(root, 'migrations', 'main', `${name}.sql`) }));

describe('the built package finds its migrations', () => {
  it('from dist/index.js (ESM)', async () => {
    const esm = (await import(pathToFileURL(path.join(dist, 'index.js')).href)) as typeof Api;
    expect(await pendingWith(esm)).toEqual(shippedIn(repo));
  });

  it('from dist/index.cjs (CommonJS)', async () => {
    const cjs = createRequire(import.meta.url)(path.join(dist, 'index.cjs')) as typeof Api;
    expect(await pendingWith(cjs)).toEqual(shippedIn(repo));
  });

  it('from an npm-pack install, with require and import', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-packed-'));
    work.push(dir);
    await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: repo });
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
    const installed = path.join(dir, 'app', 'node_modules', '@org', 'tenantdb');
    await mkdir(installed, { recursive: true });
    await run('tar', ['-xzf', path.join(dir, tarball), '-C', installed, '--strip-components=1']);
    // Its dependencies, as an install would have them, without going to the registry.
    for (const entry of await readdir(path.join(repo, 'node_modules'))) {
      if (entry.startsWith('.') || entry === '@org') continue;
      await symlink(path.join(repo, 'node_modules', entry), path.join(dir, 'app', 'node_modules', entry));
    }
    const script = `
      const cjs = require('@org/tenantdb');
      const list = async (api) => {
        const p = api.createPlatform({ mainUrl: process.env.MAIN_URL, s3: { bucket: 'unused' } });
        try { return await p.migrations.main.pending(); } finally { await p.close(); }
      };
      import('@org/tenantdb').then(async (esm) => {
        process.stdout.write(JSON.stringify({ cjs: await list(cjs), esm: await list(esm) }));
      });`;
    const { stdout } = await run(process.execPath, ['-e', script], {
      cwd: path.join(dir, 'app'),
      env: { ...process.env, MAIN_URL: env.mainUrl, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    const shipped = shippedIn(installed);
    expect(JSON.parse(stdout)).toEqual({ cjs: shipped, esm: shipped });
  });
});
