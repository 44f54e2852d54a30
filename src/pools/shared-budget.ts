import { createHash } from 'node:crypto';
import type pg from 'pg';
import { TenantDbError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { observeWait, type BudgetSlot, type ConnectionBudget, type SlotSource, type WaitObserver } from './connection-budget.js';

/** How a {@link SharedBudget} reaches its server, and what it tells its owner. */
export interface SharedBudgetOptions {
  /** Slots over every process of the platform (`pool.sharedBudget.maxConnections`). */
  max: number;
  /** The first key of the two-int advisory locks (see {@link sharedBudgetNamespace}); slots are 0…max-1. */
  namespace: number;
  /**
   * Opens the control connection: direct (session locks do not survive a transaction-mode pooler), on the
   * database every process uses (`postgres`), with a connect timeout and an `'error'` listener.
   */
  connect(): Promise<pg.Client>;
  /** The server, without a password, for log lines and errors. */
  label: string;
  /** How long {@link SharedBudget.acquire} waits before UNAVAILABLE. */
  timeoutMs: number;
  logger: Logger;
  /** No slot was free: the owner closes its own idle connections on the server (each gives its slot back). */
  onWait(): void;
  /**
   * Another process waits for `count` slots: the owner closes as many of its idle connections on the server,
   * whose slots then go back to the server rather than to this process's own waiters.
   */
  onOthersWaiting(count: number): void;
  /**
   * The control connection was lost (its locks with it) and not every slot could be taken again: the owner
   * closes connections, idle ones first, until {@link SharedBudget.shortfall} is 0.
   */
  onShortfall(): void;
}

/** A slot held by one connection; `number` undefined while the session that had locked it is lost. */
interface Held {
  number: number | undefined;
  released: boolean;
  closing: boolean;
}

interface Waiter {
  resolve(slot: BudgetSlot): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
  onAbort: (() => void) | undefined;
  signal: AbortSignal | undefined;
}

/** The first and the longest pause between two tries of a process that found no slot free, in ms. */
const BACKOFF = { first: 10, max: 200 } as const;

/** How long a process counts as waiting after it last said so (it says so every SAY_EVERY_MS while it waits). */
const OTHERS_WAITING_MS = 1_000;

/** Takes up to $3 free slots of namespace $1 among $2 in one round trip: Limit stops the scan at $3 locks. */
const TAKE = 'SELECT s FROM unnest($2::int[]) AS s WHERE pg_try_advisory_lock($1, s) LIMIT $3';
const GIVE_BACK = 'SELECT pg_advisory_unlock($1, $2)';
/** Gives a slot back and wakes the processes that wait for one. */
const GIVE_BACK_AND_SAY = "SELECT pg_advisory_unlock($1, $2), pg_notify($3, 'free')";
/** Tells the other processes that this one waits for $2 (`wait:<count>`) slots. */
const SAY_WAITING = 'SELECT pg_notify($1, $2)';
/** A waiting process says so at most this often, in ms. */
const SAY_EVERY_MS = 100;

/**
 * The advisory-lock namespace (first int4 key) of the shared budget of one tenant server of one platform:
 * 31 bits of SHA-256 over the main database's name and the server's name, so that two platforms on one
 * server, or two servers of one platform, never share slots.
 * @internal
 */
export function sharedBudgetNamespace(mainDatabase: string, serverName: string): number {
  return createHash('sha256').update(`tenantdb shared budget\u0000${mainDatabase}\u0000${serverName}`).digest().readUInt32BE(0) & 0x7fffffff;
}

/**
 * The slot numbers a process may try to lock: 0…max-1 but those its session holds already (PostgreSQL
 * would grant those again to the same session), starting at `start` so processes spread their tries.
 * @internal
 */
export function slotCandidates(max: number, held: ReadonlySet<number>, start: number): number[] {
  const candidates: number[] = [];
  for (let i = 0; i < max; i++) {
    const n = (start + i) % max;
    if (!held.has(n)) candidates.push(n);
  }
  return candidates;
}

/**
 * The slots a process may keep for its own waiters while `othersWaiting` other processes wait too: an equal
 * share of `max` (at least 1). Above it, freed slots go back to the server for the others.
 * @internal
 */
export function fairShare(max: number, othersWaiting: number): number {
  return Math.max(1, Math.floor(max / (1 + othersWaiting)));
}

/** The pause after `previousMs` (doubling up to the cap), with ±50% jitter so that waiting processes do not poll in step. @internal */
export function nextBackoff(previousMs: number, random: number): number {
  const base = Math.min(previousMs * 2, BACKOFF.max);
  return Math.round(base * (0.5 + random));
}

/**
 * This process's share of a connection budget that every process of the platform shares on one tenant
 * server: slot `n` is the session advisory lock `(namespace, n)`, held on one control connection per
 * process and server. A process takes a slot before it opens a tenant connection and gives it back once the
 * socket has closed, so all processes together never have more than `max` open. A killed process's slots
 * free themselves when the server notices its control connection is gone.
 *
 * - Statements on the control connection run one after another; a hit of the pools never reaches it, a miss
 *   costs one round trip (taking the slots of every caller waiting at that moment at once).
 * - A freed slot passes to the first waiter of this process without a round trip; else, or while another
 *   process says it waits, it is unlocked in the background.
 * - No slot free: {@link SharedBudgetOptions.onWait} (close own idle connections), a NOTIFY that tells the
 *   other processes (they close idle connections of theirs, and give freed slots back to the server with a
 *   NOTIFY that wakes the waiting processes), then tries again on such a wake-up or after a backoff (a killed
 *   process's slots free themselves without notifying anyone), UNAVAILABLE after `timeoutMs`.
 * - The control connection lost (its locks are gone): a new one takes the slots again for the connections
 *   still open; those it cannot are reported as {@link SharedBudget.shortfall}, whose connections must close.
 * @internal
 */
export class SharedBudget {
  readonly max: number;
  /** The server, without a password. */
  readonly label: string;
  readonly #options: SharedBudgetOptions;
  /** Slot numbers locked by the current control session (held by a connection, or being given back). */
  readonly #locked = new Set<number>();
  readonly #held = new Set<Held>();
  readonly #heldBy = new WeakMap<BudgetSlot, Held>();
  readonly #waiters: Waiter[] = [];
  #session: Promise<pg.Client> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #pumping = false;
  /** The last try found no slot free for every waiter (see wanting). */
  #short = false;
  #restoring = false;
  /** Other processes known to wait for a slot (their control session's pid), until when (see OTHERS_WAITING_MS). */
  readonly #othersWaiting = new Map<number, number>();
  /** When this process last said it waits (see SAY_EVERY_MS). */
  #saidAt = 0;
  /** Ends the waiting pump's pause early: another process gave a slot back. */
  #wake: (() => void) | undefined;
  readonly #channel: string;
  #closingCount = 0;
  #closed = false;

  constructor(options: SharedBudgetOptions) {
    this.max = options.max;
    this.label = options.label;
    this.#options = options;
    this.#channel = `tenantdb_budget_${options.namespace}`;
  }

  /** Slots this process holds (one per connection open or opening on the server). */
  get held(): number {
    return this.#held.size;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Callers waiting for a slot since the server said none was free: those the owner's idle connections
   * should close for (a caller whose first try is still on its way wants nothing closed yet).
   */
  get wanting(): number {
    return this.#short ? this.#waiters.length : 0;
  }

  /** Slots whose connection is closing (they come back without further action). */
  get closing(): number {
    return this.#closingCount;
  }

  /** Connections still to close because their slot was lost with a control connection and not taken again. */
  get shortfall(): number {
    let unbacked = 0;
    for (const held of this.#held) if (held.number === undefined && !held.closing) unbacked++;
    return unbacked - this.#closingBacked();
  }

  #closingBacked(): number {
    let n = 0;
    for (const held of this.#held) if (held.closing && held.number !== undefined) n++;
    return n;
  }

  /** A slot: at once when one is free, else in FIFO order; UNAVAILABLE after `timeoutMs`, CLOSED once closed. */
  acquire(options: { signal?: AbortSignal } = {}): Promise<BudgetSlot> {
    const { signal } = options;
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<BudgetSlot>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: undefined,
        timer: setTimeout(() => {
          this.#leave(
            waiter,
            new TenantDbError(
              'UNAVAILABLE',
              `shared connection budget exhausted: all ${this.max} connections to ${this.#options.label} shared by every process stayed in use for ${this.#options.timeoutMs} ms`,
            ),
          );
        }, this.#options.timeoutMs),
      };
      if (signal) {
        waiter.onAbort = () => this.#leave(waiter, signal.reason);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      void this.#pump();
    });
  }

  /** Fails every waiter and later acquires with CLOSED; slots out stay held until {@link SharedBudget.close}. */
  stop(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) this.#leave(waiter, closedError());
  }

  /** {@link SharedBudget.stop}, then ends the control connection: every slot it held frees itself. */
  async close(): Promise<void> {
    this.stop();
    const session = this.#session;
    this.#session = undefined;
    if (session) await session.then((client) => client.end()).catch(() => {});
  }

  #leave(waiter: Waiter, err: unknown): void {
    const i = this.#waiters.indexOf(waiter);
    if (i === -1) return;
    this.#waiters.splice(i, 1);
    this.#settle(waiter);
    waiter.reject(err);
  }

  #settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }

  /** Slot `number` to the first waiter; false when none waits. */
  #handTo(number: number): boolean {
    const waiter = this.#waiters.shift();
    if (!waiter) return false;
    this.#settle(waiter);
    waiter.resolve(this.#newSlot(number));
    return true;
  }

  /** While callers wait: take slots for all of them at once; none free → onWait, a pause, again. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    let pauseMs = BACKOFF.first / 2;
    try {
      while (this.#waiters.length > 0 && !this.#closed) {
        let numbers: number[];
        try {
          numbers = await this.#take(this.#waiters.length);
        } catch (err) {
          const failure = err instanceof TenantDbError ? err : new TenantDbError('UNAVAILABLE', `the shared connection budget on ${this.#options.label} cannot be read`, { cause: err });
          for (const waiter of [...this.#waiters]) this.#leave(waiter, failure);
          break;
        }
        for (const number of numbers) {
          if (!this.#give(number, true)) this.#unlock(number);
        }
        if (this.#waiters.length === 0) break;
        if (numbers.length > 0) {
          pauseMs = BACKOFF.first / 2;
          continue;
        }
        this.#short = true;
        this.#options.onWait();
        this.#sayWaiting(this.#waiters.length);
        pauseMs = nextBackoff(pauseMs, Math.random());
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, pauseMs).unref();
        });
        this.#wake = undefined;
      }
    } finally {
      this.#pumping = false;
      this.#short = false;
    }
  }

  /**
   * A slot number of the current session: to a connection whose slot was lost first, else to a waiter of
   * this process; but a freed one (not `taken` just now) while other processes wait and this one holds its
   * fair share already: false, unlock it for them.
   */
  #give(number: number, taken: boolean): boolean {
    for (const held of this.#held) {
      if (held.number === undefined && !held.released) {
        held.number = number;
        return true;
      }
    }
    if (!taken && this.#surplus() >= 0 && this.#othersWaiting.size > 0) return false;
    return this.#handTo(number);
  }

  /** Slots held beyond this process's fair share while others wait (negative: below it). */
  #surplus(): number {
    const now = Date.now();
    for (const [pid, until] of this.#othersWaiting) if (until <= now) this.#othersWaiting.delete(pid);
    return this.#held.size - fairShare(this.max, this.#othersWaiting.size);
  }

  /** Tells the other processes (NOTIFY on the control connection) that this one waits for `count` slots. */
  #sayWaiting(count: number): void {
    if (Date.now() - this.#saidAt < SAY_EVERY_MS) return;
    this.#saidAt = Date.now();
    this.#send(SAY_WAITING, [this.#channel, `wait:${count}`]);
  }

  /**
   * What another process said: it gave a slot back (a waiting pump tries at once), or it waits (close idle
   * connections for it, and give freed slots back to the server for a while).
   */
  #heard(notification: pg.Notification, client: pg.Client): void {
    if (notification.processId === (client as unknown as { processID?: number }).processID) return;
    if (notification.payload === 'free') {
      this.#wake?.();
      return;
    }
    const count = Number(notification.payload?.replace(/^wait:/, ''));
    this.#othersWaiting.set(notification.processId, Date.now() + OTHERS_WAITING_MS);
    // Only what this process holds beyond its share goes: the others' waiting must not empty its cache.
    const surplus = this.#surplus();
    if (surplus > 0) this.#options.onOthersWaiting(Math.min(Number.isInteger(count) && count > 0 ? count : 1, surplus));
  }

  /** Locks up to `count` free slots on the control connection (opened if need be); their numbers. */
  #take(count: number): Promise<number[]> {
    return this.#serial(async () => {
      const client = await this.#client();
      const candidates = slotCandidates(this.max, this.#locked, Math.floor(Math.random() * this.max));
      if (candidates.length === 0) return [];
      const { rows } = await client
        .query<{ s: number }>(TAKE, [this.#options.namespace, candidates, count])
        .catch((err: unknown) => this.#discard(client, err));
      const numbers = rows.map((row) => row.s);
      for (const n of numbers) this.#locked.add(n);
      return numbers;
    });
  }

  /** Gives a slot number back to the server (waking the processes that wait, if any), in the background. */
  #unlock(number: number): void {
    const { namespace } = this.#options;
    const others = this.#othersWaiting.size > 0;
    this.#send(others ? GIVE_BACK_AND_SAY : GIVE_BACK, others ? [namespace, number, this.#channel] : [namespace, number], () =>
      this.#locked.delete(number),
    );
  }

  /**
   * One statement on the current control session once every statement queued before it has settled, fire
   * and forget (a failure ends the session: see #discard); skipped when that session is lost meanwhile, as
   * the server then already released its locks.
   */
  #send(sql: string, params: unknown[], then?: () => void): void {
    const session = this.#session;
    if (!session || this.#closed) return;
    void this.#serial(async () => {
      if (this.#session !== session) return;
      const client = await session;
      await client.query(sql, params).catch((err: unknown) => this.#discard(client, err));
      then?.();
    }).catch(() => {});
  }

  /**
   * The slot of a connection that closed, for the next connection of this process (its caller already waits
   * for a slot of the local budget): the same lock, no unlock, no round trip. `slot` is released by it.
   */
  renew(slot: BudgetSlot): BudgetSlot {
    const held = this.#heldBy.get(slot);
    if (!held || held.released) throw new Error('renew: not a held slot of this budget');
    this.#drop(held);
    return this.#newSlot(held.number);
  }

  #drop(held: Held): void {
    held.released = true;
    this.#held.delete(held);
    if (held.closing) this.#closingCount--;
  }

  #newSlot(number: number | undefined): BudgetSlot {
    const held: Held = { number, released: false, closing: false };
    this.#held.add(held);
    const slot: BudgetSlot = {
      release: () => {
        if (held.released) return;
        this.#drop(held);
        if (held.number !== undefined && !this.#give(held.number, false)) this.#unlock(held.number);
      },
      markClosing: () => {
        if (held.released || held.closing) return;
        held.closing = true;
        this.#closingCount++;
      },
      get released() {
        return held.released;
      },
    };
    this.#heldBy.set(slot, held);
    return slot;
  }

  /** Runs `statement` once every statement queued before it on the control connection has settled. */
  #serial<T>(statement: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(statement, statement);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** The control connection, opened on first use and again after it was lost. */
  #client(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#session) return this.#session;
    const opening = this.#open();
    this.#session = opening;
    opening.then(
      (client) => {
        const lost = (err?: Error): void => this.#lost(opening, err);
        client.on('error', lost);
        client.once('end', () => lost());
        client.on('notification', (notification) => this.#heard(notification, client));
        // A process that closed while it opened must not keep it.
        if (this.#closed) void client.end().catch(() => {});
      },
      () => {
        if (this.#session === opening) this.#session = undefined;
      },
    );
    return opening;
  }

  /** A control connection that listens for other processes saying they wait. */
  async #open(): Promise<pg.Client> {
    const client = await this.#options.connect();
    try {
      // The channel is made of digits only: safe as an identifier.
      await client.query(`LISTEN ${this.#channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  /** A control connection whose state is in doubt is ended (its locks go with it): {@link #lost} follows. */
  #discard(client: pg.Client, err: unknown): never {
    void client.end().catch(() => {});
    throw err;
  }

  /**
   * The control connection is gone, and with it every lock it held: no slot number is ours any more. A new
   * connection takes as many as this process has connections open; the rest is the shortfall.
   */
  #lost(session: Promise<pg.Client>, err: Error | undefined): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    this.#locked.clear();
    for (const held of this.#held) held.number = undefined;
    if (this.#closed) return;
    this.#options.logger.warn({ err: err?.message, server: this.#options.label }, 'the shared budget\'s control connection was lost; its slots are taken again');
    void this.#restore();
  }

  /** Takes slots again for the connections whose slot was lost; what cannot be taken is the shortfall. */
  async #restore(): Promise<void> {
    if (this.#restoring) return;
    this.#restoring = true;
    try {
      // Lost again while taking: once more on the next connection; a server that cannot be reached leaves the rest short.
      for (let attempt = 0; attempt < 2 && !this.#closed; attempt++) {
        const wanted = [...this.#held].filter((held) => held.number === undefined).length;
        if (wanted === 0) return;
        try {
          for (const number of await this.#take(wanted)) if (!this.#give(number, true)) this.#unlock(number);
        } catch (err) {
          this.#options.logger.warn({ err: (err as Error).message, server: this.#options.label }, 'the shared budget\'s slots could not be taken again');
          break;
        }
        if (this.#session !== undefined) break;
      }
    } finally {
      this.#restoring = false;
    }
    if (!this.#closed && this.shortfall > 0) this.#options.onShortfall();
  }
}

/**
 * Slots of both budgets: this process's first, then the shared one (given up if that fails); given back
 * together once the connection's socket has closed. When callers wait for a local slot (and none for a
 * shared one), the shared slot passes to the next of them with the local one, instead of an unlock and a
 * take (two round trips, and a chance for another process to take it in between); one not taken over by the
 * next turn of the event loop is given back. `onSharedWaited` is told how long each shared slot took (a round
 * trip at least) and whether it came.
 * @internal
 */
export function inBoth(local: ConnectionBudget, shared: SharedBudget, onSharedWaited?: WaitObserver): SlotSource {
  const spares: BudgetSlot[] = [];
  let sweeping = false;
  const sweep = (): void => {
    if (sweeping) return;
    sweeping = true;
    setImmediate(() => {
      sweeping = false;
      for (const spare of spares.splice(0)) spare.release();
    });
  };
  const both = (localSlot: BudgetSlot, sharedSlot: BudgetSlot): BudgetSlot => ({
    release() {
      if (!localSlot.released && !sharedSlot.released && local.waiting > 0 && shared.waiting === 0) {
        spares.push(shared.renew(sharedSlot));
        sweep();
      } else {
        sharedSlot.release();
      }
      localSlot.release();
    },
    markClosing() {
      sharedSlot.markClosing();
      localSlot.markClosing();
    },
    get released() {
      return localSlot.released;
    },
  });
  return {
    async acquire(options) {
      const slot = await local.acquire(options);
      const spare = spares.pop();
      if (spare) return both(slot, spare);
      const started = onSharedWaited ? performance.now() : 0;
      try {
        const sharedSlot = await shared.acquire(options);
        observeWait(onSharedWaited, started, undefined, false);
        return both(slot, sharedSlot);
      } catch (err) {
        observeWait(onSharedWaited, started, err, true);
        slot.release();
        throw err;
      }
    },
  };
}

function closedError(): TenantDbError {
  return new TenantDbError('CLOSED', 'the tenant pool manager was closed');
}
