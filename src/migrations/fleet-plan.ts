import { TenantDbError } from '../errors.js';
import { validateTenantLabels } from '../tenants/tenant-labels.js';
import type { Tenant } from '../tenants/types.js';
import { isUuid } from '../util/uuid.js';
import type { FleetHaltReason, FleetRecordedOptions, FleetRunOptions, FleetSelection, FleetWave } from './types.js';

/** The default of `concurrency`. */
export const DEFAULT_FLEET_CONCURRENCY = 4;

const SHARE = /^(\d+(?:\.\d+)?)%$/;

function invalid(message: string): TenantDbError {
  return new TenantDbError('VALIDATION', message);
}

/** Checks `waves`: a non-empty array of positive integers and `'N%'` shares (0 < N ≤ 100). */
export function validateWaves(waves: unknown): FleetWave[] {
  if (!Array.isArray(waves) || waves.length === 0) throw invalid('waves must be a non-empty array');
  if (waves.length > 100) throw invalid('waves: at most 100 waves');
  return waves.map((wave: unknown) => {
    if (typeof wave === 'number') {
      if (!Number.isSafeInteger(wave) || wave < 1) throw invalid('waves: a count of tenants must be a positive integer');
      return wave;
    }
    const share = typeof wave === 'string' ? SHARE.exec(wave) : null;
    const percent = share ? Number(share[1]) : NaN;
    if (!(percent > 0 && percent <= 100)) throw invalid("waves: each wave is a count (5) or a share ('10%', above 0 and at most 100)");
    return wave as FleetWave;
  });
}

/**
 * The wave (from 1) of each of `count` tenants in order: a count takes that many, a share that part of
 * `count` (rounded up), the last wave the rest. Waves left with no tenant are dropped, so the numbers
 * run on without a gap. No waves: every tenant in wave 1.
 */
export function assignWaves(count: number, waves: readonly FleetWave[] | undefined): number[] {
  const result: number[] = [];
  if (!waves || waves.length <= 1) return Array.from({ length: count }, () => 1);
  let wave = 0;
  for (let i = 0; i < waves.length && result.length < count; i++) {
    const spec = waves[i]!;
    const size = i === waves.length - 1 ? count : typeof spec === 'number' ? spec : Math.ceil((count * Number(spec.slice(0, -1))) / 100);
    const end = Math.min(count, result.length + Math.max(1, size));
    wave++;
    while (result.length < end) result.push(wave);
  }
  return result;
}

/** A stop rule of a run: when failures halt it. */
export interface StopRules {
  maxFailures?: number;
  maxFailureRate?: number;
}

/** Checks and returns the stop rules of `options`. */
export function validateStopRules(options: StopRules): StopRules {
  const { maxFailures, maxFailureRate } = options;
  if (maxFailures !== undefined && (!Number.isSafeInteger(maxFailures) || maxFailures < 1)) {
    throw invalid('maxFailures must be a positive integer');
  }
  if (maxFailureRate !== undefined && !(typeof maxFailureRate === 'number' && maxFailureRate > 0 && maxFailureRate <= 1)) {
    throw invalid('maxFailureRate must be a number above 0 and at most 1');
  }
  return { ...(maxFailures !== undefined && { maxFailures }), ...(maxFailureRate !== undefined && { maxFailureRate }) };
}

/** The stop rule that `failed` failures out of `finished` tenants reach, if any. */
export function haltReason(rules: StopRules, failed: number, finished: number): FleetHaltReason | undefined {
  if (rules.maxFailures !== undefined && failed >= rules.maxFailures) return 'maxFailures';
  if (rules.maxFailureRate !== undefined && finished > 0 && failed / finished >= rules.maxFailureRate) return 'maxFailureRate';
  return undefined;
}

/** Checks `concurrency` (default 4). */
export function validateConcurrency(concurrency: unknown): number {
  if (concurrency === undefined) return DEFAULT_FLEET_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || (concurrency as number) < 1) throw invalid('concurrency must be a positive integer');
  return concurrency as number;
}

function instant(value: unknown, what: string): string {
  const date = value instanceof Date ? value : typeof value === 'string' && value.trim() !== '' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw invalid(`${what} must be a Date or an ISO date string`);
  return date.toISOString();
}

/**
 * The selection, run options and stop rules of `options`, checked and as they are recorded (instants as
 * ISO strings, no callbacks).
 */
export function recordedOptions(options: FleetSelection & FleetRunOptions, servers: readonly string[]): FleetRecordedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalid('options must be an object');
  const recorded: FleetRecordedOptions = { concurrency: validateConcurrency(options.concurrency) };
  if (options.tenants !== undefined) {
    if (!Array.isArray(options.tenants)) throw invalid('tenants must be an array of tenant ids or database names');
    // An entry that is no string names no tenant: it is kept (as its JSON) and answered with NOT_FOUND. So is
    // one with a NUL, which PostgreSQL text cannot hold: it is recorded with U+FFFD in its place.
    recorded.tenants = (options.tenants as unknown[]).map((t) =>
      (typeof t === 'string' ? t : (JSON.stringify(t) ?? String(t))).replace(/\0/g, '\uFFFD'),
    );
  }
  if (options.server !== undefined) {
    if (typeof options.server !== 'string' || !servers.includes(options.server)) {
      throw invalid(`server must be one of the tenant servers (${servers.join(', ')})`);
    }
    recorded.server = options.server;
  }
  if (options.createdBefore !== undefined) recorded.createdBefore = instant(options.createdBefore, 'createdBefore');
  if (options.createdAfter !== undefined) recorded.createdAfter = instant(options.createdAfter, 'createdAfter');
  if (options.labels !== undefined) recorded.labels = validateTenantLabels(options.labels);
  if (options.waves !== undefined) recorded.waves = validateWaves(options.waves);
  Object.assign(recorded, validateStopRules(options));
  for (const callback of ['onProgress', 'onWave'] as const) {
    if (options[callback] !== undefined && typeof options[callback] !== 'function') throw invalid(`${callback} must be a function`);
  }
  return recorded;
}

/** An entry of a selection: a tenant, or a reference given in `tenants` that names none. */
export type Selected = { tenant: Tenant; ref?: undefined } | { tenant?: undefined; ref: string };

/**
 * The tenants `selection` takes out of `all` (in creation order), in order: that of `selection.tenants`
 * when given (each tenant once; an unknown reference kept as such), otherwise creation order.
 */
export function selectTenants(all: readonly Tenant[], selection: FleetRecordedOptions): Selected[] {
  const before = selection.createdBefore === undefined ? undefined : Date.parse(selection.createdBefore);
  const after = selection.createdAfter === undefined ? undefined : Date.parse(selection.createdAfter);
  const labels = Object.entries(selection.labels ?? {});
  const matches = (t: Tenant): boolean =>
    (selection.server === undefined || t.server === selection.server) &&
    (before === undefined || t.createdAt.getTime() < before) &&
    (after === undefined || t.createdAt.getTime() >= after) &&
    labels.every(([key, value]) => t.labels[key] === value);
  if (!selection.tenants) return all.filter(matches).map((tenant) => ({ tenant }));
  // Ids in any case (PostgreSQL prints them in lower case); database names as they are.
  const byRef = new Map<string, Tenant>();
  for (const t of all) {
    byRef.set(t.id, t);
    byRef.set(t.databaseName, t);
  }
  const seen = new Set<string>();
  const result: Selected[] = [];
  for (const ref of selection.tenants) {
    const tenant = byRef.get(isUuid(ref) ? ref.toLowerCase() : ref);
    const key = tenant?.id ?? `?${ref}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (!tenant) result.push({ ref });
    else if (matches(tenant)) result.push({ tenant });
  }
  return result;
}
