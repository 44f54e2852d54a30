import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import type { SummaryResult } from '../../examples/shared/jobs.js';
import { harnessProcessEnv, useTestPlatform } from '../support/env.js';
import { REDIS_URL, redisConnection, redisSkipReason, removeQueue, uniqueQueue, until } from '../support/redis.js';
import { spawnServer, type SpawnedServer } from '../support/spawn.js';
import { createTestUser } from '../support/users.js';

const skip = await redisSkipReason();
const env = useTestPlatform();

const TENANTS = 10;
const JOBS = 200;
// BullMQ's default worker concurrency is 1; the project tests concurrency at ten times every default and more.
const CONCURRENCY = 20;

// The Express example, started as a user starts it (with REDIS_URL), adds the jobs from concurrent requests;
// its own tenantWorker runs them. This process reads the jobs' outcomes from Redis.
describe.skipIf(skip !== '')('examples/express background jobs over HTTP, on BullMQ', () => {
  const { name, prefix } = uniqueQueue('tdbt_ex_jobs');
  let server: SpawnedServer | undefined;
  let queue: Queue | undefined;

  afterAll(async () => {
    const code = await server?.stop();
    if (queue) await removeQueue(queue);
    expect(code).toBe(0); // a clean shutdown on SIGTERM: the worker and the queue closed
  });

  it(`${JOBS} jobs over ${TENANTS} tenants, added by concurrent requests, each run in its own tenant; a job whose user left fails FORBIDDEN`, async () => {
    server = await spawnServer('examples/express/server.ts', {
      ...harnessProcessEnv(env.mainDb, env.prefix),
      REDIS_URL,
      JOBS_QUEUE: name,
      JOBS_PREFIX: prefix,
      JOBS_CONCURRENCY: String(CONCURRENCY),
    });
    queue = new Queue(name, { connection: redisConnection(), prefix });
    const base = server.url;
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const json = async <T>(res: Response, status: number): Promise<T> => {
      expect(res.status, await res.clone().text()).toBe(status);
      return (await res.json()) as T;
    };

    // Ten owners, each with a tenant of their own.
    const owners = await Promise.all(
      Array.from({ length: TENANTS }, async (_, i) => {
        const email = `owner${i}@example.com`;
        await json(await post('/users', { firstName: `Owner${i}`, lastName: 'X', email, password: 'a long password' }), 201);
        const { token, user } = await json<{ token: string; user: { id: string } }>(await post('/login', { email, password: 'a long password' }), 200);
        const auth = { authorization: `Bearer ${token}` };
        const tenant = await json<{ id: string; databaseName: string }>(await post('/tenants', { name: `Tenant ${i}` }, auth), 201);
        return { user, tenant, headers: { ...auth, 'x-tenant-id': tenant.id } };
      }),
    );

    // All the requests at once, interleaved over the tenants.
    const requests = Array.from({ length: JOBS }, (_, i) => ({ owner: owners[i % TENANTS]!, note: `request ${i}` }));
    const added = await Promise.all(
      requests.map(async ({ owner, note }) => ({ owner, note, id: (await json<{ id: string }>(await post('/t/jobs', { note }, owner.headers), 202)).id })),
    );
    expect(new Set(added.map((a) => a.id)).size).toBe(JOBS);
    await until(async () => (await queue!.getJobCounts('completed')).completed === JOBS, 60_000, `${JOBS} jobs completed`);
    expect((await queue.getJobCounts('failed')).failed).toBe(0);
    const results = await Promise.all(added.map(async ({ id }) => (await queue!.getJob(id))!.returnvalue as SummaryResult));
    added.forEach(({ owner, note }, i) =>
      expect(results[i]).toEqual({
        note,
        tenantId: owner.tenant.id,
        userId: owner.user.id,
        role: 'admin',
        database: owner.tenant.databaseName,
        documents: 0,
      }),
    );

    // A member adds a job while the queue is paused, and is removed from the tenant before it runs.
    const platform = env.platform();
    const [first] = owners;
    const member = await createTestUser(platform, 'Leaver');
    await platform.memberships.add(first!.tenant.id, member.id, 'user');
    const { token } = await json<{ token: string }>(await post('/login', { email: 'leaver@example.com', password: 'correct horse' }), 200);
    await queue.pause();
    const { id } = await json<{ id: string }>(
      await post('/t/jobs', { note: 'too late' }, { authorization: `Bearer ${token}`, 'x-tenant-id': first!.tenant.id }),
      202,
    );
    await platform.memberships.remove(first!.tenant.id, member.id);
    await queue.resume();
    await until(async () => (await queue!.getJobState(id)) === 'failed', 30_000, 'the job failed');
    const failed = (await queue.getJob(id))!;
    expect(failed.failedReason).toMatch(/^FORBIDDEN: /);
    // The example's queue allows 3 attempts; a refused scope burns none of them.
    expect([failed.opts.attempts, failed.attemptsMade]).toEqual([3, 1]);
  });
});
