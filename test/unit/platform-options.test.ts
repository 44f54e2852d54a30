import { describe, expect, it } from 'vitest';
import { createPlatform, type PlatformOptions } from '../../src/index.js';
import { resolveOptions } from '../../src/platform/options.js';
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
    ['s3.partSize under 5 MiB', { ...base, s3: { bucket: 'b', partSize: 1024 } }],
    ['s3.queueSize zero', { ...base, s3: { bucket: 'b', queueSize: 0 } }],
    ['s3.queueSize fractional', { ...base, s3: { bucket: 'b', queueSize: 1.5 } }],
    ['mainAdminUrl not postgres', { ...base, mainAdminUrl: 'http://h/x' }],
    ['mainAdminUrl without database', { ...base, mainAdminUrl: 'postgres://127.0.0.1:5432' }],
    ['tenant server object without url', { ...base, tenantServers: { eu1: { adminUrl: 'postgres://h' } } }],
    ['tenant server adminUrl not postgres', { ...base, tenantServers: { eu1: { url: 'postgres://h', adminUrl: 'mysql://h' } } }],
    ['tenantServers not an object', { ...base, tenantServers: 'postgres://h' }],
    ['zero connectTimeoutMs', { ...base, pool: { connectTimeoutMs: 0 } }],
    ['negative statementTimeoutMs', { ...base, pool: { statementTimeoutMs: -5 } }],
    ['zero statementTimeoutMs', { ...base, pool: { statementTimeoutMs: 0 } }],
    ['fractional idleInTransactionTimeoutMs', { ...base, pool: { idleInTransactionTimeoutMs: 1.5 } }],
    ['zero maxMainConnections', { ...base, pool: { maxMainConnections: 0 } }],
    ['zero maxAdminConnections', { ...base, pool: { maxAdminConnections: 0 } }],
    ['pool not an object', { ...base, pool: 5 }],
    ['sharedBudget not an object', { ...base, pool: { sharedBudget: 30 } }],
    ['sharedBudget without maxConnections', { ...base, pool: { sharedBudget: {} } }],
    ['sharedBudget.maxConnections zero', { ...base, pool: { sharedBudget: { maxConnections: 0 } } }],
    ['sharedBudget.maxConnections fractional', { ...base, pool: { sharedBudget: { maxConnections: 2.5 } } }],
    ['sharedBudget.maxConnections a string', { ...base, pool: { sharedBudget: { maxConnections: '30' } } }],
    ['logger without methods', { ...base, logger: { info: () => {} } }],
    ['negative server weight', { ...base, tenantServers: { eu1: { url: 'postgres://h', weight: -1 } } }],
    ['server weight not a number', { ...base, tenantServers: { eu1: { url: 'postgres://h', weight: '2' } } }],
    ['infinite server weight', { ...base, tenantServers: { eu1: { url: 'postgres://h', weight: Infinity } } }],
    ['placement not a function', { ...base, placement: 'eu1' }],
  ])('throws VALIDATION synchronously: %s', (_name, options) => {
    expect(thrownCode(() => createPlatform(options as unknown as PlatformOptions))).toBe('VALIDATION');
  });

  it('fills in admin URLs: mainAdminUrl defaults to mainUrl, a server given as a string is its own admin', () => {
    const resolved = resolveOptions({
      ...base,
      tenantServers: { eu1: 'postgres://u:p@eu1:5432', us1: { url: 'postgres://u:p@bouncer:6432', adminUrl: 'postgres://u:p@us1:5432/' } },
    });
    expect(resolved.mainAdminUrl).toBe(resolved.mainUrl);
    expect(resolved.tenantServers.eu1).toEqual({ url: 'postgres://u:p@eu1:5432', adminUrl: 'postgres://u:p@eu1:5432', weight: 1 });
    expect(resolved.tenantServers.us1).toEqual({ url: 'postgres://u:p@bouncer:6432', adminUrl: 'postgres://u:p@us1:5432', weight: 1 });
    expect(resolved.tenantServers.default).toEqual({
      url: 'postgres://postgres:secret-pw@127.0.0.1:1',
      adminUrl: 'postgres://postgres:secret-pw@127.0.0.1:1',
      weight: 1,
    });
    const pooled = resolveOptions({ ...base, mainUrl: 'postgres://u@bouncer:6432/saas', mainAdminUrl: 'postgres://u@db:5432/saas' });
    expect(pooled.tenantServers.default).toEqual({ url: 'postgres://u@bouncer:6432', adminUrl: 'postgres://u@db:5432', weight: 1 });
  });

  it('fills in the pool defaults: connect timeout 10 s, no statement timeout, idle in transaction 60 s', () => {
    expect(resolveOptions(base).pool).toEqual({
      maxTenantPools: undefined,
      maxConnectionsPerTenant: 4,
      maxConnections: 50,
      idleMs: 30_000,
      acquireTimeoutMs: 30_000,
      maxMainConnections: 10,
      maxAdminConnections: 2,
      connectTimeoutMs: 10_000,
      statementTimeoutMs: undefined,
      idleInTransactionTimeoutMs: 60_000,
      moveWaitMs: 10_000,
      sharedBudget: undefined,
    });
    expect(resolveOptions({ ...base, pool: { idleInTransactionTimeoutMs: 0 } }).pool.idleInTransactionTimeoutMs).toBe(0);
    expect(resolveOptions({ ...base, pool: { sharedBudget: { maxConnections: 30 } } }).pool.sharedBudget).toEqual({ maxConnections: 30 });
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
