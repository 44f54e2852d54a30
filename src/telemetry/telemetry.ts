import diagnostics from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import { TenantDbError, type TenantDbErrorCode } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { TelemetryChannels, TelemetryMessage, TelemetryOperation, TelemetryOptions } from './types.js';

type Api = typeof OtelApi;

/**
 * The `node:diagnostics_channel` names on which the library publishes each operation once it has ended, as a
 * {@link TelemetryMessage}. Nothing is built or published when a channel has no subscriber.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { TELEMETRY_CHANNELS } from '@org/tenantdb';
 * diagnostics.subscribe(TELEMETRY_CHANNELS['tenants.create'], (m) => console.log(m));
 * ```
 */
export const TELEMETRY_CHANNELS: TelemetryChannels = {
  withTenant: 'tenantdb:withTenant',
  'tenants.create': 'tenantdb:tenants.create',
  'migrations.tenant': 'tenantdb:migrations.tenant',
  'documents.upload': 'tenantdb:documents.upload',
  'documents.download': 'tenantdb:documents.download',
  'storage.sweep': 'tenantdb:storage.sweep',
  'pool.budgetWait': 'tenantdb:pool.budgetWait',
};

/** The instrumentation scope's name, for meters and tracers. */
const SCOPE = '@org/tenantdb';

/** Span names by operation (the budget wait has none: it is a part of the span it happens in). */
const SPAN_NAMES: Record<Exclude<TelemetryOperation, 'pool.budgetWait'>, string> = {
  withTenant: 'tenantdb.with_tenant',
  'tenants.create': 'tenantdb.tenants.create',
  'migrations.tenant': 'tenantdb.migrations.tenant',
  'documents.upload': 'tenantdb.documents.upload',
  'documents.download': 'tenantdb.documents.download',
  'storage.sweep': 'tenantdb.storage.sweep',
};

/** The span attribute of each message field (the fields not named here are not attributes). */
const ATTRIBUTES: Partial<Record<keyof TelemetryMessage, string>> = {
  tenantId: 'tenantdb.tenant.id',
  databaseName: 'tenantdb.database.name',
  server: 'tenantdb.server',
  source: 'tenantdb.provisioning.source',
  runId: 'tenantdb.migration.run_id',
  applied: 'tenantdb.migration.applied',
  documentId: 'tenantdb.document.id',
  sizeBytes: 'tenantdb.document.size',
  deduplicated: 'tenantdb.document.deduplicated',
  objectsDeleted: 'tenantdb.sweep.objects_deleted',
  uploadsAborted: 'tenantdb.sweep.uploads_aborted',
};

/** What an operation learns as it goes, published with its outcome. */
export type OperationFields = Omit<TelemetryMessage, 'operation' | 'durationMs' | 'error' | 'code'>;

/** Seconds: from half a millisecond to a minute. */
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Bytes: 1 KiB to 4 GiB, by fours. */
const BYTES_BUCKETS = Array.from({ length: 12 }, (_, i) => 1024 * 4 ** i);

/** The instruments of one meter. */
interface Instruments {
  meter: OtelApi.Meter;
  withTenant: OtelApi.Histogram;
  create: OtelApi.Histogram;
  budgetWait: OtelApi.Histogram;
  migrated: OtelApi.Counter;
  migration: OtelApi.Histogram;
  upload: OtelApi.Histogram;
  uploadSize: OtelApi.Histogram;
  dedupHits: OtelApi.Counter;
  observables: OtelApi.Observable[];
  observe: OtelApi.BatchObservableCallback;
}

/** What the observable instruments read: `platform.stats()`. */
export interface ObservedStats {
  pools: { open: number; hits: number; misses: number; evictions: number };
  servers: Record<string, { connections: { open: number; max: number }; waiting: number }>;
}

/** One operation under way (see {@link Telemetry.run}): what it learns is added with {@link set}. */
export interface Operation {
  /** Adds fields to the operation's span and message. */
  set(fields: OperationFields): void;
}

/** The operation of a run that nothing observes. */
const UNOBSERVED: Operation = { set() {} };

let loaded: Api | null | undefined;

/** No meter provider looked at yet (or the last one dropped). */
const NOTHING = Symbol('nothing');

/** Where `@opentelemetry/api` (1.x, any copy) keeps its global registrations. */
const GLOBAL_REGISTRY = Symbol.for('opentelemetry.js.api.1');

/**
 * What is registered globally as `type`, read straight from the API's registry on `globalThis`: a property read
 * instead of a call into the API on every operation, for the usual case, nothing registered. Anything found
 * is then looked up through the API itself (which checks the version).
 */
function registered(type: 'trace' | 'metrics'): unknown {
  return (globalThis as unknown as Record<symbol, Record<string, unknown> | undefined>)[GLOBAL_REGISTRY]?.[type];
}

/**
 * `@opentelemetry/api` when installed (an optional peer), loaded once, synchronously; `null` when missing.
 * `createRequire` works in both builds (tsup shims `import.meta.url` in the CommonJS one); both builds get
 * the same CommonJS copy, and the API keeps its registrations on `globalThis`, so they are the app's.
 */
function loadApi(): Api | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** The error's code when it is a {@link TenantDbError}. */
function codeOf(err: unknown): TenantDbErrorCode | undefined {
  return err instanceof TenantDbError ? err.code : undefined;
}

/** `error.type` of a failure: the TenantDbError's code (a bounded set), else the error's name. */
function errorType(err: unknown): string {
  return codeOf(err) ?? (err instanceof Error ? err.name : 'Error');
}

/**
 * Metrics and spans through OpenTelemetry (an optional peer: without it, or without an SDK, nothing is
 * recorded and next to nothing done), and the same operations on `node:diagnostics_channel`. Whatever the
 * app's SDK or exporter throws is caught here: instrumentation never changes what a call does.
 * @internal
 */
export class Telemetry {
  readonly #api: Api | null;
  readonly #logger: Logger;
  readonly #tenantAttributes: boolean;
  readonly #tracer: OtelApi.Tracer | undefined;
  /** The tracer comes from the app's option: always live. */
  readonly #explicitTracer: boolean;
  /** What the global tracer provider delegates to when no SDK registered one. */
  readonly #noopTracers: unknown;
  readonly #explicitMeters: OtelApi.MeterProvider | undefined;
  readonly #channels = new Map<TelemetryOperation, diagnostics.Channel>();
  #meters: unknown = NOTHING;
  #instruments: Instruments | undefined;
  #stats: (() => ObservedStats) | undefined;
  #closed = false;

  constructor(options: TelemetryOptions | false, logger: Logger) {
    this.#logger = logger;
    for (const [operation, name] of Object.entries(TELEMETRY_CHANNELS)) this.#channels.set(operation as TelemetryOperation, diagnostics.channel(name));
    const api = options === false ? null : loadApi();
    this.#api = api;
    this.#tenantAttributes = options !== false && options.tenantAttributes === true;
    if (options === false || api === null) {
      this.#explicitTracer = false;
      return;
    }
    this.#explicitTracer = options.tracerProvider !== undefined;
    this.#noopTracers = new api.ProxyTracerProvider().getDelegate();
    this.#explicitMeters = options.meterProvider as OtelApi.MeterProvider | undefined;
    this.#tracer = this.#guard(() =>
      options.tracerProvider ? (options.tracerProvider.getTracer(SCOPE) as OtelApi.Tracer) : api.trace.getTracer(SCOPE),
    );
  }

  /** The platform's counters, read by the observable instruments at each collection. */
  observe(stats: () => ObservedStats): void {
    this.#stats = stats;
    this.#metrics();
  }

  /** Removes the observable instruments' callbacks: a closed platform is read no more. */
  close(): void {
    this.#closed = true;
    this.#unobserve();
  }

  /** True when anything would record `operation`: a subscriber of its channel, an SDK's tracer or meter. */
  live(operation: TelemetryOperation): boolean {
    return this.#channels.get(operation)!.hasSubscribers || this.#tracing() || this.#metrics() !== undefined;
  }

  /**
   * Runs `fn` as `operation`: a span (active inside `fn`, so that spans started there are its children),
   * its duration, the metrics of its outcome and a message on its channel. With nothing to record, `fn` runs
   * as it is. `fn`'s outcome passes through untouched.
   */
  run<T>(operation: Exclude<TelemetryOperation, 'pool.budgetWait'>, fields: OperationFields, fn: (op: Operation) => Promise<T>): Promise<T> {
    if (!this.live(operation)) return fn(UNOBSERVED);
    const started = performance.now();
    const state: OperationFields = { ...fields };
    const span = this.#tracing() ? this.#guard(() => this.#tracer!.startSpan(SPAN_NAMES[operation], { attributes: spanAttributes(state) })) : undefined;
    const op: Operation = {
      set: (more) => {
        Object.assign(state, more);
        if (span) this.#guard(() => span.setAttributes(spanAttributes(more)));
      },
    };
    let running: Promise<T>;
    try {
      running = this.#within(span, () => fn(op));
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      (value) => {
        this.#ended(operation, started, state, span, undefined, false);
        return value;
      },
      (err: unknown) => {
        this.#ended(operation, started, state, span, err, true);
        throw err;
      },
    );
  }

  /** A caller waited `ms` for a slot of a tenant server's connection budget, local or shared (`err`: it got none). */
  budgetWait(server: string, ms: number, err: unknown, failed: boolean, budget: 'local' | 'shared'): void {
    const channel = this.#channels.get('pool.budgetWait')!;
    if (channel.hasSubscribers) this.#publish(channel, { operation: 'pool.budgetWait', durationMs: ms, server, budget, ...(failed ? failure(err) : {}) });
    const m = this.#metrics();
    if (m) this.#guard(() => m.budgetWait.record(ms / 1000, withCode({ 'tenantdb.server': server, 'tenantdb.budget': budget }, failed ? err : undefined, failed)));
  }

  /** A fleet run's tenant ended: succeeded, failed or skipped. */
  migrationOutcome(outcome: 'succeeded' | 'failed' | 'skipped', server: string | null): void {
    const m = this.#metrics();
    if (!m) return;
    const attributes: OtelApi.Attributes = { 'tenantdb.migration.outcome': outcome };
    if (server !== null) attributes['tenantdb.server'] = server;
    this.#guard(() => m.migrated.add(1, attributes));
  }

  /** Runs `fn` with `span` active (when there is one). A context manager that throws before `fn` ran is skipped. */
  #within<T>(span: OtelApi.Span | undefined, fn: () => Promise<T>): Promise<T> {
    const api = this.#api;
    if (!span || !api) return fn();
    let entered = false;
    try {
      return api.context.with(api.trace.setSpan(api.context.active(), span), () => {
        entered = true;
        return fn();
      });
    } catch (err) {
      if (entered) throw err;
      this.#logger.debug({ err: (err as Error)?.message }, 'the OpenTelemetry context manager failed; the operation runs without its span active');
      return fn();
    }
  }

  #ended(operation: Exclude<TelemetryOperation, 'pool.budgetWait'>, started: number, state: OperationFields, span: OtelApi.Span | undefined, err: unknown, failed: boolean): void {
    const ms = performance.now() - started;
    if (span) this.#endSpan(span, err, failed);
    const m = this.#metrics();
    if (m) this.#guard(() => record(m, operation, ms / 1000, state, err, failed, this.#tenantAttributes));
    const channel = this.#channels.get(operation)!;
    if (channel.hasSubscribers) this.#publish(channel, { operation, durationMs: ms, ...state, ...(failed ? failure(err) : {}) });
  }

  #endSpan(span: OtelApi.Span, err: unknown, failed: boolean): void {
    const api = this.#api!;
    this.#guard(() => {
      if (failed) {
        const code = codeOf(err);
        span.setAttribute('error.type', errorType(err));
        if (code) span.setAttribute('tenantdb.error.code', code);
        if (err instanceof Error) span.recordException(err);
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: code ?? (err instanceof Error ? err.name : undefined) });
      }
      span.end();
    });
  }

  #publish(channel: diagnostics.Channel, message: TelemetryMessage): void {
    try {
      channel.publish(message);
    } catch (err) {
      // Node reports a subscriber's throw on the next tick (uncaught); publish itself does not throw. Belt and braces.
      this.#logger.debug({ err: (err as Error)?.message }, 'a diagnostics_channel subscriber failed');
    }
  }

  /** True when spans would be recorded: the app's tracer provider, or an SDK registered globally. */
  #tracing(): boolean {
    if (this.#explicitTracer) return true;
    const api = this.#api;
    if (!api || !this.#tracer || registered('trace') === undefined) return false;
    const provider = api.trace.getTracerProvider() as OtelApi.TracerProvider & { getDelegate?: () => unknown };
    return (provider.getDelegate?.() ?? provider) !== this.#noopTracers;
  }

  /**
   * The instruments, or undefined when no meter provider records anything. The global provider is looked up at
   * each call (an SDK registered after `createPlatform` is picked up), the instruments made once per provider.
   */
  #metrics(): Instruments | undefined {
    const api = this.#api;
    if (!api || this.#closed) return undefined;
    // Nothing registered (the usual case without an SDK): no call into the API.
    if (this.#explicitMeters === undefined && this.#meters === NOTHING && registered('metrics') === undefined) return undefined;
    const provider = this.#explicitMeters ?? api.metrics.getMeterProvider();
    if (provider !== this.#meters) {
      this.#unobserve();
      this.#meters = provider;
      this.#instruments = this.#guard(() => {
        const meter = provider.getMeter(SCOPE);
        return meter === api.createNoopMeter() ? undefined : this.#instrumentsOf(meter);
      });
    }
    return this.#instruments;
  }

  #instrumentsOf(meter: OtelApi.Meter): Instruments {
    const seconds = (name: string, description: string): OtelApi.Histogram =>
      meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
    const gauge = (name: string, unit: string, description: string): OtelApi.ObservableGauge => meter.createObservableGauge(name, { unit, description });
    const counter = (name: string, unit: string, description: string): OtelApi.ObservableCounter => meter.createObservableCounter(name, { unit, description });
    const open = gauge('tenantdb.connections.open', '{connection}', 'Connections of this process to the tenant databases of a server, open or opening');
    const max = gauge('tenantdb.connections.max', '{connection}', 'The connection budget of a tenant server (pool.maxConnections)');
    const waiting = gauge('tenantdb.connections.waiting', '{request}', 'Callers waiting for a connection slot of a tenant server');
    const pools = gauge('tenantdb.pools.open', '{pool}', 'Tenant pools open, evicted ones still draining included');
    const hits = counter('tenantdb.pool.hits', '{request}', 'Requests served on a connection already open');
    const misses = counter('tenantdb.pool.misses', '{request}', 'Requests that had to open a connection');
    const evictions = counter('tenantdb.pool.evictions', '{connection}', 'Idle connections closed to make room in the budget, and pools evicted');
    const observables = [open, max, waiting, pools, hits, misses, evictions];
    const observe: OtelApi.BatchObservableCallback = (result) => {
      const stats = this.#stats?.();
      if (!stats) return;
      result.observe(pools, stats.pools.open);
      result.observe(hits, stats.pools.hits);
      result.observe(misses, stats.pools.misses);
      result.observe(evictions, stats.pools.evictions);
      for (const [server, s] of Object.entries(stats.servers)) {
        const attributes = { 'tenantdb.server': server };
        result.observe(open, s.connections.open, attributes);
        result.observe(max, s.connections.max, attributes);
        result.observe(waiting, s.waiting, attributes);
      }
    };
    meter.addBatchObservableCallback(observe, observables);
    return {
      meter,
      withTenant: seconds('tenantdb.with_tenant.duration', 'withTenant calls, from the call to the outcome of fn'),
      create: seconds('tenantdb.tenants.create.duration', 'tenants.create calls (tenantdb.provisioning.source: spare or clone)'),
      budgetWait: seconds('tenantdb.connections.budget_wait.duration', 'Waits for a slot of a tenant server\'s connection budget'),
      migrated: meter.createCounter('tenantdb.migrations.tenants', { unit: '{tenant}', description: 'Tenants of fleet migration runs, by outcome' }),
      migration: seconds('tenantdb.migrations.tenant.duration', 'One tenant\'s migrations in a fleet run'),
      upload: seconds('tenantdb.documents.upload.duration', 'documents.upload calls'),
      uploadSize: meter.createHistogram('tenantdb.documents.upload.size', {
        unit: 'By',
        description: 'Bytes of each document uploaded',
        advice: { explicitBucketBoundaries: BYTES_BUCKETS },
      }),
      dedupHits: meter.createCounter('tenantdb.documents.dedup.hits', { unit: '{upload}', description: 'Uploads whose bytes the tenant stored already' }),
      observables,
      observe,
    };
  }

  #unobserve(): void {
    const m = this.#instruments;
    if (!m) return;
    this.#instruments = undefined;
    this.#meters = NOTHING;
    this.#guard(() => m.meter.removeBatchObservableCallback(m.observe, m.observables));
  }

  /** `fn`'s result; undefined (logged) when the app's SDK threw. */
  #guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.#logger.debug({ err: (err as Error)?.message }, 'OpenTelemetry failed; the operation goes on without it');
      return undefined;
    }
  }
}

/** The span attributes of `fields`. */
function spanAttributes(fields: OperationFields): OtelApi.Attributes {
  const attributes: OtelApi.Attributes = {};
  for (const [field, value] of Object.entries(fields)) {
    const name = ATTRIBUTES[field as keyof TelemetryMessage];
    if (name !== undefined && value !== undefined) attributes[name] = value as OtelApi.AttributeValue;
  }
  return attributes;
}

/** The message fields of a failure. */
function failure(err: unknown): Pick<TelemetryMessage, 'error' | 'code'> {
  const code = codeOf(err);
  return code ? { error: err, code } : { error: err };
}

/** `attributes` with the failure's code (a bounded set), when it failed. */
function withCode(attributes: OtelApi.Attributes, err: unknown, failed: boolean): OtelApi.Attributes {
  if (failed) attributes['error.type'] = errorType(err);
  return attributes;
}

/** The metrics of an operation that ended. */
function record(
  m: Instruments,
  operation: Exclude<TelemetryOperation, 'pool.budgetWait'>,
  seconds: number,
  state: OperationFields,
  err: unknown,
  failed: boolean,
  tenantAttributes: boolean,
): void {
  const attributes: OtelApi.Attributes = {};
  if (state.server !== undefined) attributes['tenantdb.server'] = state.server;
  withCode(attributes, err, failed);
  switch (operation) {
    case 'withTenant':
      if (tenantAttributes && state.tenantId !== undefined) attributes['tenantdb.tenant.id'] = state.tenantId;
      m.withTenant.record(seconds, attributes);
      return;
    case 'tenants.create':
      if (state.source !== undefined) attributes['tenantdb.provisioning.source'] = state.source;
      m.create.record(seconds, attributes);
      return;
    case 'migrations.tenant':
      m.migration.record(seconds, attributes);
      return;
    case 'documents.upload':
      if (state.deduplicated !== undefined) attributes['tenantdb.document.deduplicated'] = state.deduplicated;
      m.upload.record(seconds, attributes);
      if (failed || state.sizeBytes === undefined) return;
      m.uploadSize.record(state.sizeBytes, attributes);
      if (state.deduplicated) m.dedupHits.add(1, state.server === undefined ? {} : { 'tenantdb.server': state.server });
      return;
    default:
      // Downloads and sweeps: spans and messages only.
      return;
  }
}
