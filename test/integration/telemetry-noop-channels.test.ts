import diagnostics from 'node:diagnostics_channel';
import { randomUUID } from 'node:crypto';
import { metrics, trace } from '@opentelemetry/api';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TELEMETRY_CHANNELS, type Platform, type TelemetryMessage, type Tenant } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { createTestUser } from '../support/users.js';

const env = useTestPlatform();
let base: Platform;
let tenant: Tenant;
let userId: string;
const unsubscribe: Array<() => void> = [];

/** Collects the messages of `channel` until the test ends. */
function listen(channel: string): TelemetryMessage[] {
  const messages: TelemetryMessage[] = [];
  const onMessage = (m: unknown): void => void messages.push(m as TelemetryMessage);
  diagnostics.subscribe(channel, onMessage);
  unsubscribe.push(() => diagnostics.unsubscribe(channel, onMessage));
  return messages;
}

beforeAll(async () => {
  base = await env.initPlatform({ tenantSpares: 0 });
  tenant = await base.tenants.create({ name: 'Plain' });
  userId = (await createTestUser(base, 'Plain')).id;
});

afterEach(() => {
  for (const fn of unsubscribe.splice(0)) fn();
});

describe('telemetry with no SDK registered', () => {
  it('works as without it: no provider registered globally, nothing active in fn, every call as usual', async () => {
    // Nothing registered: the API hands out its no-op providers.
    expect(metrics.getMeterProvider().getMeter('x')).toBe(metrics.getMeterProvider().getMeter('y'));
    const platform = await env.initPlatform({ tenantSpares: 0 });
    const seen = await platform.withTenant(tenant.id, async (ctx) => {
      expect(trace.getActiveSpan()).toBeUndefined();
      return (await ctx.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
    });
    expect(seen).toBe(1);
    expect(await rejectionCode(platform.withTenant(randomUUID(), () => 1))).toBe('NOT_FOUND');
    const created = await platform.tenants.create({ name: 'Plain two' });
    const doc = await platform.withTenant(created.id, (ctx) => ctx.documents.upload({ filename: 'a.txt', body: 'plain', userId }));
    expect(doc.sizeBytes).toBe(5);
    expect(await platform.storage.sweep({ tenantId: created.id })).toMatchObject({ objectsDeleted: 0 });
  });

  it('telemetry: false works too', async () => {
    const platform = await env.initPlatform({ tenantSpares: 0, telemetry: false });
    expect(await platform.withTenant(tenant.id, () => 'ok')).toBe('ok');
  });

  it('an SDK that throws everywhere changes nothing: results and errors are the calls\' own', async () => {
    const boom = (): never => {
      throw new Error('exporter down');
    };
    const instrument = { record: boom, add: boom };
    const meter = new Proxy({}, { get: (_, name) => (name === 'addBatchObservableCallback' || name === 'removeBatchObservableCallback' ? boom : () => instrument) });
    const span = { setAttributes: boom, setAttribute: boom, setStatus: boom, recordException: boom, end: boom, spanContext: boom, isRecording: () => true };
    const platform = await env.initPlatform({
      tenantSpares: 0,
      telemetry: { meterProvider: { getMeter: () => meter }, tracerProvider: { getTracer: () => ({ startSpan: () => span }) } },
    });
    expect(await platform.withTenant(tenant.id, async (ctx) => (await ctx.query<{ two: number }>('SELECT 2 AS two')).rows[0]!.two)).toBe(2);
    expect(await rejectionCode(platform.withTenant(randomUUID(), () => 1))).toBe('NOT_FOUND');
    await expect(platform.withTenant(tenant.id, () => Promise.reject(new TypeError('mine')))).rejects.toThrow('mine');
    const created = await platform.tenants.create({ name: 'Through a broken SDK' });
    expect(created.name).toBe('Through a broken SDK');
    const failing = await env.initPlatform({
      tenantSpares: 0,
      telemetry: { tracerProvider: { getTracer: () => ({ startSpan: boom }) }, meterProvider: { getMeter: boom } },
    });
    expect(await failing.withTenant(tenant.id, () => 3)).toBe(3);
  });
});

describe('telemetry on diagnostics_channel', () => {
  it('publishes each withTenant once it ended, with the tenant, its duration and a failure\'s code', async () => {
    const messages = listen(TELEMETRY_CHANNELS.withTenant);
    const platform = await env.initPlatform({ tenantSpares: 0, telemetry: false });
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    await rejectionCode(platform.withTenant(tenant.id, () => 1, { userId: randomUUID() }));
    expect(messages).toHaveLength(2);
    expect(messages[0]).toEqual({
      operation: 'withTenant',
      tenantId: tenant.id,
      databaseName: tenant.databaseName,
      server: 'default',
      durationMs: expect.any(Number),
    });
    expect(messages[1]).toMatchObject({ operation: 'withTenant', tenantId: tenant.id, code: 'FORBIDDEN', error: expect.objectContaining({ code: 'FORBIDDEN' }) });
    expect(messages[0]!.durationMs).toBeGreaterThan(0);
  });

  it('publishes creates with their source, uploads with bytes and dedup, sweeps with their counts', async () => {
    const creates = listen(TELEMETRY_CHANNELS['tenants.create']);
    const uploads = listen(TELEMETRY_CHANNELS['documents.upload']);
    const sweeps = listen(TELEMETRY_CHANNELS['storage.sweep']);
    const created = await base.tenants.create({ name: 'Published' });
    expect(creates).toEqual([
      { operation: 'tenants.create', tenantId: created.id, databaseName: created.databaseName, server: 'default', source: 'clone', durationMs: expect.any(Number) },
    ]);
    await base.withTenant(created.id, async (ctx) => {
      await ctx.documents.upload({ filename: 'one.txt', body: 'twice', userId });
      await ctx.documents.upload({ filename: 'two.txt', body: 'twice', userId });
    });
    expect(uploads.map((m) => [m.sizeBytes, m.deduplicated, m.tenantId])).toEqual([
      [5, false, created.id],
      [5, true, created.id],
    ]);
    await base.storage.sweep({ tenantId: created.id });
    expect(sweeps).toEqual([{ operation: 'storage.sweep', tenantId: created.id, objectsDeleted: 0, uploadsAborted: 0, durationMs: expect.any(Number) }]);
  });
});
