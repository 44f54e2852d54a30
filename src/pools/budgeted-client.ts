import pg from 'pg';
import type { BudgetSlot, SlotSource } from './connection-budget.js';
import { destroySocket } from './pg-internals.js';
import { ScramKeyClient } from '../util/scram.js';

/** What a {@link BudgetedClient} reports to the pool that owns it. */
export interface BudgetedClientHooks {
  /** Bound on the TCP + startup handshake once a slot is held, in ms (pg's `connectionTimeoutMillis`). */
  connectTimeoutMs: number;
  /** Settings sent in the startup packet of each new connection (e.g. `statement_timeout`). Default: none. */
  startupParameters?: () => Pick<pg.ClientConfig, 'statement_timeout'>;
  /** The client started connecting (it may now wait for a slot, then open a socket). */
  onOpen(client: BudgetedClient): void;
  /** The client holds no slot and no socket any more. Called exactly once per `onOpen`. */
  onClose(client: BudgetedClient): void;
}

type ConnectCallback = ((err: Error) => void) | ((err: null, client: pg.Client) => void);

/**
 * A `pg.Client` that opens its connection only inside a {@link ConnectionBudget}: `connect()` first
 * takes a slot (FIFO, with the budget's timeout) and the slot goes back exactly once, when the socket
 * has closed or the connection attempt failed. Given to `pg.Pool` as its `Client`, so every connection
 * any tenant pool opens, including while an evicted pool drains, counts against one hard ceiling.
 *
 * Build one class per pool with {@link budgetedClientClass}; pg-pool constructs it with its options. It
 * answers SCRAM with keys derived once per credentials (see ScramKeyClient): a miss of the cache of
 * connections costs no PBKDF2.
 * @internal
 */
export class BudgetedClient extends ScramKeyClient {
  readonly #budget: SlotSource;
  readonly #hooks: BudgetedClientHooks;
  readonly #abort = new AbortController();
  #slot: BudgetSlot | undefined;
  #closing = false;
  #state: 'new' | 'waiting' | 'socket' | 'closed' = 'new';

  constructor(config: pg.ClientConfig | undefined, budget: SlotSource, hooks: BudgetedClientHooks) {
    // Copy with descriptors: pg-pool hides `password` as a non-enumerable property, which a spread would drop.
    const own = (config ? Object.defineProperties({}, Object.getOwnPropertyDescriptors(config)) : {}) as pg.ClientConfig;
    own.connectionTimeoutMillis = hooks.connectTimeoutMs;
    Object.assign(own, hooks.startupParameters?.());
    super(own);
    this.#budget = budget;
    this.#hooks = hooks;
    // Between its connect and pg-pool's listener (added once the connect's callback has run), nothing else
    // listens: a server that ends the session right then (a restart sends ReadyForQuery and the FATAL in one
    // read) must not crash the host. The failure still reaches the next query on it, and pg-pool drops it.
    this.on('error', () => {});
  }

  /** True while the client holds a budget slot. */
  get holdsSlot(): boolean {
    return this.#slot !== undefined && !this.#slot.released;
  }

  /** True once it was told to end (or forced closed): its slot comes back without further action. */
  get closing(): boolean {
    return this.#closing;
  }

  override connect(): Promise<pg.Client>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.Client> | void {
    const connecting = this.#connectWithinBudget();
    if (!callback) return connecting.then(() => this);
    // Outside the promise chain, so that a throwing callback is not turned into an unhandled rejection.
    connecting.then(
      () => process.nextTick(callback as (err: null, client: pg.Client) => void, null, this),
      (err: Error) => process.nextTick(callback as (err: Error) => void, err),
    );
  }

  override end(): Promise<void>;
  override end(callback: (err: Error) => void): void;
  override end(callback?: (err: Error) => void): Promise<void> | void {
    // Still waiting for a slot: stop waiting, nothing was opened.
    this.#closing = true;
    this.#abort.abort(new Error('Connection terminated'));
    this.#slot?.markClosing();
    return callback ? super.end(callback) : super.end();
  }

  /** Closes the connection now, whatever it is doing (a running query fails). */
  forceClose(): void {
    this.#closing = true;
    this.#abort.abort(new Error('Connection terminated'));
    this.#slot?.markClosing();
    if (this.#state === 'socket') destroySocket(this);
  }

  async #connectWithinBudget(): Promise<void> {
    if (this.#state !== 'new') throw new Error('Client has already been connected. You cannot reuse a client.');
    this.#state = 'waiting';
    this.#hooks.onOpen(this);
    let slot: BudgetSlot;
    try {
      slot = await this.#budget.acquire({ signal: this.#abort.signal });
    } catch (err) {
      this.#closed();
      throw err;
    }
    if (this.#abort.signal.aborted) {
      slot.release();
      this.#closed();
      throw this.#abort.signal.reason as Error;
    }
    this.#slot = slot;
    this.#state = 'socket';
    // pg emits 'end' once the socket has closed, whether it connected, failed to, or was killed:
    // the one moment the connection surely no longer counts on the server.
    this.once('end', () => {
      slot.release();
      this.#closed();
    });
    try {
      await super.connect();
    } catch (err) {
      // The socket may still be half open after a failed handshake; close it so 'end' follows.
      destroySocket(this);
      throw err;
    }
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#hooks.onClose(this);
  }
}

/** The `Client` class to give one `pg.Pool`: {@link BudgetedClient} bound to a budget and that pool's hooks. @internal */
export function budgetedClientClass(
  budget: SlotSource,
  hooks: BudgetedClientHooks,
): new (config?: pg.ClientConfig) => BudgetedClient {
  return class PooledBudgetedClient extends BudgetedClient {
    constructor(config?: pg.ClientConfig) {
      super(config, budget, hooks);
    }
  };
}
