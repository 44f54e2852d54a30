import { UnrecoverableError, Worker } from 'bullmq';
import type { BulkJobOptions, Job, JobsOptions, Queue, WorkerOptions } from 'bullmq';
import { TenantDbError } from '../errors.js';
import { outsideTenant } from '../scope/scope-storage.js';
import type { CapturedTenant, TenantContext } from '../scope/types.js';

/** The part of a platform the BullMQ integration uses. */
export interface JobsPlatform {
  /** See `Platform.captureTenant`. */
  captureTenant(): CapturedTenant;
  /** See `Platform.runInTenant`. */
  runInTenant<T>(captured: CapturedTenant, fn: (ctx: TenantContext) => Promise<T> | T): Promise<T>;
}

/**
 * A job's data as {@link tenantQueue} stores it in Redis: the caller's `data` and the scope the job runs in.
 * The processor of {@link tenantWorker} sees `data` alone as `job.data`; the worker's events (`completed`,
 * `failed`), `Queue.getJob` and other readers of the raw job see this envelope.
 */
export interface TenantJobData<T = unknown> {
  /** The scope captured when the job was added (`platform.captureTenant()`), or `'global'` for a job of no tenant. */
  tenantdb: CapturedTenant | 'global';
  /** The caller's data, as given to `add`. */
  data: T;
}

/** Options of {@link TenantQueue.add}: BullMQ's job options and `global`. */
export interface TenantJobOptions extends JobsOptions {
  /**
   * A job of no tenant: added without a scope (also inside one), its processor runs outside any scope.
   * Default: false, and a job added outside any tenant scope is refused with VALIDATION.
   */
  global?: boolean;
}

/** Options of one job of {@link TenantQueue.addBulk}: BullMQ's bulk job options and `global`. */
export interface TenantBulkJobOptions extends BulkJobOptions {
  /** As {@link TenantJobOptions.global}. */
  global?: boolean;
}

/** One job of {@link TenantQueue.addBulk}. */
export interface TenantBulkJob<T = unknown, N extends string = string> {
  /** The job's name. */
  name: N;
  /** The caller's data (what the processor sees as `job.data`). */
  data: T;
  /** BullMQ's bulk job options and `global`. */
  opts?: TenantBulkJobOptions;
}

/** What {@link tenantQueue} returns: a BullMQ queue whose jobs keep the tenant scope they were added in. */
export interface TenantQueue<T = unknown, R = unknown, N extends string = string> {
  /** The BullMQ queue underneath (to pause, count, read or clean its jobs). */
  readonly queue: Queue<TenantJobData<T>, R, N>;
  /**
   * Adds a job that runs in the caller's tenant scope (its tenant, and its user when it has one). Outside
   * any scope it rejects with VALIDATION, unless `opts.global` is true.
   */
  add(name: N, data: T, opts?: TenantJobOptions): Promise<Job<TenantJobData<T>, R, N>>;
  /** Adds several jobs at once (atomically, as `Queue.addBulk`), each as {@link add} would. */
  addBulk(jobs: TenantBulkJob<T, N>[]): Promise<Job<TenantJobData<T>, R, N>[]>;
}

/**
 * The processor of {@link tenantWorker}: BullMQ's, called inside the job's tenant scope (`currentTenant()`
 * works) with `job.data` the data given to `add`.
 */
export type TenantProcessor<T = unknown, R = unknown, N extends string = string> = (
  job: Job<T, R, N>,
  token?: string,
  signal?: AbortSignal,
) => Promise<R> | R;

function checkPlatform(platform: unknown, caller: string): asserts platform is JobsPlatform {
  const p = platform as Partial<JobsPlatform> | null | undefined;
  if (typeof p?.captureTenant !== 'function' || typeof p.runInTenant !== 'function') {
    throw new TenantDbError('VALIDATION', `${caller} needs a platform from createPlatform()`);
  }
}

/** The envelope of one job: the caller's scope, or `'global'` when asked. */
function envelope<T>(platform: JobsPlatform, data: T, global: unknown): TenantJobData<T> {
  if (global !== undefined && typeof global !== 'boolean') throw new TenantDbError('VALIDATION', 'opts.global must be a boolean');
  if (global) return { tenantdb: 'global', data };
  try {
    return { tenantdb: platform.captureTenant(), data };
  } catch (err) {
    throw new TenantDbError(
      'VALIDATION',
      'a job added outside a tenant scope needs { global: true }: add it inside withTenant or a request of the tenancy middleware',
      { cause: err },
    );
  }
}

/** BullMQ's options without `global`, and the envelope of the job. */
function prepare<T, O extends { global?: boolean }>(platform: JobsPlatform, data: T, opts: O | undefined): [TenantJobData<T>, Omit<O, 'global'> | undefined] {
  if (opts === undefined) return [envelope(platform, data, undefined), undefined];
  if (typeof opts !== 'object' || opts === null) throw new TenantDbError('VALIDATION', 'job options must be an object');
  const { global, ...rest } = opts;
  return [envelope(platform, data, global), rest];
}

/**
 * Wraps a BullMQ `Queue` so that each job added keeps the tenant scope it was added in: `add` and `addBulk`
 * store `platform.captureTenant()` with the job's data (see {@link TenantJobData}), and {@link tenantWorker}
 * runs the job in that scope. A job added outside any scope is VALIDATION unless `opts.global` is true.
 * Throws VALIDATION at once for a non-platform or a non-queue.
 *
 * @example
 * ```ts
 * import { Queue } from 'bullmq';
 * import { tenantQueue } from '@org/tenantdb/bullmq';
 *
 * const reports = tenantQueue(platform, new Queue('reports', { connection: { host: '127.0.0.1', port: 6379 } }));
 * app.post('/t/reports', async (req, res) => {                 // inside tenancy(): the request's scope
 *   const job = await reports.add('monthly', { month: req.body.month });
 *   res.status(202).json({ id: job.id });
 * });
 * await reports.add('cleanup', {}, { global: true });          // a job of no tenant
 * ```
 */
export function tenantQueue<T = unknown, R = unknown, N extends string = string>(
  platform: JobsPlatform,
  queue: Queue<TenantJobData<T>, R, N>,
): TenantQueue<T, R, N> {
  checkPlatform(platform, 'tenantQueue');
  const q = queue as Partial<Queue> | null | undefined;
  if (typeof q?.add !== 'function' || typeof q.addBulk !== 'function') {
    throw new TenantDbError('VALIDATION', 'tenantQueue needs a BullMQ Queue');
  }
  return {
    queue,
    async add(name, data, opts) {
      const [wrapped, rest] = prepare(platform, data, opts);
      return queue.add(name, wrapped, rest);
    },
    async addBulk(jobs) {
      if (!Array.isArray(jobs)) throw new TenantDbError('VALIDATION', 'addBulk needs an array of jobs');
      const wrapped = jobs.map((job) => {
        if (typeof job !== 'object' || job === null) throw new TenantDbError('VALIDATION', 'addBulk needs jobs of { name, data, opts? }');
        const [data, opts] = prepare(platform, job.data, job.opts);
        return { name: job.name, data, ...(opts !== undefined && { opts }) };
      });
      return queue.addBulk(wrapped);
    },
  };
}

/** The scope of a job's data; VALIDATION for data that {@link tenantQueue} did not write. */
function scopeOf(data: unknown): CapturedTenant | 'global' {
  const scope = typeof data === 'object' && data !== null && Object.hasOwn(data, 'tenantdb') ? (data as TenantJobData).tenantdb : undefined;
  if (scope === 'global' || (typeof scope === 'object' && scope !== null)) return scope;
  throw new TenantDbError('VALIDATION', 'the job carries no tenant scope: add its jobs through tenantQueue');
}

/**
 * The error a job fails with when its scope is refused before the processor ran. A refusal that may pass
 * (`retryable`: UNAVAILABLE, a lost connection; CLOSED: this process shuts down, another worker may take
 * the job) stays as it is, for BullMQ to retry as the job's `attempts` and `backoff` say. Any other one
 * (FORBIDDEN, TENANT_INACTIVE, NOT_FOUND, VALIDATION, …) will not pass by retrying: an `UnrecoverableError`
 * (no retry) named after the code, with the TenantDbError as `cause`.
 */
function refusal(err: unknown): unknown {
  if (!(err instanceof TenantDbError) || err.retryable || err.code === 'CLOSED') return err;
  const unrecoverable = new UnrecoverableError(`${err.code}: ${err.message}`);
  Object.defineProperty(unrecoverable, 'cause', { value: err, writable: true, configurable: true });
  return unrecoverable;
}

/**
 * The job as its processor sees it: `data` (read, set, `updateData`) is the caller's data, while the scope
 * stays in the stored envelope. Everything else is the job itself, its methods bound to it.
 */
function userJob<T, R, N extends string>(job: Job<TenantJobData<T>, R, N>): Job<T, R, N> {
  return new Proxy(job, {
    get(target, key) {
      if (key === 'data') return target.data.data;
      if (key === 'updateData') return (data: T) => target.updateData({ tenantdb: target.data.tenantdb, data });
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' && key !== 'constructor' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
    set(target, key, value) {
      if (key !== 'data') return Reflect.set(target, key, value, target);
      target.data = { tenantdb: target.data.tenantdb, data: value as T };
      return true;
    },
  }) as unknown as Job<T, R, N>;
}

/**
 * Creates a BullMQ `Worker` on queue `name` whose `processor` runs each job in the tenant scope it was added
 * in (see {@link tenantQueue}), through `platform.runInTenant`: `currentTenant()` works in the processor,
 * and `job.data` is the data given to `add`. A global job runs outside any scope. The scope is checked
 * again when the job runs: a user no longer a member fails the job with FORBIDDEN, a deactivated tenant
 * with TENANT_INACTIVE, a dropped one with NOT_FOUND, a job not added through `tenantQueue` with VALIDATION.
 * Such a refusal does not burn retries: the job fails at once with BullMQ's `UnrecoverableError`, message
 * `"<code>: <message>"`, the TenantDbError as its `cause`; a refusal worth retrying (UNAVAILABLE, CLOSED)
 * is thrown as it is and retried as the job's `attempts` say. Errors of the processor pass untouched.
 * `opts` are BullMQ's `WorkerOptions` (a `connection` is required; `concurrency` defaults to 1).
 * Throws VALIDATION at once for a non-platform, an empty name, a processor that is not a function (a
 * sandboxed processor file cannot enter the scope) or missing options.
 *
 * @example
 * ```ts
 * import { currentTenant } from '@org/tenantdb';
 * import { tenantWorker } from '@org/tenantdb/bullmq';
 *
 * const worker = tenantWorker(platform, 'reports', async (job) => {
 *   const ctx = currentTenant()!;                               // the tenant (and user) that added the job
 *   await ctx.query('INSERT INTO reports (month) VALUES ($1)', [job.data.month]);
 * }, { connection: { host: '127.0.0.1', port: 6379 }, concurrency: 10 });
 * worker.on('failed', (job, err) => logger.warn({ id: job?.id, err: err.message }, 'job failed'));
 * ```
 */
export function tenantWorker<T = unknown, R = unknown, N extends string = string>(
  platform: JobsPlatform,
  name: string,
  processor: TenantProcessor<T, R, N>,
  opts: WorkerOptions,
): Worker<TenantJobData<T>, R, N> {
  checkPlatform(platform, 'tenantWorker');
  if (typeof name !== 'string' || name.length === 0) throw new TenantDbError('VALIDATION', 'tenantWorker needs a queue name');
  if (typeof processor !== 'function') throw new TenantDbError('VALIDATION', 'tenantWorker needs a processor function');
  if (typeof opts !== 'object' || opts === null) throw new TenantDbError('VALIDATION', 'tenantWorker needs BullMQ worker options with a connection');
  const run = async (job: Job<TenantJobData<T>, R, N>, token?: string, signal?: AbortSignal): Promise<R> => {
    let scope: CapturedTenant | 'global';
    try {
      scope = scopeOf(job.data);
    } catch (err) {
      throw refusal(err);
    }
    const view = userJob(job);
    if (scope === 'global') return outsideTenant(async () => processor(view, token, signal));
    let entered = false;
    try {
      return await platform.runInTenant(scope, () => {
        entered = true;
        return processor(view, token, signal);
      });
    } catch (err) {
      throw entered ? err : refusal(err);
    }
  };
  // BullMQ passes a signal only to a processor that declares a third parameter.
  const fn =
    processor.length >= 3
      ? (job: Job<TenantJobData<T>, R, N>, token?: string, signal?: AbortSignal) => run(job, token, signal)
      : (job: Job<TenantJobData<T>, R, N>, token?: string) => run(job, token);
  // Outside any scope: the worker's loop starts here and would otherwise run in the caller's scope.
  return outsideTenant(() => new Worker<TenantJobData<T>, R, N>(name, fn, opts));
}
