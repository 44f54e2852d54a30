import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/index.js';
import { isUnreachable } from '../../src/errors.js';
import { Placement, placementOrder, type ServerLoad } from '../../src/tenants/placement.js';

const load = (name: string, tenants: number, weight = 1, reachable = true): ServerLoad => ({ name, tenants, weight, reachable });

describe('placementOrder (the default placement)', () => {
  it('puts the lowest tenants ÷ weight first, ties in configuration order', () => {
    expect(placementOrder([load('a', 10), load('b', 4), load('c', 4)])).toEqual(['b', 'c', 'a']);
    // 9 ÷ 3 = 3 beats 4 ÷ 1.
    expect(placementOrder([load('a', 4), load('b', 9, 3)])).toEqual(['b', 'a']);
  });

  it('leaves out servers of weight 0, and puts unreachable ones last', () => {
    expect(placementOrder([load('a', 0, 0), load('b', 50), load('c', 0, 1, false)])).toEqual(['b', 'c']);
    expect(placementOrder([load('a', 0, 0)])).toEqual([]);
  });

  it('spreads tenants by weight when placed one after another', () => {
    const servers = [load('small', 0, 1), load('big', 0, 3)];
    for (let i = 0; i < 400; i++) servers.find((s) => s.name === placementOrder(servers)[0])!.tenants++;
    expect(servers.map((s) => s.tenants)).toEqual([100, 300]);
  });
});

describe('Placement', () => {
  const configured = [
    { name: 'a', weight: 1 },
    { name: 'b', weight: 1 },
  ];
  const placement = (counts: Record<string, number>, policy?: ConstructorParameters<typeof Placement>[0]['policy'], now = () => 0): Placement =>
    new Placement({ servers: () => configured, countTenants: async () => new Map(Object.entries(counts)), policy, now });

  it('counts the creates under way in this process, so a burst spreads', async () => {
    const p = placement({ a: 0, b: 0 });
    const chosen: string[] = [];
    for (let i = 0; i < 40; i++) {
      const [first] = await p.candidates({ name: 't', createdBy: null });
      chosen.push(first!);
      p.begin(first!);
    }
    expect(chosen.filter((s) => s === 'a')).toHaveLength(20);
    expect(chosen.filter((s) => s === 'b')).toHaveLength(20);
  });

  it('ends a create once only, however often its done() is called', async () => {
    const p = placement({ a: 0, b: 1 });
    const done = p.begin('a');
    p.begin('a');
    done();
    done();
    // a: 0 + 1 under way = 1, b: 1: a tie, configuration order.
    expect(await p.candidates({ name: 't', createdBy: null })).toEqual(['a', 'b']);
  });

  it('tries a server that could not be reached after the others, for a while', async () => {
    let now = 0;
    const p = placement({ a: 0, b: 5 }, undefined, () => now);
    p.unreachable('a');
    expect(await p.candidates({ name: 't', createdBy: null })).toEqual(['b', 'a']);
    now = 31_000;
    expect(await p.candidates({ name: 't', createdBy: null })).toEqual(['a', 'b']);
    p.unreachable('a');
    p.reachable('a');
    expect(await p.candidates({ name: 't', createdBy: null })).toEqual(['a', 'b']);
  });

  it('asks the host policy, with every server and its load', async () => {
    let seen: unknown;
    const p = placement({ a: 3 }, (input) => {
      seen = input;
      return 'b';
    });
    expect(await p.candidates({ name: 'Acme', createdBy: 'u1' })).toEqual(['b']);
    expect(seen).toEqual({
      name: 'Acme',
      createdBy: 'u1',
      servers: [
        { name: 'a', weight: 1, tenants: 3, reachable: true },
        { name: 'b', weight: 1, tenants: 0, reachable: true },
      ],
    });
  });

  it('refuses an unknown choice, a throwing policy, and no server to place on, as VALIDATION', async () => {
    const codeOf = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => 'resolved', (err: TenantDbError) => err.code);
    expect(await codeOf(placement({}, () => 'nowhere').candidates({ name: 't', createdBy: null }))).toBe('VALIDATION');
    expect(await codeOf(placement({}, () => 42 as unknown as string).candidates({ name: 't', createdBy: null }))).toBe('VALIDATION');
    const boom = new Error('boom');
    const failed = await placement({}, async () => Promise.reject(boom)).candidates({ name: 't', createdBy: null }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'VALIDATION', cause: boom });
    const none = new Placement({ servers: () => [{ name: 'a', weight: 0 }], countTenants: async () => new Map(), policy: undefined });
    expect(await codeOf(none.candidates({ name: 't', createdBy: null }))).toBe('VALIDATION');
  });
});

describe('isUnreachable', () => {
  it('is true for refused, reset and timed-out connections and UNAVAILABLE, false for the rest', () => {
    expect(isUnreachable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnreachable(new TenantDbError('UNAVAILABLE', 'x'))).toBe(true);
    expect(isUnreachable(new TenantDbError('MIGRATION_FAILED', 'x'))).toBe(false);
    expect(isUnreachable(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
  });
});
