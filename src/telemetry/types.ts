import type { TenantDbErrorCode } from '../errors.js';

/**
 * An OpenTelemetry `MeterProvider` (from `@opentelemetry/sdk-metrics`, or any object with its `getMeter`),
 * taken by shape so that the library's types need no `@opentelemetry/api` installed.
 */
export interface TelemetryMeterProvider {
  /** `MeterProvider.getMeter` of `@opentelemetry/api`. */
  getMeter(name: string, version?: string, options?: TelemetryScopeOptions): unknown;
}

/**
 * An OpenTelemetry `TracerProvider` (from `@opentelemetry/sdk-trace-base` or `-node`, or any object with its
 * `getTracer`), taken by shape so that the library's types need no `@opentelemetry/api` installed.
 */
export interface TelemetryTracerProvider {
  /** `TracerProvider.getTracer` of `@opentelemetry/api`. */
  getTracer(name: string, version?: string, options?: TelemetryScopeOptions): unknown;
}

/** The instrumentation scope's options that `getMeter` and `getTracer` take. */
export interface TelemetryScopeOptions {
  /** The schema URL of the scope's telemetry. */
  schemaUrl?: string;
}

/**
 * The `telemetry` option of `createPlatform`: where metrics and spans go. Without it the library uses the
 * providers registered globally with `@opentelemetry/api` (when that package is installed and an SDK is
 * registered; else it records nothing and costs nothing measurable). `false` turns OpenTelemetry off (the
 * `node:diagnostics_channel` events stay: they cost nothing without a subscriber).
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
 * createPlatform({ ...options, telemetry: { meterProvider: new MeterProvider({ readers }), tracerProvider } });
 * ```
 */
export interface TelemetryOptions {
  /** Where the metrics go. Default: the global one of `@opentelemetry/api` (looked up again when it changes). */
  meterProvider?: TelemetryMeterProvider;
  /** Where the spans go. Default: the global one of `@opentelemetry/api`. */
  tracerProvider?: TelemetryTracerProvider;
  /**
   * Adds the tenant id (`tenantdb.tenant.id`) to the attributes of `tenantdb.with_tenant.duration`. Tenant ids
   * are unbounded: each tenant becomes a time series of its own. Spans always carry it. Default: false.
   */
  tenantAttributes?: boolean;
}

/** The operations the library reports, each on a `node:diagnostics_channel` of its own (see {@link TELEMETRY_CHANNELS}). */
export type TelemetryOperation =
  | 'withTenant'
  | 'tenants.create'
  | 'migrations.tenant'
  | 'documents.upload'
  | 'documents.download'
  | 'storage.sweep'
  | 'pool.budgetWait';

/** The `node:diagnostics_channel` name of each {@link TelemetryOperation}: the type of `TELEMETRY_CHANNELS`. */
export interface TelemetryChannels {
  readonly withTenant: 'tenantdb:withTenant';
  readonly 'tenants.create': 'tenantdb:tenants.create';
  readonly 'migrations.tenant': 'tenantdb:migrations.tenant';
  readonly 'documents.upload': 'tenantdb:documents.upload';
  readonly 'documents.download': 'tenantdb:documents.download';
  readonly 'storage.sweep': 'tenantdb:storage.sweep';
  readonly 'pool.budgetWait': 'tenantdb:pool.budgetWait';
}

/**
 * What a subscriber of a channel of {@link TELEMETRY_CHANNELS} receives, once the operation has ended (with
 * its outcome). The fields beyond `operation` and `durationMs` are there when the operation knows them.
 *
 * @example
 * ```ts
 * import diagnostics from 'node:diagnostics_channel';
 * import { TELEMETRY_CHANNELS, type TelemetryMessage } from '@org/tenantdb';
 * diagnostics.subscribe(TELEMETRY_CHANNELS.withTenant, (m) => {
 *   const { tenantId, durationMs, code } = m as TelemetryMessage;
 *   if (code) console.warn(`withTenant ${tenantId} failed with ${code} after ${durationMs} ms`);
 * });
 * ```
 */
export interface TelemetryMessage {
  operation: TelemetryOperation;
  /** Milliseconds from the call to its outcome (fractional). */
  durationMs: number;
  /** The error the operation threw or rejected with; absent on success. */
  error?: unknown;
  /** The error's `TenantDbError` code, when it is one. */
  code?: TenantDbErrorCode;
  /** The tenant, once known. */
  tenantId?: string;
  /** The tenant's database, once known. */
  databaseName?: string;
  /** The tenant server's name (a key of `tenantServers`). */
  server?: string;
  /**
   * `pool.budgetWait`: `'local'`, this process's budget (`pool.maxConnections`), or `'shared'`, the slot of
   * `pool.sharedBudget` every new connection takes after its local one.
   */
  budget?: 'local' | 'shared';
  /** `tenants.create`: `'spare'` (a spare database renamed) or `'clone'` (the template cloned then). */
  source?: 'spare' | 'clone';
  /** `migrations.tenant`: the fleet run. */
  runId?: string;
  /** `migrations.tenant`: the migrations applied (or reverted). */
  applied?: number;
  /** `documents.*`: the document. */
  documentId?: string;
  /** `documents.*`: its size in bytes. */
  sizeBytes?: number;
  /** `documents.upload`: true when the bytes were stored already (a dedup hit). */
  deduplicated?: boolean;
  /** `storage.sweep`: objects deleted. */
  objectsDeleted?: number;
  /** `storage.sweep`: multipart uploads aborted. */
  uploadsAborted?: number;
}
