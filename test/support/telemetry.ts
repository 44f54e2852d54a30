import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll } from 'vitest';
import type { TelemetryOptions } from '../../src/index.js';

/** A reader collected by hand (`collect()`), with no timer. */
class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** Providers of their own, passed with the `telemetry` option (nothing registered globally), and what they got. */
export interface Observed {
  telemetry: TelemetryOptions;
  /** The span pipeline's provider (the app's own spans go there too). */
  tracerProvider: BasicTracerProvider;
  /** The data points of metric `name` at this moment (cumulative), none when it was never recorded. */
  points<T = number>(name: string): Promise<Array<DataPoint<T>>>;
  /** The histogram points of `name`. */
  histogram(name: string): Promise<Array<DataPoint<Histogram>>>;
  /** The spans ended so far, named `name` when given. */
  spans(name?: string): ReadableSpan[];
  shutdown(): Promise<void>;
}

/** New in-memory metric and span pipelines. */
export function observe(extra: Partial<TelemetryOptions> = {}): Observed {
  const reader = new ManualReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const metric = async (name: string): Promise<MetricData | undefined> => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  };
  return {
    telemetry: { meterProvider, tracerProvider, ...extra },
    tracerProvider,
    points: async <T>(name: string) => ((await metric(name))?.dataPoints ?? []) as Array<DataPoint<T>>,
    histogram: async (name) => ((await metric(name))?.dataPoints ?? []) as Array<DataPoint<Histogram>>,
    spans: (name) => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name),
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/**
 * An AsyncLocalStorage context manager registered globally for the file (what an app's SDK setup does), so
 * that spans nest; removed after the file.
 */
export function useContextManager(): void {
  let manager: AsyncLocalStorageContextManager | undefined;
  beforeAll(() => {
    manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
  });
  afterAll(() => {
    manager?.disable();
    context.disable();
  });
}
