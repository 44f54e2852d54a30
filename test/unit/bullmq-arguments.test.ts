import { describe, expect, it } from 'vitest';
import { tenantQueue, tenantWorker } from '../../src/integrations/bullmq.js';
import { createPlatform } from '../../src/index.js';
import { thrownCode } from '../support/errors.js';

// Arguments only: nothing here opens a connection (createPlatform opens nothing until first use).
const platform = createPlatform({ mainUrl: 'postgres://postgres@127.0.0.1:1/none', s3: { bucket: 'none' } });
const queueShape = { add: async () => ({}), addBulk: async () => [] };
const processor = async (): Promise<void> => {};
const connection = { host: '127.0.0.1', port: 6379 };

describe('the bullmq integration refuses bad arguments with VALIDATION, at once', () => {
  it('tenantQueue: a platform and a queue', () => {
    for (const bad of [undefined, null, {}, { withTenant: () => {} }, { captureTenant: () => ({}) }]) {
      expect(thrownCode(() => tenantQueue(bad as never, queueShape as never))).toBe('VALIDATION');
    }
    for (const bad of [undefined, null, 'emails', {}, { add: () => {} }]) {
      expect(thrownCode(() => tenantQueue(platform, bad as never))).toBe('VALIDATION');
    }
  });

  it('tenantWorker: a platform, a queue name, a processor function and options', () => {
    expect(thrownCode(() => tenantWorker({} as never, 'q', processor, { connection }))).toBe('VALIDATION');
    for (const bad of [undefined, '', 42]) expect(thrownCode(() => tenantWorker(platform, bad as never, processor, { connection }))).toBe('VALIDATION');
    for (const bad of [undefined, null, './processor.js', new URL('file:///processor.js')]) {
      expect(thrownCode(() => tenantWorker(platform, 'q', bad as never, { connection }))).toBe('VALIDATION');
    }
    for (const bad of [undefined, null, 'redis://127.0.0.1']) expect(thrownCode(() => tenantWorker(platform, 'q', processor, bad as never))).toBe('VALIDATION');
  });

  it('add and addBulk: a job outside any scope without { global: true }, bad options', async () => {
    const queue = tenantQueue(platform, queueShape as never);
    const codes = await Promise.all(
      [
        queue.add('x', {}),
        queue.add('x', {}, { global: false }),
        queue.add('x', {}, { global: 'yes' as never }),
        queue.add('x', {}, 'opts' as never),
        queue.addBulk([{ name: 'x', data: {} }]),
        queue.addBulk([null as never]),
        queue.addBulk('jobs' as never),
      ].map((p) => p.then(() => 'resolved', (err: { code?: string }) => err.code)),
    );
    expect(codes).toEqual(Array(7).fill('VALIDATION'));
  });
});
