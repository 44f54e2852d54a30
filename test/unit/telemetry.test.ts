import diagnostics from 'node:diagnostics_channel';
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { TELEMETRY_CHANNELS, TenantDbError, createPlatform, type PlatformOptions, type TelemetryMessage } from '../../src/index.js';
import { resolveOptions } from '../../src/platform/options.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { silentLogger } from '../../src/util/logger.js';
import { thrownCode } from '../support/errors.js';

const base: PlatformOptions = { mainUrl: 'postgres://postgres@127.0.0.1:1/saas_platform', s3: { bucket: 'tenantdb' } };

class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('the telemetry option', () => {
  it.each([
    ['a string', 'on'],
    ['true', true],
    ['null', null],
    ['a meterProvider without getMeter', { meterProvider: {} }],
    ['a tracerProvider without getTracer', { tracerProvider: { getMeter: () => ({}) } }],
    ['a non-boolean tenantAttributes', { tenantAttributes: 'yes' }],
  ])('rejects %s with VALIDATION', (_, telemetry) => {
    expect(thrownCode(() => createPlatform({ ...base, telemetry } as unknown as PlatformOptions))).toBe('VALIDATION');
  });

  it('takes providers, false, or nothing', () => {
    const meterProvider = new MeterProvider();
    expect(resolveOptions({ ...base, telemetry: { meterProvider, tenantAttributes: true } }).telemetry).toEqual({ meterProvider, tenantAttributes: true });
    expect(resolveOptions({ ...base, telemetry: false }).telemetry).toBe(false);
    expect(resolveOptions(base).telemetry).toEqual({});
  });
});

describe('Telemetry', () => {
  it('is not live with no SDK registered, no provider and no subscriber: run calls fn as it is', async () => {
    const telemetry = new Telemetry({}, silentLogger);
    expect(telemetry.live('withTenant')).toBe(false);
    await expect(telemetry.run('withTenant', {}, async () => 7)).resolves.toBe(7);
    expect(new Telemetry(false, silentLogger).live('tenants.create')).toBe(false);
  });

  it('is live while its channel has a subscriber, and publishes outcomes, failures with their code', async () => {
    const telemetry = new Telemetry(false, silentLogger);
    const messages: TelemetryMessage[] = [];
    const onMessage = (m: unknown): void => void messages.push(m as TelemetryMessage);
    const err = new TenantDbError('STORAGE', 'down');
    diagnostics.subscribe(TELEMETRY_CHANNELS['storage.sweep'], onMessage);
    try {
      expect(telemetry.live('storage.sweep')).toBe(true);
      expect(telemetry.live('withTenant')).toBe(false);
      await telemetry.run('storage.sweep', { tenantId: 't' }, async (op) => {
        op.set({ objectsDeleted: 2 });
        return 1;
      });
      await expect(telemetry.run('storage.sweep', {}, () => Promise.reject(err))).rejects.toBe(err);
      // A synchronous throw of fn is a rejection, as from an async function.
      await expect(telemetry.run('storage.sweep', {}, () => { throw err; })).rejects.toBe(err);
    } finally {
      diagnostics.unsubscribe(TELEMETRY_CHANNELS['storage.sweep'], onMessage);
    }
    expect(messages[0]).toEqual({ operation: 'storage.sweep', tenantId: 't', objectsDeleted: 2, durationMs: expect.any(Number) });
    expect(messages[1]).toEqual({ operation: 'storage.sweep', durationMs: expect.any(Number), error: err, code: 'STORAGE' });
    expect(messages).toHaveLength(3);
  });

  it('records budget waits in seconds, and stops observing stats once closed', async () => {
    const reader = new ManualReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const telemetry = new Telemetry({ meterProvider }, silentLogger);
    let reads = 0;
    telemetry.observe(() => {
      reads++;
      return { pools: { open: 1, hits: 2, misses: 3, evictions: 0 }, servers: { default: { connections: { open: 1, max: 5 }, waiting: 0 } } };
    });
    telemetry.budgetWait('default', 250, undefined, false, 'local');
    telemetry.budgetWait('default', 10, new TenantDbError('UNAVAILABLE', 'timed out'), true, 'shared');
    const { resourceMetrics } = await reader.collect();
    const byName = new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
    const waits = byName.get('tenantdb.connections.budget_wait.duration')!;
    expect(waits.descriptor.unit).toBe('s');
    const points = waits.dataPoints as Array<{ attributes: Record<string, unknown>; value: { sum: number; count: number } }>;
    expect(points.map((p) => [p.attributes['tenantdb.budget'], p.attributes['error.type'], p.value.count, p.value.sum])).toEqual([
      ['local', undefined, 1, 0.25],
      ['shared', 'UNAVAILABLE', 1, 0.01],
    ]);
    expect(byName.get('tenantdb.pool.misses')!.dataPoints[0]!.value).toBe(3);
    expect(reads).toBe(1);
    telemetry.close();
    await reader.collect();
    expect(reads).toBe(1);
    await meterProvider.shutdown();
  });

  it('follows the global providers: registered after it was made, then removed', async () => {
    const telemetry = new Telemetry({}, silentLogger);
    expect(telemetry.live('withTenant')).toBe(false);
    const reader = new ManualReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    try {
      metrics.setGlobalMeterProvider(meterProvider);
      trace.setGlobalTracerProvider(tracerProvider);
      expect(telemetry.live('withTenant')).toBe(true);
      await telemetry.run('withTenant', { tenantId: 't', server: 'default' }, async () => 1);
      expect(exporter.getFinishedSpans().map((s) => [s.name, s.attributes['tenantdb.tenant.id']])).toEqual([['tenantdb.with_tenant', 't']]);
      const { resourceMetrics } = await reader.collect();
      const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => m.descriptor.name);
      expect(names).toContain('tenantdb.with_tenant.duration');
    } finally {
      metrics.disable();
      trace.disable();
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    }
    expect(telemetry.live('withTenant')).toBe(false);
  });
});
