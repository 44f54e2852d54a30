import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FLEET_CONCURRENCY,
  assignWaves,
  haltReason,
  recordedOptions,
  selectTenants,
  validateConcurrency,
  validateStopRules,
  validateWaves,
  type Selected,
} from '../../src/migrations/fleet-plan.js';
import type { FleetRecordedOptions } from '../../src/migrations/types.js';
import type { Tenant } from '../../src/tenants/types.js';
import { thrownCode } from '../support/errors.js';

const SERVERS = ['default', 'eu1'];

/** A registry row as `tenants.list` gives it: ids are lower-case, one created a minute after the other. */
function tenant(n: number, extra: Partial<Tenant> = {}): Tenant {
  const id = `0000000${n}-aaaa-4bbb-8ccc-${String(n).padStart(12, 'd')}`;
  const createdAt = new Date(Date.UTC(2026, 0, 1, 0, n));
  return {
    id,
    name: `Tenant ${n}`,
    databaseName: `tenant_t${n}_0000000${n}`,
    server: 'default',
    isActive: true,
    status: 'ready',
    createdAt,
    updatedAt: createdAt,
    createdBy: null,
    labels: {},
    ...extra,
  };
}

/** What a selection came to: tenant ids, or `?ref` for a reference that names no tenant. */
const picked = (selected: Selected[]): string[] => selected.map((s) => (s.tenant ? s.tenant.id : `?${s.ref}`));

describe('validateWaves', () => {
  it('keeps counts and shares as given', () => {
    expect(validateWaves([5, '10%', '100%'])).toEqual([5, '10%', '100%']);
    expect(validateWaves([1])).toEqual([1]);
    expect(validateWaves(['0.5%', '33.3%'])).toEqual(['0.5%', '33.3%']);
  });

  it('refuses what is not a non-empty array of positive integers and shares in (0, 100]: VALIDATION', () => {
    const bad: unknown[] = [
      undefined,
      null,
      [],
      '10%',
      5,
      [0],
      [-1],
      [1.5],
      [Number.NaN],
      [Number.MAX_SAFE_INTEGER + 1],
      ['0%'],
      ['101%'],
      ['-5%'],
      ['10'],
      ['%'],
      [' 10%'],
      ['1e1%'],
      [null],
      [{}],
      Array.from({ length: 101 }, () => 1),
    ];
    for (const waves of bad) expect(thrownCode(() => validateWaves(waves)), JSON.stringify(waves)).toBe('VALIDATION');
    expect(validateWaves(Array.from({ length: 100 }, () => 1))).toHaveLength(100);
  });
});

describe('assignWaves', () => {
  it('no waves, or a single one: every tenant in wave 1', () => {
    expect(assignWaves(3, undefined)).toEqual([1, 1, 1]);
    expect(assignWaves(3, [1])).toEqual([1, 1, 1]);
    expect(assignWaves(3, ['10%'])).toEqual([1, 1, 1]);
  });

  it('a count takes that many tenants, in order, and the last wave the rest', () => {
    expect(assignWaves(10, [2, 3, 1])).toEqual([1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
    expect(assignWaves(6, [1, 2])).toEqual([1, 2, 2, 2, 2, 2]);
  });

  it("'N%' takes that share of the whole selection, rounded up", () => {
    // 10% of 25 is 2.5: 3; 50% of 25 is 12.5: 13.
    expect(assignWaves(25, ['10%', '50%', '100%'])).toEqual([
      ...Array<number>(3).fill(1),
      ...Array<number>(13).fill(2),
      ...Array<number>(9).fill(3),
    ]);
    // The README's canary: 5, then a tenth, then the rest.
    const waves = assignWaves(100, [5, '10%', '100%']);
    expect(waves.filter((w) => w === 1)).toHaveLength(5);
    expect(waves.filter((w) => w === 2)).toHaveLength(10);
    expect(waves.filter((w) => w === 3)).toHaveLength(85);
    // A tiny share of a small selection is still one tenant.
    expect(assignWaves(6, [1, '1%', '100%'])).toEqual([1, 2, 3, 3, 3, 3]);
    expect(assignWaves(6, [1, '50%', '100%'])).toEqual([1, 2, 2, 2, 3, 3]);
  });

  it('the last wave takes the rest whatever it says', () => {
    expect(assignWaves(7, [2, 1])).toEqual([1, 1, 2, 2, 2, 2, 2]);
    expect(assignWaves(7, [2, '10%'])).toEqual([1, 1, 2, 2, 2, 2, 2]);
  });

  it('more waves than tenants: the waves left empty are dropped, numbers without a gap', () => {
    expect(assignWaves(2, [1, 1, 1, '100%'])).toEqual([1, 2]);
    expect(assignWaves(3, [5, '10%', '100%'])).toEqual([1, 1, 1]);
    expect(assignWaves(1, [1, '50%', '100%'])).toEqual([1]);
  });

  it('an empty selection has no waves', () => {
    expect(assignWaves(0, [1, '50%', '100%'])).toEqual([]);
    expect(assignWaves(0, undefined)).toEqual([]);
  });

  it('waves are non-decreasing and each holds at least one tenant', () => {
    for (let count = 1; count <= 30; count++) {
      for (const spec of [[1, '50%', '100%'], [3, '10%', '25%', '100%'], ['33%', '33%', '34%'], [2, 2, 2, 2]] as const) {
        const waves = assignWaves(count, spec);
        expect(waves).toHaveLength(count);
        expect(waves[0]).toBe(1);
        for (let i = 1; i < count; i++) expect(waves[i]! - waves[i - 1]!).toBeOneOf([0, 1]);
      }
    }
  });
});

describe('stop rules', () => {
  it('validateStopRules keeps only the rules given', () => {
    expect(validateStopRules({})).toEqual({});
    expect(validateStopRules({ maxFailures: 3 })).toEqual({ maxFailures: 3 });
    expect(validateStopRules({ maxFailureRate: 1 })).toEqual({ maxFailureRate: 1 });
    expect(validateStopRules({ maxFailures: 1, maxFailureRate: 0.05, other: true } as never)).toEqual({ maxFailures: 1, maxFailureRate: 0.05 });
  });

  it('validateStopRules refuses a non-positive or fractional count and a rate outside (0, 1]: VALIDATION', () => {
    for (const maxFailures of [0, -1, 1.5, '3', Number.NaN, Number.POSITIVE_INFINITY, null]) {
      expect(thrownCode(() => validateStopRules({ maxFailures } as never)), String(maxFailures)).toBe('VALIDATION');
    }
    for (const maxFailureRate of [0, -0.1, 1.01, '0.5', Number.NaN, null]) {
      expect(thrownCode(() => validateStopRules({ maxFailureRate } as never)), String(maxFailureRate)).toBe('VALIDATION');
    }
  });

  it('haltReason: maxFailures once that many failed; maxFailureRate once the failed share of those finished reaches it', () => {
    expect(haltReason({}, 100, 100)).toBeUndefined();
    expect(haltReason({ maxFailures: 3 }, 2, 10)).toBeUndefined();
    expect(haltReason({ maxFailures: 3 }, 3, 10)).toBe('maxFailures');
    expect(haltReason({ maxFailureRate: 0.5 }, 1, 3)).toBeUndefined();
    expect(haltReason({ maxFailureRate: 0.5 }, 1, 2)).toBe('maxFailureRate');
    expect(haltReason({ maxFailureRate: 0.05 }, 0, 0)).toBeUndefined();
    expect(haltReason({ maxFailureRate: 1 }, 1, 1)).toBe('maxFailureRate');
    // Both reached: the count is named.
    expect(haltReason({ maxFailures: 1, maxFailureRate: 0.1 }, 1, 1)).toBe('maxFailures');
  });
});

describe('validateConcurrency', () => {
  it('defaults to 4 and keeps a positive integer', () => {
    expect(validateConcurrency(undefined)).toBe(DEFAULT_FLEET_CONCURRENCY);
    expect(DEFAULT_FLEET_CONCURRENCY).toBe(4);
    expect(validateConcurrency(1)).toBe(1);
    expect(validateConcurrency(64)).toBe(64);
  });

  it('refuses anything else: VALIDATION', () => {
    for (const bad of [0, -2, 1.5, '4', null, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(thrownCode(() => validateConcurrency(bad)), String(bad)).toBe('VALIDATION');
    }
  });
});

describe('recordedOptions', () => {
  it('records the selection, waves and stop rules, instants as ISO strings, no callbacks', () => {
    const recorded = recordedOptions(
      {
        concurrency: 2,
        tenants: ['a', 'b'],
        server: 'eu1',
        createdBefore: new Date('2026-03-01T00:00:00Z'),
        createdAfter: '2026-01-01',
        labels: { plan: 'free' },
        waves: [1, '50%'],
        maxFailures: 2,
        maxFailureRate: 0.25,
        onProgress: () => {},
        onWave: () => {},
      },
      SERVERS,
    );
    expect(recorded).toEqual({
      concurrency: 2,
      tenants: ['a', 'b'],
      server: 'eu1',
      createdBefore: '2026-03-01T00:00:00.000Z',
      createdAfter: '2026-01-01T00:00:00.000Z',
      labels: { plan: 'free' },
      waves: [1, '50%'],
      maxFailures: 2,
      maxFailureRate: 0.25,
    });
    // What is recorded is JSON: it survives the round trip through jsonb as it is.
    expect(JSON.parse(JSON.stringify(recorded))).toEqual(recorded);
    expect(recordedOptions({}, SERVERS)).toEqual({ concurrency: 4 });
  });

  it('copies the list of tenants', () => {
    const tenants = ['a'];
    const recorded = recordedOptions({ tenants }, SERVERS);
    tenants.push('b');
    expect(recorded.tenants).toEqual(['a']);
  });

  it('refuses a tenants that is no array: VALIDATION', () => {
    for (const tenants of ['all', {}, 1, null]) {
      expect(thrownCode(() => recordedOptions({ tenants } as never, SERVERS)), JSON.stringify(tenants)).toBe('VALIDATION');
    }
  });

  it('keeps an entry that is no string as its JSON, and a NUL as U+FFFD: references naming no tenant', () => {
    const recorded = recordedOptions({ tenants: ['a', 1, null, '', { id: 'a' }, ['a'], 'x\u0000y'] } as never, SERVERS);
    expect(recorded.tenants).toEqual(['a', '1', 'null', '', '{"id":"a"}', '["a"]', 'x\uFFFDy']);
    const selected = selectTenants([], recorded);
    expect(selected.map((s) => s.ref)).toEqual(recorded.tenants);
  });

  it('refuses an unknown server, a bad instant, bad labels, bad waves, bad rules and bad callbacks: VALIDATION', () => {
    const bad: Record<string, unknown>[] = [
      { server: 'us9' },
      { server: '' },
      { server: 1 },
      { createdBefore: 'not a date' },
      { createdBefore: '' },
      { createdBefore: new Date(Number.NaN) },
      { createdAfter: 1767225600000 },
      { createdAfter: '2026-13-45' },
      { labels: 'plan=free' },
      { labels: { plan: 1 } },
      { labels: { '-bad': 'x' } },
      { labels: null },
      { waves: [] },
      { waves: ['0%'] },
      { waves: [0] },
      { waves: '10%' },
      { maxFailures: 0 },
      { maxFailureRate: 2 },
      { concurrency: 0 },
      { onProgress: 'log' },
      { onWave: {} },
    ];
    for (const options of bad) expect(thrownCode(() => recordedOptions(options as never, SERVERS)), JSON.stringify(options)).toBe('VALIDATION');
    for (const options of [null, [], 'x']) expect(thrownCode(() => recordedOptions(options as never, SERVERS))).toBe('VALIDATION');
  });
});

describe('selectTenants', () => {
  const all = [
    tenant(1, { labels: { plan: 'free', region: 'eu' } }),
    tenant(2, { server: 'eu1', labels: { plan: 'free' } }),
    tenant(3, { server: 'eu1', labels: { plan: 'gold', region: 'eu' } }),
    tenant(4, { labels: { plan: 'free', region: 'eu' }, status: 'provisioning' }),
    tenant(5, { server: 'eu1', labels: { plan: 'free', region: 'eu' } }),
  ];
  const [t1, t2, t3, t4, t5] = all as [Tenant, Tenant, Tenant, Tenant, Tenant];
  const select = (selection: Partial<FleetRecordedOptions>): string[] => picked(selectTenants(all, { concurrency: 4, ...selection }));

  it('no selection: every tenant, in creation order (not-ready ones too: the run skips them)', () => {
    expect(select({})).toEqual(all.map((t) => t.id));
  });

  it('tenants: in the order given, each once, ids in any case or database names, unknown references kept', () => {
    expect(select({ tenants: [t3.id, t1.databaseName, t5.id] })).toEqual([t3.id, t1.id, t5.id]);
    // The same tenant by id, by upper-case id and by database name: once, where it first comes.
    expect(select({ tenants: [t2.id.toUpperCase(), t1.id, t2.databaseName, t2.id] })).toEqual([t2.id, t1.id]);
    // Unknown references stay, in place, each once.
    expect(select({ tenants: ['nobody', t4.id, 'nobody', 'tenant_gone_12345678'] })).toEqual(['?nobody', t4.id, '?tenant_gone_12345678']);
    // A database name is matched as it is written.
    expect(select({ tenants: [t1.databaseName.toUpperCase()] })).toEqual([`?${t1.databaseName.toUpperCase()}`]);
    expect(select({ tenants: [] })).toEqual([]);
  });

  it('server, createdBefore (exclusive), createdAfter (inclusive) and labels: each alone', () => {
    expect(select({ server: 'eu1' })).toEqual([t2.id, t3.id, t5.id]);
    expect(select({ createdBefore: t3.createdAt.toISOString() })).toEqual([t1.id, t2.id]);
    expect(select({ createdAfter: t3.createdAt.toISOString() })).toEqual([t3.id, t4.id, t5.id]);
    expect(select({ labels: { region: 'eu' } })).toEqual([t1.id, t3.id, t4.id, t5.id]);
    expect(select({ labels: { plan: 'free', region: 'eu' } })).toEqual([t1.id, t4.id, t5.id]);
    expect(select({ labels: {} })).toEqual(all.map((t) => t.id));
    expect(select({ labels: { plan: 'platinum' } })).toEqual([]);
  });

  it('the conditions combine: all of them must hold', () => {
    expect(
      select({ server: 'eu1', labels: { region: 'eu' }, createdAfter: t2.createdAt.toISOString(), createdBefore: t5.createdAt.toISOString() }),
    ).toEqual([t3.id]);
    expect(select({ server: 'default', labels: { plan: 'free' } })).toEqual([t1.id, t4.id]);
    // With a list, the filters drop the listed tenants that miss them; unknown references stay.
    expect(select({ tenants: [t5.id, 'nobody', t1.id, t2.id], server: 'eu1', labels: { region: 'eu' } })).toEqual([t5.id, '?nobody']);
  });
});
