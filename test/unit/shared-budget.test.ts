import { describe, expect, it } from 'vitest';
import { fairShare, nextBackoff, sharedBudgetNamespace, slotCandidates } from '../../src/pools/shared-budget.js';

describe('shared budget: slot numbers', () => {
  it('offers every slot the session does not hold, from the start given, wrapping around', () => {
    expect(slotCandidates(5, new Set(), 3)).toEqual([3, 4, 0, 1, 2]);
    expect(slotCandidates(5, new Set([0, 4]), 3)).toEqual([3, 1, 2]);
    expect(slotCandidates(3, new Set([0, 1, 2]), 1)).toEqual([]);
  });

  it('names a namespace per main database and server: stable, 31 bits, distinct', () => {
    const a = sharedBudgetNamespace('saas_platform', 'default');
    expect(sharedBudgetNamespace('saas_platform', 'default')).toBe(a);
    expect(Number.isInteger(a) && a >= 0 && a <= 0x7fffffff).toBe(true);
    const others = [sharedBudgetNamespace('saas_platform', 'eu1'), sharedBudgetNamespace('other_platform', 'default'), sharedBudgetNamespace('saas_platformdefault', '')];
    expect(new Set([a, ...others]).size).toBe(4);
  });
});

describe('shared budget: backoff', () => {
  it('doubles up to 200 ms, with ±50% jitter', () => {
    expect(nextBackoff(5, 0.5)).toBe(10);
    expect(nextBackoff(10, 0.5)).toBe(20);
    expect(nextBackoff(150, 0.5)).toBe(200);
    expect(nextBackoff(200, 0)).toBe(100);
    expect(nextBackoff(200, 0.999)).toBeLessThanOrEqual(300);
  });
});

describe('shared budget: fair share', () => {
  it('is an equal part of the budget among the processes that wait, at least one slot', () => {
    expect(fairShare(30, 0)).toBe(30);
    expect(fairShare(30, 2)).toBe(10);
    expect(fairShare(30, 3)).toBe(7);
    expect(fairShare(3, 9)).toBe(1);
  });
});
