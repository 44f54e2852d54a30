import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger, Platform, PlacementInput, Tenant } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { harnessServer, refusedServer } from '../support/server-urls.js';
import { rejectionCode, rejectionOf } from '../support/errors.js';
import { silentServer } from '../support/silent-server.js';

function countBy(tenants: Tenant[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of tenants) counts[t.server] = (counts[t.server] ?? 0) + 1;
  return counts;
}

/** A logger that keeps its warnings' messages. */
function warnings(): { logger: Logger; seen: string[] } {
  const seen: string[] = [];
  const noop = (): void => {};
  return { seen, logger: { debug: noop, info: noop, error: noop, warn: (_obj, msg) => void seen.push(String(msg)) } };
}

describe('tenant servers and placement', () => {
  // Three names for the harness server, weighted 1 : 3 : 0.
  const servers = {
    default: { url: harnessServer('default'), weight: 1 },
    big: { url: harnessServer('big'), weight: 3 },
    drained: { url: harnessServer('drained'), weight: 0 },
  };
  const env = useTestPlatform({ tenantServers: servers, tenantSpares: 0 });
  let platform: Platform;

  beforeAll(async () => {
    platform = await env.initPlatform();
  }, 120_000);

  it('init() builds a template on every server', async () => {
    const { rows } = await adminQuery<{ server: string }>('SELECT server FROM tenant_templates ORDER BY server', [], env.mainDb);
    expect(rows.map((r) => r.server)).toEqual(['big', 'default', 'drained']);
  });

  it('spreads 40 concurrent creates by tenants ÷ weight (10 times the default concurrency), never on a server of weight 0', async () => {
    const created = await Promise.all(Array.from({ length: 40 }, (_, i) => platform.tenants.create({ name: `spread ${i}` })));
    const counts = countBy(created);
    expect(counts.drained).toBeUndefined();
    expect((counts.default ?? 0) + (counts.big ?? 0)).toBe(40);
    // 1 : 3 by weight; concurrent creates of one process see each other, so the split is close to exact.
    expect(counts.big).toBeGreaterThanOrEqual(26);
    expect(counts.big).toBeLessThanOrEqual(34);
    // Each tenant's database is on its server, and the registry says which.
    for (const t of created) {
      expect((await platform.tenants.get(t.id)).server).toBe(t.server);
      expect(await platform.withTenant(t, (ctx) => ctx.query<{ n: string }>('SELECT count(*) AS n FROM documents'))).toMatchObject({ rows: [{ n: '0' }] });
    }
    // Placed one after another, the next ones go where tenants ÷ weight is lowest.
    const listed = countBy(await platform.tenants.list());
    const next = (listed.default ?? 0) / 1 <= (listed.big ?? 0) / 3 ? 'default' : 'big';
    expect((await platform.tenants.create({ name: 'the next one' })).server).toBe(next);
  });

  it('tenants.create({ server }) overrides the placement, also onto a server of weight 0', async () => {
    const t = await platform.tenants.create({ name: 'chosen', server: 'drained' });
    expect(t.server).toBe('drained');
    await platform.withTenant(t, (ctx) => ctx.query('SELECT 1'));
    expect(await rejectionCode(platform.tenants.create({ name: 'nowhere', server: 'mars' }))).toBe('VALIDATION');
  });

  it('takes a placement function, which sees every server and its load', async () => {
    let seen: PlacementInput | undefined;
    const placed = env.platform({
      tenantServers: servers,
      tenantSpares: 0,
      placement: (input) => {
        seen = input;
        return input.name.startsWith('eu ') ? 'drained' : 'default';
      },
    });
    expect((await placed.tenants.create({ name: 'eu customer' })).server).toBe('drained');
    expect((await placed.tenants.create({ name: 'us customer' })).server).toBe('default');
    expect(seen!.servers.map((s) => s.name)).toEqual(['default', 'big', 'drained']);
    expect(seen!.servers.find((s) => s.name === 'drained')).toMatchObject({ weight: 0, tenants: 2, reachable: true });
  });

  it('refuses a placement that names an unknown server or throws, as VALIDATION, before anything is written', async () => {
    const before = (await platform.tenants.list({ includeInactive: true })).length;
    const unknown = env.platform({ tenantServers: servers, placement: () => 'mars' });
    expect(await rejectionCode(unknown.tenants.create({ name: 'lost' }))).toBe('VALIDATION');
    const boom = new Error('no capacity left');
    const throwing = env.platform({ tenantServers: servers, placement: () => Promise.reject(boom) });
    const err = await rejectionOf(throwing.tenants.create({ name: 'lost' }));
    expect(err.code).toBe('VALIDATION');
    expect(err.cause).toBe(boom);
    expect((await platform.tenants.list({ includeInactive: true })).length).toBe(before);
  });

  it('stats() reports the open connections of each server by name', async () => {
    const stats = platform.stats();
    expect(Object.keys(stats.connections.servers).sort()).toEqual(['big', 'default', 'drained']);
    expect(stats.connections.servers.big).toBeGreaterThan(0);
  });
});

describe('a server that is down fails only its own tenants', () => {
  const env = useTestPlatform({ tenantSpares: 0 });
  let silent: Awaited<ReturnType<typeof silentServer>>;
  let up: Platform;
  let onDown: Tenant[];
  let onUp: Tenant[];

  beforeAll(async () => {
    silent = await silentServer();
    // One process sees the `eu1` server up and puts tenants there.
    up = await env.initPlatform({ tenantServers: { default: harnessServer('default'), eu1: harnessServer('eu1') } });
    onDown = await Promise.all([1, 2, 3].map((i) => up.tenants.create({ name: `eu ${i}`, server: 'eu1' })));
    onUp = await Promise.all([1, 2, 3].map((i) => up.tenants.create({ name: `home ${i}`, server: 'default' })));
  }, 120_000);

  afterAll(async () => {
    await silent?.close();
  });

  /** Another process of the same platform, for which `eu1` hangs (accepts and never answers). */
  const hungPlatform = (logger?: Logger): Platform =>
    env.platform({
      tenantServers: { default: harnessServer('default'), eu1: `postgres://postgres:postgres@127.0.0.1:${silent.port}` },
      pool: { connectTimeoutMs: 1_000 },
      tenantSpares: 0,
      ...(logger && { logger }),
    });

  it('init() succeeds, with a warning for the server that does not answer', async () => {
    const { logger, seen } = warnings();
    const started = Date.now();
    await hungPlatform(logger).init();
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(seen).toContain('a tenant server could not be reached: its template waits for a later init or create');
  });

  it('scopes on the other server go on while those on the hung one give UNAVAILABLE within connectTimeoutMs', async () => {
    const platform = hungPlatform();
    const started = Date.now();
    const [down, ...others] = await Promise.allSettled([
      platform.withTenant(onDown[0]!, (ctx) => ctx.query('SELECT 1')),
      ...onUp.map((t) => platform.withTenant(t, async (ctx) => (await ctx.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n)),
    ]);
    for (const r of others) expect(r).toEqual({ status: 'fulfilled', value: 1 });
    expect(down.status).toBe('rejected');
    expect((down as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fleet migrations report its tenants as failed and migrate the rest, without waiting for each of them', async () => {
    const platform = hungPlatform();
    const started = Date.now();
    const result = await platform.migrations.tenants.up({ concurrency: 1 });
    expect(result.succeeded.sort()).toEqual(onUp.map((t) => t.id).sort());
    expect(result.failed.map((f) => f.tenantId).sort()).toEqual(onDown.map((t) => t.id).sort());
    for (const f of result.failed) expect(f.error).toMatchObject({ code: 'UNAVAILABLE' });
    // One connect timeout (1 s) for the first of its tenants, not one per tenant, plus the template's.
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('status() reports its tenants as unreachable and the others in full', async () => {
    const rows = await hungPlatform().migrations.tenants.status();
    const byId = new Map(rows.map((r) => [r.tenantId, r]));
    for (const t of onDown) {
      expect(byId.get(t.id)).toMatchObject({ server: 'eu1', reachable: false, executed: [], pending: [] });
      expect(byId.get(t.id)!.error).toMatchObject({ code: 'UNAVAILABLE' });
    }
    for (const t of onUp) {
      expect(byId.get(t.id)).toMatchObject({ server: 'default', reachable: true, pending: [] });
      expect(byId.get(t.id)!.executed.length).toBeGreaterThan(0);
      expect(byId.get(t.id)!.error).toBeUndefined();
    }
  });

  it('a new tenant placed by default goes to a server that answers; named, the dead one gives UNAVAILABLE', async () => {
    const platform = env.platform({
      // Weighted so that the default placement prefers the dead server first.
      tenantServers: { default: harnessServer('default'), dead: { url: refusedServer(), weight: 100 } },
      tenantSpares: 0,
    });
    const placed = await Promise.all([1, 2, 3].map((i) => platform.tenants.create({ name: `placed ${i}` })));
    expect(placed.map((t) => t.server)).toEqual(['default', 'default', 'default']);
    const err = await rejectionOf(platform.tenants.create({ name: 'nowhere', server: 'dead' }));
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
  });
});
