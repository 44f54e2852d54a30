import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

// `npm test` builds first; this checks what a host app loads, not the sources.
const dist = path.resolve(import.meta.dirname, '../../dist');

describe('the dual ESM/CJS build', () => {
  it('loads both ways, and TenantDbError instanceof holds across the two copies', async () => {
    const cjs = createRequire(import.meta.url)(path.join(dist, 'index.cjs'));
    const esm = await import(pathToFileURL(path.join(dist, 'index.js')).href);
    expect(cjs.TenantDbError).not.toBe(esm.TenantDbError);
    const fromCjs = new cjs.TenantDbError('NOT_FOUND', 'no such tenant');
    const fromEsm = new esm.TenantDbError('NOT_FOUND', 'no such tenant');
    expect(fromCjs instanceof esm.TenantDbError).toBe(true);
    expect(fromEsm instanceof cjs.TenantDbError).toBe(true);
    expect(new Error('plain') instanceof cjs.TenantDbError).toBe(false);
    expect(typeof cjs.createPlatform).toBe('function');
    expect(typeof esm.createPlatform).toBe('function');
  });

  it('loads the bullmq subpath both ways; its errors are TenantDbErrors of either build', async () => {
    const cjs = createRequire(import.meta.url)(path.join(dist, 'bullmq.cjs'));
    const esm = await import(pathToFileURL(path.join(dist, 'bullmq.js')).href);
    const root = await import(pathToFileURL(path.join(dist, 'index.js')).href);
    for (const mod of [cjs, esm]) {
      expect(typeof mod.tenantQueue).toBe('function');
      expect(typeof mod.tenantWorker).toBe('function');
      let err: unknown;
      try {
        mod.tenantQueue(null, null);
      } catch (e) {
        err = e;
      }
      expect(err instanceof root.TenantDbError).toBe(true);
      expect((err as { code?: string }).code).toBe('VALIDATION');
    }
  });
});
