import { describe, expect, it } from 'vitest';
import { FrequencySketch, type SketchHash } from '../../src/pools/frequency-sketch.js';

/** A sketch sized for 100, after 500 keys were used interleaved, key i about `rounds / (i + 1)` times. */
function zipfWorkload(rounds: number): { sketch: FrequencySketch; keys: SketchHash[] } {
  const sketch = new FrequencySketch(100);
  const keys = Array.from({ length: 500 }, (_, i) => FrequencySketch.hash(`tenant_${i}`));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys.length; i++) if (round % (i + 1) === 0) sketch.increment(keys[i]!);
  }
  return { sketch, keys };
}

describe('FrequencySketch', () => {
  it('counts uses per key, past what 4-bit counters hold, and never mixes up two keys used alone', () => {
    const sketch = new FrequencySketch(100);
    const a = FrequencySketch.hash('tenant_a');
    const b = FrequencySketch.hash('tenant_b');
    expect(sketch.frequency(a)).toBe(0);
    for (let i = 0; i < 3; i++) sketch.increment(a);
    sketch.increment(b);
    expect(sketch.frequency(a)).toBe(3);
    expect(sketch.frequency(b)).toBe(1);
    for (let i = 0; i < 40; i++) sketch.increment(a);
    expect(sketch.frequency(a)).toBe(43);
  });

  it('hashes a key the same way every time, and different keys differently', () => {
    expect(FrequencySketch.hash('x')).toEqual(FrequencySketch.hash('x'));
    const hashes = new Set(Array.from({ length: 1000 }, (_, i) => FrequencySketch.hash(`tenant_${i}`).h1));
    expect(hashes.size).toBe(1000);
  });

  it('ranks a Zipf workload: the hottest keys have the highest estimates', () => {
    const { sketch, keys } = zipfWorkload(1000);
    const hot = keys.slice(0, 5).map((k) => sketch.frequency(k));
    const cold = keys.slice(400).map((k) => sketch.frequency(k));
    expect(Math.min(...hot)).toBeGreaterThan(Math.max(...cold));
  });

  it('tells apart the keys around the edge of a budget of 100 (the 100th hottest of 500 from the 200th)', () => {
    // The 100th hottest key is used about 200 times, the 200th about 100.
    const { sketch, keys } = zipfWorkload(20_000);
    const edge = keys.slice(90, 100).map((k) => sketch.frequency(k));
    const beyond = keys.slice(190, 200).map((k) => sketch.frequency(k));
    expect(Math.min(...edge)).toBeGreaterThan(Math.max(...beyond));
  });

  it('fades old popularity: after enough other uses, a once-hot key counts less than a newly hot one', () => {
    const sketch = new FrequencySketch(4); // 64 slots per row, halving every 640 counted uses
    const old = FrequencySketch.hash('old');
    const fresh = FrequencySketch.hash('fresh');
    for (let i = 0; i < 15; i++) sketch.increment(old);
    for (let i = 0; i < 2000; i++) sketch.increment(FrequencySketch.hash(`noise_${i % 50}`));
    for (let i = 0; i < 10; i++) sketch.increment(fresh);
    expect(sketch.frequency(old)).toBeLessThan(sketch.frequency(fresh));
  });
});
