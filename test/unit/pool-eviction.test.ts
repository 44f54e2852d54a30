import { describe, expect, it } from 'vitest';
import { chooseEvictions } from '../../src/pools/eviction.js';

const pool = (name: string, idle: number, frequency: number, lastUsed: number) => ({ name, idle, frequency, lastUsed });

describe('chooseEvictions', () => {
  it('closes the idle connections of the least often used database first, whatever their recency', () => {
    const hot = pool('hot', 1, 15, 100);
    const cold = pool('cold', 1, 1, 900);
    expect(chooseEvictions([hot, cold], 1).map(([c, n]) => [c.name, n])).toEqual([['cold', 1]]);
  });

  it('breaks ties by recency, least recently used first', () => {
    const older = pool('older', 1, 3, 100);
    const newer = pool('newer', 1, 3, 200);
    expect(chooseEvictions([newer, older], 1).map(([c]) => c.name)).toEqual(['older']);
  });

  it('takes several connections of one pool, and moves on to the next for what is still needed', () => {
    const a = pool('a', 2, 1, 0);
    const b = pool('b', 3, 2, 0);
    const c = pool('c', 5, 9, 0);
    expect(chooseEvictions([c, b, a], 4).map(([p, n]) => [p.name, n])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
  });

  it('skips pools with nothing idle and frees at most what is needed, possibly less', () => {
    const busy = pool('busy', 0, 0, 0);
    const one = pool('one', 1, 5, 0);
    expect(chooseEvictions([busy, one], 3).map(([p, n]) => [p.name, n])).toEqual([['one', 1]]);
    expect(chooseEvictions([one], 0)).toEqual([]);
  });
});
