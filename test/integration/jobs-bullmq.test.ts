import { Queue, UnrecoverableError, type Job, type Worker } from 'bullmq';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TenantDbError, currentTenant, type Platform, type Tenant, type User } from '../../src/index.js';
import { tenantQueue, tenantWorker, type TenantJobData, type TenantProcessor, type TenantQueue } from '../../src/integrations/bullmq.js';
import { useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { redisConnection, redisSkipReason, removeQueue, uniqueQueue, until } from '../support/redis.js';
import { createTestUser } from '../support/users.js';

const skip = await redisSkipReason();
const env = useTestPlatform();

interface Seen {
  tenantId: string | undefined;
  userId: string | undefined;
  role: string | undefined;
  db: string | undefined;
  data: unknown;
}

describe.skipIf(skip !== '')('BullMQ jobs keep their tenant (tenantQueue, tenantWorker)', () => {
  let platform: Platform;
  let tenant: Tenant;
  let owner: User;
  let member: User;
  const open: { queue: Queue; worker?: Worker }[] = [];

  beforeAll(async () => {
    platform = await env.initPlatform();
    [owner, member] = await Promise.all([createTestUser(platform, 'Owner'), createTestUser(platform, 'Member')]);
    tenant = await platform.tenants.create({ name: 'Jobs', createdBy: owner.id });
    await platform.memberships.add(tenant.id, member.id, 'user');
  });

  afterEach(async () => {
    for (const { queue, worker } of open.splice(0)) {
      await worker?.close();
      await removeQueue(queue);
    }
  });

  /** A queue of this test's own (removed after it), wrapped. */
  function queue<T>(): TenantQueue<T, unknown> {
    const { name, prefix } = uniqueQueue('tdbt_jobs');
    const q = new Queue<TenantJobData<T>>(name, { connection: redisConnection(), prefix });
    open.push({ queue: q as Queue });
    return tenantQueue<T, unknown>(platform, q);
  }

  /** A worker on `jobs`' queue, closed after the test; `failed` collects each failure's error by job id. */
  function worker<T>(jobs: TenantQueue<T, unknown>, processor: TenantProcessor<T, unknown>): { failed: Map<string, Error> } {
    const w = tenantWorker(platform, jobs.queue.name, processor, { connection: redisConnection(), prefix: jobs.queue.opts.prefix!, concurrency: 10 });
    open.find((o) => o.queue === (jobs.queue as Queue))!.worker = w as Worker;
    const failed = new Map<string, Error>();
    w.on('failed', (job, err) => failed.set(job!.id!, err));
    return { failed };
  }

  const seeing = async (job: Job<{ n: number }>): Promise<Seen> => {
    const ctx = currentTenant();
    const db = ctx ? (await ctx.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db : undefined;
    return { tenantId: ctx?.tenant.id, userId: ctx?.userId, role: ctx?.role, db, data: job.data };
  };

  const finished = async (jobs: TenantQueue<unknown, unknown>, ids: string[]): Promise<Job[]> => {
    await until(async () => {
      const states = await Promise.all(ids.map((id) => jobs.queue.getJobState(id)));
      return states.every((s) => s === 'completed' || s === 'failed');
    });
    return Promise.all(ids.map(async (id) => (await jobs.queue.getJob(id))!));
  };

  it("runs a job in the scope it was added in: tenant, user, role, database; job.data is the caller's data", async () => {
    const jobs = queue<{ n: number }>();
    const added = await platform.withTenant(tenant, () => jobs.add('see', { n: 1 }), { userId: member.id });
    const trusted = await platform.withTenant(tenant, () => jobs.add('see', { n: 2 }));
    // Stored: the caller's data beside the captured scope.
    expect(added.data).toEqual({ tenantdb: { version: 1, tenantId: tenant.id, userId: member.id, role: 'user' }, data: { n: 1 } });
    worker(jobs, seeing);
    const [one, two] = await finished(jobs as TenantQueue<unknown, unknown>, [added.id!, trusted.id!]);
    expect(one!.returnvalue).toEqual({ tenantId: tenant.id, userId: member.id, role: 'user', db: tenant.databaseName, data: { n: 1 } });
    expect(two!.returnvalue).toEqual({ tenantId: tenant.id, db: tenant.databaseName, data: { n: 2 } });
  });

  it('keeps the scope when the processor updates its data', async () => {
    const jobs = queue<{ n: number }>();
    const added = await platform.withTenant(tenant, () => jobs.add('update', { n: 1 }), { userId: member.id });
    worker(jobs, async (job) => {
      await job.updateData({ n: job.data.n + 1 });
      return job.data;
    });
    const [done] = await finished(jobs as TenantQueue<unknown, unknown>, [added.id!]);
    expect(done!.returnvalue).toEqual({ n: 2 });
    expect(done!.data).toEqual({ tenantdb: added.data.tenantdb, data: { n: 2 } });
  });

  it('refuses a job added outside any scope with VALIDATION; a global job runs outside any scope', async () => {
    const jobs = queue<{ n: number }>();
    expect(await rejectionCode(jobs.add('nope', { n: 0 }))).toBe('VALIDATION');
    expect(await rejectionCode(jobs.addBulk([{ name: 'nope', data: { n: 0 } }]))).toBe('VALIDATION');
    const global = await jobs.add('global', { n: 1 }, { global: true });
    // Global also when added inside a scope, and the worker was created inside one too.
    const [fromScope, bulk] = await platform.withTenant(tenant, async () => {
      const [inside] = await jobs.addBulk([{ name: 'global', data: { n: 2 }, opts: { global: true } }]);
      const scoped = await jobs.addBulk([{ name: 'scoped', data: { n: 3 } }]);
      worker(jobs, seeing);
      return [inside!, scoped[0]!];
    });
    expect(global.data.tenantdb).toBe('global');
    const done = await finished(jobs as TenantQueue<unknown, unknown>, [global.id!, fromScope.id!, bulk.id!]);
    expect(done.map((j) => j.returnvalue)).toEqual([
      { data: { n: 1 } },
      { data: { n: 2 } },
      { tenantId: tenant.id, db: tenant.databaseName, data: { n: 3 } },
    ]);
  });

  it('fails a job whose scope is refused when it runs (FORBIDDEN, TENANT_INACTIVE), at once, without retries', async () => {
    const jobs = queue<{ n: number }>();
    const other = await platform.tenants.create({ name: 'Jobs, paused', createdBy: owner.id });
    const retries = { attempts: 3, backoff: { type: 'fixed', delay: 10 } };
    const forbidden = await platform.withTenant(tenant, () => jobs.add('x', { n: 1 }, retries), { userId: member.id });
    const inactive = await platform.withTenant(other, () => jobs.add('x', { n: 2 }, retries));
    const allowed = await platform.withTenant(tenant, () => jobs.add('x', { n: 3 }, retries), { userId: owner.id });
    await platform.memberships.remove(tenant.id, member.id);
    await platform.tenants.deactivate(other.id);
    let ran = 0;
    const { failed } = worker(jobs, async (job) => {
      ran++;
      return job.data.n;
    });
    try {
      const [f, i, a] = await finished(jobs as TenantQueue<unknown, unknown>, [forbidden.id!, inactive.id!, allowed.id!]);
      expect([ran, a!.returnvalue]).toEqual([1, 3]);
      for (const [job, code] of [[f!, 'FORBIDDEN'], [i!, 'TENANT_INACTIVE']] as const) {
        expect(await job.getState()).toBe('failed');
        expect(job.attemptsMade).toBe(1);
        expect(job.failedReason).toMatch(new RegExp(`^${code}: `));
        const err = failed.get(job.id!)!;
        expect(err).toBeInstanceOf(UnrecoverableError);
        expect(err.cause).toBeInstanceOf(TenantDbError);
        expect((err.cause as TenantDbError).code).toBe(code);
      }
    } finally {
      await platform.memberships.add(tenant.id, member.id, 'user');
    }
  });

  it("fails a job that was not added through tenantQueue with VALIDATION; the processor's own errors pass untouched and are retried", async () => {
    const jobs = queue<{ n: number }>();
    const raw = await (jobs.queue as unknown as Queue).add('raw', { n: 1 }, { attempts: 3 });
    const forged = await (jobs.queue as unknown as Queue).add('forged', { tenantdb: { version: 1, tenantId: 'acme' }, data: { n: 2 } }, { attempts: 3 });
    const throws = await platform.withTenant(tenant, () => jobs.add('throws', { n: 3 }, { attempts: 2 }));
    const mine = new Error('the processor failed');
    const { failed } = worker(jobs, async () => {
      throw mine;
    });
    const [r, f, t] = await finished(jobs as TenantQueue<unknown, unknown>, [raw.id!, forged.id!, throws.id!]);
    for (const job of [r!, f!]) {
      expect(job.attemptsMade).toBe(1);
      expect(job.failedReason).toMatch(/^VALIDATION: /);
      expect((failed.get(job.id!)!.cause as TenantDbError).code).toBe('VALIDATION');
    }
    expect(t!.attemptsMade).toBe(2);
    expect(failed.get(t!.id!)).toBe(mine);
  });
});
