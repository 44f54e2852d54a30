import { TenantDbError } from '../errors.js';

/**
 * One unit of the connection budget, held from just before a connection opens until its socket has
 * closed. {@link BudgetSlot.release} is idempotent: a slot goes back exactly once however many
 * code paths (connect failure, socket close, forced destroy) try to give it back.
 */
export interface BudgetSlot {
  /** Gives the slot back (to the first waiter, if any). Only the first call has an effect. */
  release(): void;
  /** Notes that the connection holding this slot is closing, so reclaiming does not close one more for the same waiter. */
  markClosing(): void;
  /** True once released. */
  readonly released: boolean;
}

/** Where a connection takes its slot (or slots) before it opens: a {@link ConnectionBudget}, or more than one. */
export interface SlotSource {
  /** A slot; rejects with UNAVAILABLE when none frees up in time, CLOSED once closed, the signal's reason on abort. */
  acquire(options?: { signal?: AbortSignal }): Promise<BudgetSlot>;
}

/** Options of {@link ConnectionBudget}. */
export interface ConnectionBudgetOptions {
  /** How long {@link ConnectionBudget.acquire} waits for a slot before UNAVAILABLE. Default: 30 000 ms. */
  timeoutMs?: number;
  /**
   * Called (synchronously) each time a caller starts waiting, so the owner can free idle connections
   * elsewhere. Default: none.
   */
  onWait?: () => void;
  /** Called once a caller that had to wait got its slot or gave up (`failed`), with the wait's length in ms. Default: none. */
  onWaited?: WaitObserver;
}

/** Told how long a wait for a slot took, in ms, and whether it ended without one (`failed`, `err` why). @internal */
export type WaitObserver = (ms: number, err: unknown, failed: boolean) => void;

/** Tells `onWaited` how long a wait that began at `started` (`performance.now()`) took; its failure is not the caller's. @internal */
export function observeWait(onWaited: WaitObserver | undefined, started: number, err: unknown, failed: boolean): void {
  if (!onWaited) return;
  try {
    onWaited(performance.now() - started, err, failed);
  } catch {
    // An observer's failure is not the caller's.
  }
}

interface Waiter {
  resolve(slot: BudgetSlot): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A counting semaphore over open connections: at most `max` slots are out at any instant, and
 * callers that find none free wait in FIFO order, each for at most `timeoutMs`.
 *
 * A freed slot passes straight to the first waiter, so a newcomer can never overtake the queue.
 *
 * @example
 * ```ts
 * const budget = new ConnectionBudget(6, { timeoutMs: 5_000 });
 * const slot = await budget.acquire();   // UNAVAILABLE after 5 s if none frees up
 * try { await openConnection(); } finally { slot.release(); }
 * ```
 */
export class ConnectionBudget implements SlotSource {
  /** The ceiling. */
  readonly max: number;
  readonly #timeoutMs: number;
  readonly #onWait: (() => void) | undefined;
  readonly #onWaited: WaitObserver | undefined;
  readonly #waiters: Waiter[] = [];
  #inUse = 0;
  #closingCount = 0;
  #closed = false;
  #drained: Array<() => void> = [];

  constructor(max: number, options: ConnectionBudgetOptions = {}) {
    if (!Number.isInteger(max) || max <= 0) throw new TenantDbError('VALIDATION', 'budget max must be a positive integer');
    this.max = max;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#onWait = options.onWait;
    this.#onWaited = options.onWaited;
  }

  /** Slots currently out (connections open or opening). */
  get inUse(): number {
    return this.#inUse;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Slots whose connection is already closing (they will come back without further action). */
  get closing(): number {
    return this.#closingCount;
  }

  /** True after {@link ConnectionBudget.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Takes a slot, waiting in FIFO order when none is free.
   * Rejects with UNAVAILABLE after `timeoutMs` (default: the constructor's), CLOSED once closed,
   * and with the signal's reason when `signal` aborts while waiting.
   */
  acquire(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<BudgetSlot> {
    const { timeoutMs = this.#timeoutMs, signal } = options;
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#inUse < this.max && this.#waiters.length === 0) {
      this.#inUse++;
      return Promise.resolve(this.#newSlot());
    }
    const onWaited = this.#onWaited;
    const started = onWaited ? performance.now() : 0;
    const waited = (err: unknown, failed: boolean): void => observeWait(onWaited, started, err, failed);
    const waiting = new Promise<BudgetSlot>((resolve, reject) => {
      const leave = (err: unknown): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i === -1) return;
        this.#waiters.splice(i, 1);
        clearTimeout(waiter.timer);
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = (): void => leave(signal?.reason);
      const waiter: Waiter = {
        resolve: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
        timer: setTimeout(() => {
          leave(
            new TenantDbError(
              'UNAVAILABLE',
              `connection budget exhausted: all ${this.max} connections to tenant databases stayed in use for ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#onWait?.();
    });
    if (!onWaited) return waiting;
    waiting.then(
      () => waited(undefined, false),
      (err: unknown) => waited(err, true),
    );
    return waiting;
  }

  /** Rejects every waiter and every later {@link ConnectionBudget.acquire} with CLOSED. Slots out stay valid. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(closedError());
    }
  }

  /** Resolves once no slot is out. */
  drained(): Promise<void> {
    if (this.#inUse === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #newSlot(): BudgetSlot {
    let released = false;
    let closing = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (closing) this.#closingCount--;
        this.#handOver();
      },
      markClosing: () => {
        if (released || closing) return;
        closing = true;
        this.#closingCount++;
      },
      get released() {
        return released;
      },
    };
  }

  /** A slot came back: the first waiter gets it, else it is free. */
  #handOver(): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(this.#newSlot());
      return;
    }
    this.#inUse--;
    if (this.#inUse === 0) for (const resolve of this.#drained.splice(0)) resolve();
  }
}

function closedError(): TenantDbError {
  return new TenantDbError('CLOSED', 'the tenant pool manager was closed');
}
