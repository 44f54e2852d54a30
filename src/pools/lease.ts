import type pg from 'pg';
import type { Logger } from '../util/logger.js';
import { awaitingReadyForQuery } from './pg-internals.js';

/** What a finished lease resolves to when its client went back synchronously: compare by identity. */
export const RELEASED: Promise<void> = Promise.resolve();

/** A lent client and the one way to give it back. */
export interface Lease {
  readonly client: pg.PoolClient;
  /** The client's server takes no startup parameters: the statement timeout goes with each transaction. */
  readonly local: boolean;
  /**
   * Gives the client back, clean: rolled back if it was left in a transaction, destroyed if that fails, if it
   * emitted `'error'`, or if `err` is given. {@link RELEASED} when it went back at once. Only the first call counts.
   */
  finish(err?: Error | boolean): Promise<void>;
}

/** What a lease needs of the pool it came from. */
export interface LeaseOwner {
  /** For log lines: the database and its server, without a password. */
  readonly label: string;
  readonly logger: Logger;
  /** See {@link Lease.local}. */
  readonly local: boolean;
  /** True when callers wait for a connection slot: a client in doubt is then closed, not rolled back. */
  budgetWanted(): boolean;
  /** The client is back: release it to its pool (`destroy` false) or destroy it. */
  giveBack(client: pg.PoolClient, destroy: Error | boolean): void;
}

const FAILURE = Symbol('tenantdb.failure');
const LENT = Symbol('tenantdb.lent');

/** A pooled client with what a lease tracks on it: its first error (null: none yet), and whether it is out. */
type TrackedClient = pg.PoolClient & { [FAILURE]?: Error | null; [LENT]?: boolean };

/**
 * Marks `client` as out: the first time, an `'error'` listener that keeps a dead connection from crashing
 * the host while it is out (pg-pool listens only while a client is idle; the running query, if any, gets
 * the error itself) and marks it for destruction.
 */
function markLent(owner: LeaseOwner, client: pg.PoolClient): TrackedClient {
  const tracked = client as TrackedClient;
  if (tracked[FAILURE] === undefined) {
    tracked[FAILURE] = null;
    client.on('error', (err: Error) => {
      tracked[FAILURE] ??= err;
      if (tracked[LENT]) owner.logger.warn({ err: err.message, db: owner.label }, 'tenant connection failed while checked out');
    });
  }
  tracked[LENT] = true;
  return tracked;
}

/**
 * For one query on `client` (the warm path): marks it out, and returns how to give it back afterwards:
 * at once when it is clean (no error, outside any transaction, nothing in flight), else through a full
 * lease's cleaning {@link Lease.finish}. No lease object unless one is needed.
 * @internal
 */
export function lendForOneQuery(owner: LeaseOwner, client: pg.PoolClient): () => Promise<void> {
  const tracked = markLent(owner, client);
  return () => {
    if (tracked[FAILURE] === null && client.getTransactionStatus() === 'I' && !awaitingReadyForQuery(client)) {
      tracked[LENT] = false;
      owner.giveBack(client, false);
      return RELEASED;
    }
    tracked[LENT] = false;
    return lend(owner, client).finish();
  };
}

/**
 * Lends `client`: an `'error'` listener (once per connection, not per lease) keeps a dead connection from
 * crashing the host while it is out, and marks it for destruction; `finish` is once-only and cleaning.
 * @internal
 */
export function lend(owner: LeaseOwner, client: pg.PoolClient): Lease {
  const tracked = markLent(owner, client);
  const failed = (): boolean => tracked[FAILURE] !== null;
  const release = (destroy: Error | boolean): void => {
    tracked[LENT] = false;
    owner.giveBack(client, destroy);
  };
  const cleanUp = async (err?: Error | boolean): Promise<void> => {
    let destroy = Boolean(err) || failed();
    try {
      // ROLLBACK outside a transaction is a harmless warning, so send one whenever the status is in doubt.
      if (!destroy && (client.getTransactionStatus() !== 'I' || awaitingReadyForQuery(client))) {
        // Closing the connection aborts the transaction anyway; when someone waits for a slot, do that.
        if (owner.budgetWanted()) destroy = true;
        else {
          try {
            await client.query('ROLLBACK');
          } catch {
            destroy = true;
          }
          if (failed() || client.getTransactionStatus() !== 'I') destroy = true;
        }
      }
    } finally {
      release(destroy ? (err instanceof Error ? err : true) : false);
    }
  };
  let finishing: Promise<void> | undefined;
  return {
    client,
    local: owner.local,
    finish: (err) => {
      if (finishing) {
        owner.logger.warn({ db: owner.label }, 'tenant client released twice; ignored');
        return finishing;
      }
      // A clean client (no error, outside any transaction, nothing in flight) goes back at once.
      if (!err && !failed() && client.getTransactionStatus() === 'I' && !awaitingReadyForQuery(client)) {
        release(false);
        finishing = RELEASED;
        return finishing;
      }
      finishing = cleanUp(err).catch((cleanupErr: unknown) => {
        owner.logger.warn({ err: String(cleanupErr), db: owner.label }, 'could not return a tenant client');
      });
      return finishing;
    },
  };
}
