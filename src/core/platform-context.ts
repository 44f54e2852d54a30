import type pg from 'pg';
import { Connections } from '../connections/connections.js';
import type { LockSession } from '../connections/lock-session.js';
import { TenantDbError } from '../errors.js';
import { answersSoFar, endedBeforeAnswering } from '../pools/pg-internals.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { Logger } from '../util/logger.js';
import type { ResolvedOptions } from './resolved-options.js';

/**
 * The state every service of one platform shares: its options, its connections (see {@link Connections}),
 * and the closed flag. Internal: host apps only see {@link Platform}.
 * @internal
 */
export class PlatformContext {
  readonly options: ResolvedOptions;
  readonly logger: Logger;
  /** Every connection the platform opens. */
  readonly connections: Connections;
  /** Metrics, spans and diagnostics_channel events; undefined: instrumentation off (the benchmark's switch). */
  readonly telemetry: Telemetry | undefined;
  #closed = false;
  readonly #closers: Array<() => Promise<void>> = [];

  constructor(options: ResolvedOptions, telemetry?: Telemetry) {
    this.options = options;
    this.logger = options.logger;
    this.telemetry = telemetry;
    this.connections = new Connections(options, telemetry);
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
    return this.connections.main;
  }

  /** Advisory locks on the main database, over `mainAdminUrl`, outside the main pool. */
  get locks(): LockSession {
    return this.connections.locks;
  }

  /**
   * Runs `fn` in a transaction on one connection of the main pool: commit when it returns, rollback
   * when it throws. A connection whose ROLLBACK fails is discarded, not returned to the pool.
   */
  async mainTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#begun();
    let broken = false;
    try {
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

  /**
   * A main connection in a transaction. A BEGIN that finds its session already ended by the server (a
   * backend terminated while idle in the pool, its FATAL still on its way) goes again on another connection.
   */
  async #begun(): Promise<pg.PoolClient> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.main.connect();
      const before = answersSoFar(client);
      try {
        await client.query('BEGIN');
        return client;
      } catch (err) {
        client.release(true);
        if (attempt >= this.options.pool.maxMainConnections || !endedBeforeAnswering(err, client, before)) throw err;
      }
    }
  }

  /** Registers work to do on close (ending pools), run in reverse order of registration. */
  onClose(fn: () => Promise<void>): void {
    this.#closers.push(fn);
  }

  /** Marks the platform closed, lets the work under way finish (the closers), then ends every connection. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    this.connections.beginClose();
    const errors: unknown[] = [];
    for (const fn of this.#closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    errors.push(...(await this.connections.close()));
    for (const err of errors) this.logger.warn({ err }, 'error while closing the platform');
  }
}
