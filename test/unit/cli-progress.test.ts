import { describe, expect, it } from 'vitest';
import type { FleetProgressEvent } from '../../src/index.js';
import { TenantDbError } from '../../src/index.js';
import { createFleetProgress, moveProgressLine, waveLine } from '../../src/cli/progress.js';

function stream(isTTY: boolean): { write(text: string): void; isTTY: boolean; text: string } {
  return {
    isTTY,
    text: '',
    write(text: string) {
      this.text += text;
    },
  };
}

const events: FleetProgressEvent[] = [
  { type: 'start', tenantId: 'a', databaseName: 'tenant_a_1', done: 0, total: 3 },
  { type: 'success', tenantId: 'a', databaseName: 'tenant_a_1', done: 1, total: 3, applied: ['0002_x'] },
  { type: 'skip', tenantId: 'b', databaseName: 'tenant_b_2', done: 2, total: 3 },
  {
    type: 'failure',
    tenantId: 'c',
    databaseName: 'tenant_c_3',
    done: 3,
    total: 3,
    error: new TenantDbError('MIGRATION_FAILED', 'migration 0002_x failed (up)', { cause: new Error('syntax error at "x"') }),
  },
];

describe('fleet migration progress', () => {
  it('prints one plain line per tenant finished when stderr is not a terminal', () => {
    const out = stream(false);
    const progress = createFleetProgress(out, 'tenants');
    for (const e of events) progress.onProgress(e);
    progress.finish();
    expect(out.text.split('\n').filter(Boolean)).toEqual([
      '[1/3] ok tenant_a_1 (applied 0002_x)',
      '[2/3] skipped tenant_b_2 (not ready)',
      '[3/3] FAILED tenant_c_3: MIGRATION_FAILED migration 0002_x failed (up): syntax error at "x"',
    ]);
  });

  it('redraws one bar in place on a terminal, with the failures counted', () => {
    const out = stream(true);
    const progress = createFleetProgress(out, 'tenants');
    for (const e of events) progress.onProgress(e);
    progress.finish();
    const frames = out.text.split('\r\x1b[2K').filter(Boolean);
    expect(frames[0]).toBe(`tenants [${'-'.repeat(24)}] 0/3`);
    expect(frames.at(-1)).toBe(`tenants [${'#'.repeat(24)}] 3/3, 1 failed\n`);
    expect(out.text.match(/\n/g)).toHaveLength(1);
  });

  it('a line per wave started and ended, the halt named; on a terminal above the bar, which is drawn again', () => {
    expect(waveLine({ type: 'wave-start', wave: 1, waves: 3, tenants: 1 })).toBe('wave 1/3: 1 tenant');
    expect(waveLine({ type: 'wave-end', wave: 2, waves: 3, tenants: 4, succeeded: 3, failed: 1, skipped: 0, haltedBy: 'maxFailures' })).toBe(
      'wave 2/3 done: 3 succeeded, 1 failed, 0 skipped; halted (maxFailures): no later wave starts',
    );
    const pipe = stream(false);
    const plain = createFleetProgress(pipe, 'tenants');
    plain.onWave({ type: 'wave-start', wave: 1, waves: 2, tenants: 3 });
    plain.onProgress(events[1]!);
    expect(pipe.text).toBe('wave 1/2: 3 tenants\n[1/3] ok tenant_a_1 (applied 0002_x)\n');

    const tty = stream(true);
    const bar = createFleetProgress(tty, 'tenants');
    bar.onWave({ type: 'wave-start', wave: 1, waves: 2, tenants: 3 });
    bar.onProgress(events[1]!);
    bar.onWave({ type: 'wave-end', wave: 1, waves: 2, tenants: 3, succeeded: 3, failed: 0, skipped: 0 });
    expect(tty.text).toBe(
      `wave 1/2: 3 tenants\n\r\x1b[2Ktenants [${'#'.repeat(8)}${'-'.repeat(16)}] 1/3` +
        `\r\x1b[2Kwave 1/2 done: 3 succeeded, 0 failed, 0 skipped\n\r\x1b[2Ktenants [${'#'.repeat(8)}${'-'.repeat(16)}] 1/3`,
    );
  });

  it('scrubs secrets out of error messages', () => {
    const out = stream(false);
    const progress = createFleetProgress(out, 'tenants', (t) => t.replace('s3cret', '***'));
    progress.onProgress({ ...events[3]!, error: new Error('login with s3cret refused') });
    expect(out.text).not.toContain('s3cret');
  });
});

describe('move progress', () => {
  it('one line per step, with the method, the tables synced and the rows copied', () => {
    expect(moveProgressLine({ phase: 'preparing', tenantId: 't' })).toBe('move: preparing');
    expect(moveProgressLine({ phase: 'syncing', tenantId: 't', method: 'logical', tablesDone: 3, tables: 5 })).toBe('move: syncing 3/5 tables (logical)');
    expect(moveProgressLine({ phase: 'copying', tenantId: 't', method: 'copy', table: 'public.orders', rows: 1200 })).toBe(
      'move: copied public.orders (1200 rows)',
    );
    expect(moveProgressLine({ phase: 'switched', tenantId: 't', method: 'copy' })).toBe('move: switched (copy)');
  });
});
