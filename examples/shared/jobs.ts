// Background jobs for the examples, with BullMQ on Redis, when REDIS_URL is set: a queue whose jobs keep
// the tenant (and user) of the request that added them, and a worker that runs each one in that scope.
//   REDIS_URL          redis://[:password@]host:port[/db]; without it the examples have no jobs
//   JOBS_QUEUE         the queue's name (default tenantdb-example)
//   JOBS_PREFIX        BullMQ's key prefix (default bull)
//   JOBS_CONCURRENCY   jobs the worker runs at once (default 10); JOBS_WORKER=0 runs no worker here
import { Queue } from 'bullmq';
import { currentTenant, type Platform } from '@org/tenantdb';
import { tenantQueue, tenantWorker, type TenantQueue } from '@org/tenantdb/bullmq';
import { redisConnection } from './redis.js';

/** What `POST /t/jobs` enqueues. */
export interface SummaryJob {
  /** Whatever the client sent as `note`, echoed in the result. */
  note: string | null;
}

/** What a summary job returns (BullMQ keeps it as the job's `returnvalue`). */
export interface SummaryResult {
  note: string | null;
  tenantId: string;
  userId: string | null;
  role: string | null;
  database: string;
  documents: number;
}

export interface ExampleJobs {
  summaries: TenantQueue<SummaryJob, SummaryResult>;
  /** Closes the worker (letting the jobs under way finish), then the queue. */
  close(): Promise<void>;
}

/** The processor: runs in the scope of the request that added the job (tenantWorker enters it). */
async function summarise(job: { data: SummaryJob }): Promise<SummaryResult> {
  const ctx = currentTenant()!;
  const { rows } = await ctx.query<{ database: string }>('SELECT current_database() AS database');
  const { items } = await ctx.documents.list({ limit: 100 });
  return {
    note: job.data.note,
    tenantId: ctx.tenant.id,
    userId: ctx.userId ?? null,
    role: ctx.role ?? null,
    database: rows[0]!.database,
    documents: items.length,
  };
}

/** The examples' jobs, or undefined when REDIS_URL is not set. */
export function startExampleJobs(platform: Platform, env: NodeJS.ProcessEnv = process.env): ExampleJobs | undefined {
  if (!env.REDIS_URL) return undefined;
  const connection = redisConnection(env.REDIS_URL);
  const name = env.JOBS_QUEUE ?? 'tenantdb-example';
  const prefix = env.JOBS_PREFIX ?? 'bull';
  const queue = new Queue(name, {
    connection,
    prefix,
    // A refused scope (FORBIDDEN, TENANT_INACTIVE, …) fails at once whatever `attempts` says.
    defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 1000, removeOnFail: 1000 },
  });
  const summaries = tenantQueue<SummaryJob, SummaryResult>(platform, queue);
  const worker =
    env.JOBS_WORKER === '0'
      ? undefined
      : tenantWorker(platform, name, summarise, { connection, prefix, concurrency: Number(env.JOBS_CONCURRENCY ?? 10) });
  worker?.on('failed', (job, err) => console.warn(`job ${job?.id} failed: ${err.message}`));
  return {
    summaries,
    async close() {
      await worker?.close();
      await queue.close();
    },
  };
}
