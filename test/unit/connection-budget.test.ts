import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { ConnectionBudget, type BudgetSlot } from '../../src/pools/connection-budget.js';

/** Lets every settled promise run its callbacks. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectionBudget', () => {
  it('hands out slots up to max without waiting', async () => {
    const budget = new ConnectionBudget(3);
    const slots = await Promise.all([budget.acquire(), budget.acquire(), budget.acquire()]);
    expect(slots).toHaveLength(3);
    expect(budget.inUse).toBe(3);
    expect(budget.waiting).toBe(0);
  });

  it('serves waiters in FIFO order as slots come back', async () => {
    const budget = new ConnectionBudget(1);
    const first = await budget.acquire();
    const order: string[] = [];
    const held: Record<string, BudgetSlot> = {};
    const waiters = ['a', 'b', 'c'].map((name) =>
      budget.acquire().then((slot) => {
        order.push(name);
        held[name] = slot;
      }),
    );
    await flush();
    expect(budget.waiting).toBe(3);
    expect(order).toEqual([]);

    first.release();
    await flush();
    expect(order).toEqual(['a']);
    held.a!.release();
    await flush();
    expect(order).toEqual(['a', 'b']);
    held.b!.release();
    await Promise.all(waiters);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(budget.inUse).toBe(1);
  });

  it('never lets a newcomer overtake a waiter', async () => {
    const budget = new ConnectionBudget(1);
    const first = await budget.acquire();
    const order: string[] = [];
    const waiting = budget.acquire().then((slot) => {
      order.push('waiter');
      return slot;
    });
    first.release();
    // Acquired in the same tick as the release: the slot already belongs to the waiter.
    const newcomer = budget.acquire().then((slot) => {
      order.push('newcomer');
      return slot;
    });
    (await waiting).release();
    await newcomer;
    expect(order).toEqual(['waiter', 'newcomer']);
  });

  it('gives a slot back exactly once however often release is called', async () => {
    const budget = new ConnectionBudget(2);
    const a = await budget.acquire();
    await budget.acquire();
    a.release();
    a.release();
    a.release();
    expect(a.released).toBe(true);
    expect(budget.inUse).toBe(1);

    const c = await budget.acquire();
    expect(budget.inUse).toBe(2);
    // A stale double release of `a` must not free the slot that `c` now holds.
    a.release();
    expect(budget.inUse).toBe(2);
    c.release();
    expect(budget.inUse).toBe(1);
  });

  it('rejects a waiter with UNAVAILABLE after the timeout and keeps the others queued', async () => {
    vi.useFakeTimers();
    const budget = new ConnectionBudget(1, { timeoutMs: 1_000 });
    const holder = await budget.acquire();
    const short = budget.acquire({ timeoutMs: 100 });
    const long = budget.acquire();
    const shortResult = short.catch((err: unknown) => err);

    await vi.advanceTimersByTimeAsync(100);
    const err = await shortResult;
    expect(isTenantDbError(err, 'UNAVAILABLE')).toBe(true);
    expect(budget.waiting).toBe(1);
    expect(budget.inUse).toBe(1);

    holder.release();
    const slot = await long;
    expect(slot.released).toBe(false);
    expect(budget.inUse).toBe(1);
    expect(budget.waiting).toBe(0);
  });

  it('does not count a timed-out waiter when slots come back', async () => {
    vi.useFakeTimers();
    const budget = new ConnectionBudget(1, { timeoutMs: 50 });
    const holder = await budget.acquire();
    const late = budget.acquire().catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(50);
    expect(isTenantDbError(await late, 'UNAVAILABLE')).toBe(true);
    holder.release();
    expect(budget.inUse).toBe(0);
  });

  it('stops waiting when the signal aborts, without taking a slot', async () => {
    const budget = new ConnectionBudget(1);
    const holder = await budget.acquire();
    const controller = new AbortController();
    const waiting = budget.acquire({ signal: controller.signal }).catch((err: unknown) => err);
    controller.abort(new Error('gave up'));
    expect(((await waiting) as Error).message).toBe('gave up');
    expect(budget.waiting).toBe(0);
    holder.release();
    expect(budget.inUse).toBe(0);
    await expect(budget.acquire({ signal: controller.signal })).rejects.toThrow('gave up');
  });

  it('calls onWait each time a caller has to wait', async () => {
    const onWait = vi.fn();
    const budget = new ConnectionBudget(1, { onWait });
    const holder = await budget.acquire();
    expect(onWait).not.toHaveBeenCalled();
    const a = budget.acquire();
    const b = budget.acquire();
    expect(onWait).toHaveBeenCalledTimes(2);
    holder.release();
    (await a).release();
    (await b).release();
    expect(budget.inUse).toBe(0);
  });

  it('counts closing slots once, until they are released', async () => {
    const budget = new ConnectionBudget(2);
    const a = await budget.acquire();
    const b = await budget.acquire();
    a.markClosing();
    a.markClosing();
    expect(budget.closing).toBe(1);
    b.markClosing();
    expect(budget.closing).toBe(2);
    a.release();
    a.markClosing();
    expect(budget.closing).toBe(1);
    b.release();
    expect(budget.closing).toBe(0);
  });

  it('close() rejects waiters and later acquires with CLOSED, while slots out stay valid', async () => {
    const budget = new ConnectionBudget(1);
    const holder = await budget.acquire();
    const waiting = budget.acquire().catch((err: unknown) => err);
    budget.close();
    budget.close();
    expect(isTenantDbError(await waiting, 'CLOSED')).toBe(true);
    await expect(budget.acquire()).rejects.toSatisfy((err) => isTenantDbError(err, 'CLOSED'));
    expect(budget.inUse).toBe(1);
    const drained = budget.drained();
    holder.release();
    await drained;
    expect(budget.inUse).toBe(0);
  });

  it('rejects a bad max synchronously', () => {
    expect(() => new ConnectionBudget(0)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});
