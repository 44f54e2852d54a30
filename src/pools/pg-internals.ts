import type pg from 'pg';

// The only places where the pool manager reaches into pg / pg-pool internals, each for something
// their public API cannot do. Checked against pg 8.23 and pg-pool 3.14 (the shapes have been stable since
// pg-pool 2); every access is feature-tested, so a future change degrades to "do nothing", never a crash.

interface PgPoolInternals {
  _idle?: Array<{ client: pg.PoolClient }>;
  _remove?: (client: pg.PoolClient, callback?: () => void) => void;
  _pulseQueue?: () => void;
}

/**
 * Closes up to `max` idle clients of a pool, those idle longest first, and returns how many it closed.
 * pg-pool can close one idle client only on its idle timeout; a caller waiting for the connection
 * budget must not wait that long while connections sit unused elsewhere.
 * @internal
 */
export function closeIdleClients(pool: pg.Pool, max: number): number {
  const internals = pool as unknown as PgPoolInternals;
  const idle = internals._idle;
  const remove = internals._remove;
  if (!Array.isArray(idle) || typeof remove !== 'function' || max <= 0) return 0;
  // pg-pool pushes released clients and reuses from the end, so the front has idled longest.
  const victims = idle.slice(0, max).map((item) => item.client);
  for (const client of victims) {
    // The same call pg-pool's own idle timeout makes: forget the client, end it, then serve the queue.
    remove.call(pool, client, () => internals._pulseQueue?.call(pool));
  }
  return victims.length;
}

/**
 * Destroys a client's socket at once (no Terminate message, no waiting for the server).
 * `client.end()` does this only when a query is running; a forced shutdown needs it always.
 * @internal
 */
export function destroySocket(client: pg.ClientBase): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  stream?.destroy?.();
}

/**
 * True while the server has not yet said ReadyForQuery for the client's last query. pg settles a
 * failed query on the ErrorResponse, before ReadyForQuery, so `getTransactionStatus()` can still show
 * the status from before that query (e.g. 'I' after `BEGIN; SELECT 1/0`): it is only trusted when false.
 * @internal
 */
export function awaitingReadyForQuery(client: pg.ClientBase): boolean {
  return (client as unknown as { readyForQuery?: unknown }).readyForQuery === false;
}
