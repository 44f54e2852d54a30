import pg from 'pg';
import { TenantDbError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import type { Logger, ResolvedOptions } from './options.js';

/**
 * The state every service of one platform shares: its options, the lazily opened main pool, and the
 * closed flag. Internal: host apps only see {@link Platform}.
 * @internal
 */
export class PlatformContext {
  readonly options: ResolvedOptions;
  readonly logger: Logger;
  #mainPool: pg.Pool | undefined;
  #closed = false;
  readonly #closers: Array<() => Promise<void>> = [];

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.logger = options.logger;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws CLOSED once the platform is closed. */
  assertOpen(): void {
    if (this.#closed) throw new TenantDbError('CLOSED', 'the platform was closed');
  }

  /** The pool on the main database, opened on first use. */
  get main(): pg.Pool {
    this.assertOpen();
    if (!this.#mainPool) {
      const pool = new pg.Pool({ connectionString: this.options.mainUrl, max: 10, idleTimeoutMillis: 10_000 });
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
    if (this.#mainPool) {
      await this.#mainPool.end().catch((err: unknown) => errors.push(err));
    }
    for (const err of errors) this.logger.warn({ err }, 'error while closing the platform');
  }
}
