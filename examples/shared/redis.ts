// BullMQ connection options from a `redis://[:password@]host:port[/db]` URL. BullMQ opens (and closes) the
// connections of each Queue and Worker itself from them.
import type { ConnectionOptions } from 'bullmq';

export function redisConnection(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.password && { password: decodeURIComponent(url.password) }),
    ...(url.pathname.length > 1 && { db: Number(url.pathname.slice(1)) }),
  };
}
