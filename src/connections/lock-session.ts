import type pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { openClient } from './timed-client.js';

/**
 * Opens a transaction that PostgreSQL never ends for being idle or slow. Locks live in it, so they hold
 * behind a transaction-mode pooler too: a pooler keeps a client's server connection for as long as its
 * transaction is open, and sends nothing of other clients over it.
 */
const BEGIN_HOLDING = 'BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0; SET LOCAL statement_timeout = 0';

/** A held advisory lock of a {@link LockSession}. */
export interface HeldLock {
  /** Gives the lock back. Never throws; a lock whose session was lost is already gone. */
  release(): Promise<void>;
}

/**
 * Advisory locks on one database (the main database), on connections of their own outside every pool, so
 * that taking or holding a lock never waits for a pooled connection.
 *
 * - {@link LockSession.tryHold} takes a lock that nobody else should hold (a tenant's provisioning lock,
 *   keyed by its fresh id) or reports that somebody does, without waiting. All of them share one connection
 *   whose transaction stays open, so they hold through PgBouncer in transaction mode as well as on a direct
 *   connection. When that connection dies its locks go with it (as a crashed process's do), and the next
 *   call opens a new one.
 * - {@link LockSession.withLock} waits for a lock (building a template), on a connection of its own, with a
 *   transaction-level lock that ends with the work.
 * @internal
 */
export class LockSession {
  readonly #url: string;
  readonly #connectTimeoutMs: number;
  readonly #logger: Logger;
  #session: Promise<pg.Client> | undefined;
  /** The shared session's statements, one after another (pg deprecates queueing them on a busy client). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Keys held on the shared session: PostgreSQL would grant one again to the same session. */
  readonly #held = new Set<string>();
  #closed = false;

  constructor(url: string, connectTimeoutMs: number, logger: Logger) {
    this.#url = url;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#logger = logger;
  }

  async #open(): Promise<pg.Client> {
    const client = await openClient(this.#url, this.#connectTimeoutMs);
    try {
      await client.query(BEGIN_HOLDING);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  /** The shared session, opened on first use and again after it was lost. */
  #shared(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new TenantDbError('CLOSED', 'the platform was closed'));
    if (!this.#session) {
      const opening = this.#open();
      this.#session = opening;
      opening.then(
        (client) => {
          const lost = (): void => {
            if (this.#session === opening) this.#session = undefined;
          };
          client.once('error', (err: Error) => {
            this.#logger.warn({ err: err.message }, 'the lock session failed; its locks are gone');
            lost();
          });
          client.once('end', lost);
        },
        () => {
          if (this.#session === opening) this.#session = undefined;
        },
      );
    }
    return this.#session;
  }

  /**
   * Takes the session-level advisory lock of `key` on the shared session, without waiting: undefined when
   * another session holds it.
   */
  async tryHold(key: string): Promise<HeldLock | undefined> {
    if (this.#held.has(key)) return undefined; // held by this process
    this.#held.add(key);
    let client: pg.Client;
    let session: Promise<pg.Client>;
    try {
      session = this.#shared();
      client = await session;
      const { rows } = await this.#serial(() =>
        client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]),
      ).catch((err: unknown) => {
        this.#discard(session, client);
        throw err;
      });
      if (!rows[0]!.locked) {
        this.#held.delete(key);
        return undefined;
      }
    } catch (err) {
      this.#held.delete(key);
      throw err;
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        // A lock of a session that was lost since is gone already.
        if (this.#session === session) {
          await this.#serial(() => client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])).catch(() =>
            this.#discard(session, client),
          );
        }
        this.#held.delete(key);
      },
    };
  }

  /** Runs `statement` once every statement queued before it on the shared session has settled. */
  #serial<T>(statement: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(statement, statement);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** A session whose state is in doubt is ended: its locks go, and the next call opens a new one. */
  #discard(session: Promise<pg.Client>, client: pg.Client): void {
    if (this.#session === session) this.#session = undefined;
    void client.end().catch(() => {});
  }

  /** Runs `fn` holding the lock of `key`, waiting for it as long as another session holds it. */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new TenantDbError('CLOSED', 'the platform was closed');
    const client = await this.#open();
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
      return await fn();
    } finally {
      // Ending the connection ends its transaction, and the lock with it.
      await client.end().catch(() => {});
    }
  }

  /** Ends the shared session (its locks go with it). Connections of {@link withLock} end with their work. */
  async close(): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    if (session) await session.then((client) => client.end()).catch(() => {});
  }
}
