// Packs the package as npm would publish it, lints the tarball (publint, Are the Types Wrong?), then
// installs it into an empty project and loads it with both `require` and `import`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const work = mkdtempSync(path.join(os.tmpdir(), 'tenantdb-pack-'));
try {
  run('npm', ['pack', '--silent', '--pack-destination', work]);
  const tgz = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz')));
  run('npx', ['publint', 'run', tgz, '--strict']);
  run('npx', ['attw', tgz, '--profile', 'node16']);

  const app = path.join(work, 'app');
  run('mkdir', ['-p', app]);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  run('npm', ['install', '--silent', '--no-audit', '--no-fund', '--prefer-offline', tgz], { cwd: app });
  const check = `
    const cjs = require('@org/tenantdb');
    import('@org/tenantdb').then((esm) => {
      const a = new cjs.TenantDbError('CONFLICT', 'x');
      const b = new esm.TenantDbError('CONFLICT', 'x');
      if (!(a instanceof esm.TenantDbError) || !(b instanceof cjs.TenantDbError)) throw new Error('instanceof across builds');
      if (typeof cjs.createPlatform !== 'function' || typeof esm.createPlatform !== 'function') throw new Error('createPlatform');
      const expressCjs = require('@org/tenantdb/express');
      const fastifyCjs = require('@org/tenantdb/fastify');
      return Promise.all([import('@org/tenantdb/express'), import('@org/tenantdb/fastify')]).then(([expressEsm, fastifyEsm]) => {
        for (const [name, mod] of [['express cjs', expressCjs], ['express esm', expressEsm]]) {
          if (typeof mod.tenancy !== 'function' || typeof mod.errorHandler !== 'function') throw new Error(name);
        }
        for (const [name, mod] of [['fastify cjs', fastifyCjs], ['fastify esm', fastifyEsm]]) {
          if (typeof mod.tenancyPlugin !== 'function') throw new Error(name);
        }
        const fs = require('node:fs');
        const path = require('node:path');
        const root = path.dirname(require.resolve('@org/tenantdb/package.json'));
        for (const family of ['main', 'tenant']) {
          if (!fs.readdirSync(path.join(root, 'migrations', family)).some((f) => f.endsWith('.sql'))) throw new Error('migrations/' + family);
        }
        console.log('installed tarball loads with require and import (root, express, fastify), migrations shipped');
      });
    });`;
  run('node', ['-e', check], { cwd: app, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
} finally {
  rmSync(work, { recursive: true, force: true });
}
