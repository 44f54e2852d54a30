import pg from 'pg';
import { LockSession } from '../connections/lock-session.js';
import { timedClientClass } from '../connections/timed-client.js';
import { TenantDbError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import type { Logger } from '../util/logger.js';
import type { ResolvedOptions } from './resolved-options.js';

/**
 * The state every service of one platform shares: its options, the lazily opened main pool, and the
 * closed flag. Internal: host apps only see {@link Platform}.
 * @internal
 */
export class PlatformContext {
  readonly options: ResolvedOptions;
  readonly logger: Logger;
  #mainPool: pg.Pool | undefined;
  /** Advisory locks on the main database, over `mainAdminUrl`, outside the main pool. */
  readonly locks: LockSession;
  #closed = false;
  #mainEnded = false;
  readonly #closers: Array<() => Promise<void>> = [];

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.logger = options.logger;
    this.locks = new LockSession(options.mainAdminUrl, options.pool.connectTimeoutMs, options.logger);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws CLOSED once the platform is closed. */
  assertOpen(): void {
    if (this.#closed) throw new TenantDbError('CLOSED', 'the platform was closed');
  }

  /**
   * The pool on the main database, opened on first use. After `close()` started it is still there for work
   * already under way (which `close()` waits for), until `close()` ends it; then CLOSED.
   */
  get main(): pg.Pool {
    if (this.#mainEnded || (this.#closed && !this.#mainPool)) throw new TenantDbError('CLOSED', 'the platform was closed');
    if (!this.#mainPool) {
      const { maxMainConnections, connectTimeoutMs, acquireTimeoutMs } = this.options.pool;
      const pool = new pg.Pool({
        connectionString: this.options.mainUrl,
        max: maxMainConnections,
        idleTimeoutMillis: 10_000,
        // pg-pool's bound on waiting for a free client (UNAVAILABLE after it); the connect itself is the Client's.
        connectionTimeoutMillis: acquireTimeoutMs,
        Client: timedClientClass(connectTimeoutMs, 'the main database'),
      });
      // An idle client's error (server restart, killed backend) must never crash the host process.
      pool.on('error', (err) => {
        this.logger.warn({ err: err.message, db: redactUrl(this.options.mainUrl) }, 'idle main-database client failed');
      });
      this.#mainPool = pool;
    }
    return this.#mainPool;
  }

  /**
   * Runs `fn` in a transaction on one connection of the main pool: commit when it returns, rollback
   * when it throws. A connection whose ROLLBACK fails is discarded, not returned to the pool.
   */
  async mainTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.main.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  /** Registers work to do on close (ending pools), run in reverse order of registration. */
  onClose(fn: () => Promise<void>): void {
    this.#closers.push(fn);
  }

  /** Marks the platform closed and releases everything it holds. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    const errors: unknown[] = [];
    for (const fn of this.#closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    await this.locks.close().catch((err: unknown) => errors.push(err));
    this.#mainEnded = true;
    if (this.#mainPool) {
      await this.#mainPool.end().catch((err: unknown) => errors.push(err));
    }
    for (const err of errors) this.logger.warn({ err }, 'error while closing the platform');
  }
}
