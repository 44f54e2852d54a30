import { afterEach, describe, expect, it, vi } from 'vitest';
import { PartBufferPool } from '../../src/storage/multipart-upload.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('PartBufferPool', () => {
  it('hands out part-sized buffers and reuses the ones given back, newest first', () => {
    const pool = new PartBufferPool(1024, 3);
    const a = pool.take();
    const b = pool.take();
    expect([a.length, b.length]).toEqual([1024, 1024]);
    expect(a).not.toBe(b);
    pool.give(a);
    pool.give(b);
    expect(pool.take()).toBe(b);
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(a);
    pool.clear();
  });

  it('keeps at most `keep` free buffers', () => {
    const pool = new PartBufferPool(16, 2);
    const taken = [pool.take(), pool.take(), pool.take()];
    for (const buffer of taken) pool.give(buffer);
    const again = [pool.take(), pool.take(), pool.take()];
    expect(again.filter((buffer) => taken.includes(buffer))).toHaveLength(2);
    pool.clear();
  });

  it('drops its buffers once unused for idleMs, and on clear()', () => {
    vi.useFakeTimers();
    const pool = new PartBufferPool(16, 2, 1000);
    const a = pool.take();
    pool.give(a);
    vi.advanceTimersByTime(900);
    // Taking (or giving) counts as use: the wait starts again.
    const same = pool.take();
    expect(same).toBe(a);
    pool.give(same);
    vi.advanceTimersByTime(900);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(200);
    expect(vi.getTimerCount()).toBe(0);
    expect(pool.take()).not.toBe(a);

    const b = pool.take();
    pool.give(b);
    pool.clear();
    expect(vi.getTimerCount()).toBe(0);
    expect(pool.take()).not.toBe(b);
  });
});
