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
    expect(HTTP_STATUS.UNAVAILABLE).toBe(503);
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
    expect(asTenantDbError(new TenantDbError('CONFLICT', 'x'))).toMatchObject({ code: 'CONFLICT' });
  });

  it('lets a bug in the library (TypeError, RangeError) through as it is, not as DATABASE', async () => {
    const buggy = withTenantDbErrors({
      async reads(): Promise<never> {
        throw new TypeError("Cannot read properties of undefined (reading 'rows')");
      },
      throwsSync(): never {
        throw new RangeError('bad length');
      },
    });
    const err = await buggy.reads().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).not.toBeInstanceOf(TenantDbError);
    expect(() => buggy.throwsSync()).toThrow(RangeError);
  });
});

describe('retryable', () => {
  const pgError = (code: string): Error => Object.assign(new Error(`pg ${code}`), { code });

  it('is true for UNAVAILABLE, whatever the cause', () => {
    expect(new TenantDbError('UNAVAILABLE', 'x').retryable).toBe(true);
    expect(new TenantDbError('UNAVAILABLE', 'x', { cause: pgError('23505') }).retryable).toBe(true);
  });

  it.each([
    ['57P01', 'admin shutdown'],
    ['08006', 'connection failure'],
    ['57014', 'statement timeout'],
    ['25P03', 'idle-in-transaction timeout'],
    ['40001', 'serialization failure'],
    ['53300', 'too many connections'],
  ])('is true for DATABASE caused by SQLSTATE %s (%s)', (code) => {
    expect(new TenantDbError('DATABASE', 'x', { cause: pgError(code) }).retryable).toBe(true);
  });

  it('is true for a lost socket, a pg connection end or a connect timeout, also deeper in the cause chain', () => {
    expect(new TenantDbError('DATABASE', 'x', { cause: Object.assign(new Error('read'), { code: 'ECONNRESET' }) }).retryable).toBe(true);
    expect(new TenantDbError('DATABASE', 'x', { cause: new Error('Connection terminated unexpectedly') }).retryable).toBe(true);
    const wrapped = new Error('outer', { cause: new Error('timeout expired') });
    expect(new TenantDbError('DATABASE', 'x', { cause: wrapped }).retryable).toBe(true);
  });

  it('is true for STORAGE caused by an SDK error marked retryable, a timeout or a 5xx', () => {
    const throttled = Object.assign(new Error('slow down'), { name: 'SlowDown', $retryable: { throttling: true } });
    const unavailable = Object.assign(new Error('503'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
    expect(new TenantDbError('STORAGE', 'x', { cause: throttled }).retryable).toBe(true);
    expect(new TenantDbError('STORAGE', 'x', { cause: unavailable }).retryable).toBe(true);
  });

  it('is false for a constraint violation, a missing object and the codes of bad input', () => {
    expect(new TenantDbError('DATABASE', 'x', { cause: pgError('23505') }).retryable).toBe(false);
    const missing = Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    expect(new TenantDbError('STORAGE', 'x', { cause: missing }).retryable).toBe(false);
    expect(new TenantDbError('DATABASE', 'x').retryable).toBe(false);
    for (const code of ['VALIDATION', 'CONFLICT', 'NOT_FOUND', 'FORBIDDEN', 'TENANT_NOT_READY', 'CLOSED'] as const) {
      expect(new TenantDbError(code, 'x', { cause: pgError('57P01') }).retryable).toBe(false);
    }
  });

  it('can be set explicitly', () => {
    expect(new TenantDbError('DATABASE', 'x', { cause: pgError('57P01'), retryable: false }).retryable).toBe(false);
  });
});
