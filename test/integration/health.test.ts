import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { healthRoute as expressHealthRoute, tenancy } from '../../src/integrations/express.js';
import { tenancyPlugin } from '../../src/integrations/fastify.js';
import type { Platform } from '../../src/index.js';
import { adminQuery, serverUrl, useTestPlatform } from '../support/env.js';
import { harnessServer, refusedServer } from '../support/server-urls.js';
import { silentServer } from '../support/silent-server.js';

const tp = useTestPlatform();
type Silent = Awaited<ReturnType<typeof silentServer>>;
const silent: Silent[] = [];
afterAll(async () => {
  for (const s of silent) await s.close();
});

/** A server that accepts connections and never answers, closed after the file. */
async function hung(): Promise<Silent> {
  const s = await silentServer({ swallow: true });
  silent.push(s);
  return s;
}

/** The harness' `postgres` database as the main database: health needs no init. */
const healthy = (): Platform =>
  tp.platform({ mainUrl: serverUrl(), tenantServers: { default: harnessServer('a'), second: harnessServer('b') } });

async function until(condition: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('platform.health()', () => {
  it('checks the main database, every tenant server and S3, each ok with its latency, and leaves no connection', async () => {
    const platform = healthy();
    const report = await platform.health();
    expect(report.ok).toBe(true);
    const { main, servers, s3 } = report.checks;
    expect(Object.keys(servers).sort()).toEqual(['default', 'second']);
    for (const check of [main, servers.default!, servers.second!, s3]) {
      expect(check).toEqual({ ok: true, latencyMs: expect.any(Number) });
      expect(check.latencyMs).toBeGreaterThanOrEqual(0);
    }
    // Connections of their own: none from the tenant budget, every one ended.
    expect(platform.stats().connections.open).toBe(0);
    await until(async () => {
      const { rows } = await adminQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name IN ('tenantdb_health', 'tenantdb_a', 'tenantdb_b')",
      );
      return rows[0]!.n === 0;
    });
  });

  it('reports a hung server and a hung S3 as UNAVAILABLE within about timeoutMs, a refused one at once, no secret, nothing left open', async () => {
    const [db, s3] = [await hung(), await hung()];
    const platform = tp.platform({
      mainUrl: serverUrl(),
      tenantServers: {
        default: harnessServer('a'),
        hung: `postgres://app:hunter2secret@127.0.0.1:${db.port}`,
        refused: refusedServer().replace('//', '//app:hunter2secret@'),
      },
      s3: { ...tp.options().s3, endpoint: `http://127.0.0.1:${s3.port}` },
    });
    const started = Date.now();
    const report = await platform.health({ timeoutMs: 400 });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(1500);
    expect(report.ok).toBe(false);
    const { main, servers, s3: s3Check } = report.checks;
    expect(main.ok).toBe(true);
    expect(servers.default!.ok).toBe(true);
    expect(servers.hung).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', message: expect.stringContaining('within 400 ms') } });
    expect(servers.hung!.latencyMs).toBeGreaterThanOrEqual(350);
    expect(servers.refused).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    expect(servers.refused!.latencyMs).toBeLessThan(350);
    expect(s3Check).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', message: expect.stringContaining('S3') } });
    const text = JSON.stringify(report);
    expect(text).not.toContain('hunter2secret');
    expect(text).not.toContain('postgres://');
    // The abandoned connections are closed, not left to the server.
    await until(() => db.open() === 0 && s3.open() === 0);
  });

  it('reports a main database that does not exist and an S3 bucket that does not exist', async () => {
    const platform = tp.platform({ tenantServers: { default: harnessServer('a') }, s3: { ...tp.options().s3, bucket: 'no-such-bucket-health' } });
    const { ok, checks } = await platform.health({ timeoutMs: 5000 });
    expect(ok).toBe(false);
    expect(checks.main).toMatchObject({ ok: false, error: { code: 'DATABASE', message: expect.stringContaining('does not exist') } });
    expect(checks.servers.default!.ok).toBe(true);
    expect(checks.s3).toMatchObject({ ok: false, error: { code: 'STORAGE' } });
  });

  it('rejects a bad timeoutMs with VALIDATION, and answers ok: false with CLOSED once closed', async () => {
    const platform = healthy();
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number]) {
      const err = await platform.health({ timeoutMs }).catch((e: unknown) => e);
      expect(isTenantDbError(err, 'VALIDATION')).toBe(true);
    }
    await platform.close();
    const report = await platform.health();
    expect(report.ok).toBe(false);
    for (const check of [report.checks.main, report.checks.servers.default!, report.checks.s3]) {
      expect(check).toMatchObject({ ok: false, error: { code: 'CLOSED' } });
    }
  });
});

describe('health routes over HTTP', () => {
  let up: Platform;
  let down: Platform;
  beforeAll(async () => {
    up = healthy();
    down = tp.platform({ mainUrl: serverUrl(), tenantServers: { default: `postgres://127.0.0.1:${(await hung()).port}` } });
  });

  /** The status, cache header and report of GET `url`. */
  async function get(url: string): Promise<{ status: number; cache: string | null; body: { ok: boolean; checks: Record<string, unknown> } }> {
    const res = await fetch(url);
    return { status: res.status, cache: res.headers.get('cache-control'), body: (await res.json()) as never };
  }

  it('Express: healthRoute answers 200 with the report when ok, 503 otherwise, before tenancy()', async () => {
    const app = express();
    app.get('/healthz', expressHealthRoute(up));
    app.get('/health/down', expressHealthRoute(down, { timeoutMs: 300 }));
    app.use(tenancy(up, { tenant: (req) => req.header('x-tenant-id') }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const ok = await get(`${base}/healthz`);
      expect(ok).toMatchObject({ status: 200, cache: 'no-store', body: { ok: true } });
      expect(Object.keys(ok.body.checks).sort()).toEqual(['main', 's3', 'servers']);
      const bad = await get(`${base}/health/down`);
      expect(bad).toMatchObject({ status: 503, body: { ok: false, checks: { servers: { default: { ok: false, error: { code: 'UNAVAILABLE' } } } } } });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    expect(() => expressHealthRoute(up, { timeoutMs: 0 })).toThrow(/timeoutMs/);
  });

  it("Fastify: tenancyPlugin's health option registers a route that needs no tenant, 200 or 503", async () => {
    for (const [platform, status, timeoutMs] of [[up, 200, 5000], [down, 503, 300]] as const) {
      const app = Fastify();
      await app.register(tenancyPlugin, { platform, tenant: (req) => req.headers['x-tenant-id'] as string, health: { timeoutMs } /* default path: /healthz */ });
      app.get('/other', () => 'unreachable without a tenant');
      try {
        const base = await app.listen({ port: 0, host: '127.0.0.1' });
        const res = await get(`${base}/healthz`);
        expect(res).toMatchObject({ status, cache: 'no-store', body: { ok: status === 200 } });
        // The other routes still need their tenant.
        expect((await fetch(`${base}/other`)).status).toBe(400);
      } finally {
        await app.close();
      }
    }
  });
});
