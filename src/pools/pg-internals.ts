import type pg from 'pg';
import { isSessionEndedByServer } from '../util/pg-errors.js';

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

const ANSWERS = Symbol('tenantdb.answers');
/** What the server sends in answer to a query, before its ReadyForQuery (errors and notices aside). */
const ANSWER_MESSAGES = [
  'parseComplete',
  'bindComplete',
  'noData',
  'rowDescription',
  // (Not dataRow: a row always follows a rowDescription, and a listener per row would cost every query.)
  'commandComplete',
  'emptyQuery',
  'portalSuspended',
  'copyInResponse',
  'copyOutResponse',
];

/**
 * How many messages the server has sent on `client`'s connection in answer to its queries so far (counted
 * from the first call on); undefined when the connection cannot be watched. Read it before a query and
 * after its failure: equal means the server answered nothing to that query, not even that it was parsed.
 * @internal
 */
export function answersSoFar(client: pg.ClientBase): number | undefined {
  const watched = client as unknown as { [ANSWERS]?: number; connection?: { on?: (event: string, fn: () => void) => unknown } };
  if (watched[ANSWERS] === undefined) {
    const connection = watched.connection;
    if (typeof connection?.on !== 'function') return undefined;
    watched[ANSWERS] = 0;
    const count = (): void => void (watched[ANSWERS]! += 1);
    for (const name of ANSWER_MESSAGES) connection.on(name, count);
  }
  return watched[ANSWERS];
}

/**
 * True when the server ended `client`'s session (FATAL 57P01–57P03) before it answered anything to the query
 * sent after {@link answersSoFar} returned `answersBefore`: the session was ending before the query came (a
 * backend terminated while idle in the pool, its FATAL still on its way), so the query never ran and may go
 * again on another connection. A query the server had begun to answer (parsed, described, running) is not.
 * @internal
 */
export function endedBeforeAnswering(err: unknown, client: pg.ClientBase, answersBefore: number | undefined): boolean {
  return answersBefore !== undefined && isSessionEndedByServer(err) && answersSoFar(client) === answersBefore;
}
