import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HTTP_STATUS, TenantDbError, isTenantDbError } from '../../src/index.js';
import { asTenantDbError, withTenantDbErrors } from '../../src/errors.js';

describe('TenantDbError', () => {
  it('carries a stable code, a name and the cause', () => {
    const cause = new Error('driver said no');
    const err = new TenantDbError('STORAGE', 'the object store failed', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(TenantDbError);
    expect(err.code).toBe('STORAGE');
    expect(err.name).toBe('TenantDbError');
    expect(err.cause).toBe(cause);
    expect(String(err)).toBe('TenantDbError: the object store failed');
  });

  it('is recognised by the guard, with or without a code', () => {
    const err = new TenantDbError('CONFLICT', 'taken');
    expect(isTenantDbError(err)).toBe(true);
    expect(isTenantDbError(err, 'CONFLICT')).toBe(true);
    expect(isTenantDbError(err, 'NOT_FOUND')).toBe(false);
    expect(isTenantDbError(new Error('x'))).toBe(false);
    expect(new Error('x') instanceof TenantDbError).toBe(false);
    expect((null as unknown) instanceof TenantDbError).toBe(false);
  });

  it('maps every code to an HTTP status', () => {
    for (const code of ERROR_CODES) expect(HTTP_STATUS[code]).toBeGreaterThanOrEqual(400);
    expect(HTTP_STATUS.TENANT_INACTIVE).toBe(423);
    expect(HTTP_STATUS.STORAGE).toBe(502);
  });
});

describe('withTenantDbErrors', () => {
  class Service {
    #secret = 'kept';
    async fails(): Promise<never> {
      throw Object.assign(new Error('connection terminated'), { code: '57P01' });
    }
    async refuses(): Promise<never> {
      throw new TenantDbError('FORBIDDEN', 'no');
    }
    throwsSync(): never {
      throw new Error('sync');
    }
    async reads(): Promise<string> {
      return this.#secret; // private fields still work behind the proxy
    }
  }
  const service = withTenantDbErrors(new Service());

  it('turns an unexpected failure into DATABASE with the original as cause', async () => {
    await expect(service.fails()).rejects.toMatchObject({ code: 'DATABASE', cause: { code: '57P01' } });
    expect(() => service.throwsSync()).toThrow(expect.objectContaining({ code: 'DATABASE' }));
  });

  it('passes TenantDbErrors and results through unchanged', async () => {
    await expect(service.refuses()).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(service.reads()).resolves.toBe('kept');
    expect(asTenantDbError(new TenantDbError('CONFLICT', 'x')).code).toBe('CONFLICT');
  });
});
