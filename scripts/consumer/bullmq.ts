// A TypeScript consumer of `@org/tenantdb/bullmq` (see index.ts). Needs bullmq.
import { Queue, type Worker } from 'bullmq';
import { createPlatform, currentTenant, type CapturedTenant } from '@org/tenantdb';
import {
  tenantQueue,
  tenantWorker,
  type TenantJobData,
  type TenantJobOptions,
  type TenantProcessor,
  type TenantQueue,
} from '@org/tenantdb/bullmq';

const platform = createPlatform({ mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform', s3: { bucket: 'tenantdb' } });
const connection = { host: '127.0.0.1', port: 6379 };

interface Report {
  month: string;
}

const reports: TenantQueue<Report, number> = tenantQueue<Report, number>(platform, new Queue('reports', { connection }));

export async function enqueue(month: string): Promise<string | undefined> {
  const opts: TenantJobOptions = { attempts: 3, backoff: { type: 'exponential', delay: 1000 } };
  const job = await reports.add('monthly', { month }, opts);
  const stored: TenantJobData<Report> = job.data;
  const scope: CapturedTenant | 'global' = stored.tenantdb;
  void scope;
  await reports.addBulk([{ name: 'cleanup', data: { month }, opts: { global: true } }]);
  return job.id;
}

const process: TenantProcessor<Report, number> = async (job) => {
  const ctx = currentTenant();
  if (!ctx) throw new Error('no scope');
  const month: string = job.data.month;
  return (await ctx.query('SELECT $1::text AS month', [month])).rowCount ?? 0;
};

export const worker: Worker<TenantJobData<Report>, number> = tenantWorker(platform, 'reports', process, { connection, concurrency: 10 });

// The same scope by hand, for another queue.
export async function byHand(): Promise<number> {
  const captured: CapturedTenant = platform.captureTenant();
  const json = JSON.parse(JSON.stringify(captured)) as CapturedTenant;
  return platform.runInTenant(json, (ctx) => ctx.tenant.name.length);
}
