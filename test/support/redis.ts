import { Redis } from 'ioredis';
import type { ConnectionOptions, Queue } from 'bullmq';
import { redisConnection as connectionOf } from '../../examples/shared/redis.js';
import { uniqueName } from './env.js';

/** The Redis the BullMQ tests use: TENANTDB_TEST_REDIS_URL, else the local default. */
export const REDIS_URL = process.env.TENANTDB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** BullMQ connection options for {@link REDIS_URL}: every Queue and Worker opens (and closes) its own. */
export function redisConnection(): ConnectionOptions {
  return connectionOf(REDIS_URL);
}

/**
 * Why the BullMQ tests cannot run (Redis does not answer PING within a second), printed so the skip is
 * seen; empty when Redis answers.
 */
export async function redisSkipReason(): Promise<string> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return '';
  } catch (err) {
    const reason = `Redis at ${REDIS_URL} does not answer (${(err as Error).message}): the BullMQ tests are skipped`;
    process.stderr.write(`[tenantdb test] ${reason}\n`);
    return reason;
  } finally {
    client.disconnect();
  }
}

/** A queue name and key prefix of this run's own, so that runs never see each other's jobs. */
export function uniqueQueue(tag: string): { name: string; prefix: string } {
  return { name: uniqueName(tag), prefix: uniqueName('tdbt_bull') };
}

/** Removes every key of a queue (its jobs in any state) and closes it. */
export async function removeQueue(queue: Queue): Promise<void> {
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
  }
}

/** Waits for `condition`, polling, up to `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
