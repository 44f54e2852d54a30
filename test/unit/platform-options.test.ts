import { describe, expect, it } from 'vitest';
import { createPlatform, type PlatformOptions } from '../../src/index.js';
import { thrownCode } from '../support/errors.js';

const base: PlatformOptions = {
  mainUrl: 'postgres://postgres:secret-pw@127.0.0.1:1/saas_platform',
  s3: { bucket: 'tenantdb' },
};

describe('createPlatform options', () => {
  it('opens nothing: a platform on an unreachable server is created at once', () => {
    // Port 1 answers nothing; creating must not try.
    expect(() => createPlatform(base)).not.toThrow();
  });

  it.each([
    ['missing mainUrl', { ...base, mainUrl: undefined }],
    ['empty mainUrl', { ...base, mainUrl: '' }],
    ['mainUrl not postgres', { ...base, mainUrl: 'mysql://x/y' }],
    ['mainUrl without database', { ...base, mainUrl: 'postgres://127.0.0.1:5432' }],
    ['missing s3', { ...base, s3: undefined }],
    ['missing bucket', { ...base, s3: {} }],
    ['zero maxTenantPools', { ...base, pool: { maxTenantPools: 0 } }],
    ['negative maxConnections', { ...base, pool: { maxConnections: -1 } }],
    ['fractional maxConnectionsPerTenant', { ...base, pool: { maxConnectionsPerTenant: 1.5 } }],
    ['zero idleMs', { ...base, pool: { idleMs: 0 } }],
    ['zero maxBytes', { ...base, documents: { maxBytes: 0 } }],
    ['bad server name', { ...base, tenantServers: { 'no spaces': 'postgres://h/x' } }],
    ['bad server url', { ...base, tenantServers: { eu1: 'http://h' } }],
    ['migrations not an array', { ...base, tenantMigrations: 'migrations' }],
  ])('throws VALIDATION synchronously: %s', (_name, options) => {
    expect(thrownCode(() => createPlatform(options as unknown as PlatformOptions))).toBe('VALIDATION');
  });

  it('never puts the password of mainUrl in an error message', () => {
    try {
      createPlatform({ ...base, pool: { maxConnections: 0 } });
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('secret-pw');
    }
  });

  it('rejects every call with CLOSED after close(), and close() is idempotent', async () => {
    const platform = createPlatform(base);
    const first = platform.close();
    expect(platform.close()).toBe(first);
    await first;
    await expect(platform.init()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('supports await using', async () => {
    let ref: ReturnType<typeof createPlatform> | undefined;
    {
      await using platform = createPlatform(base);
      ref = platform;
    }
    await expect(ref.init()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
