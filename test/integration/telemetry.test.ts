import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';
import { observe, useContextManager, type Observed } from '../support/telemetry.js';
import { createTestUser } from '../support/users.js';

useContextManager();
const env = useTestPlatform();
const observed: Observed[] = [];
let base: Platform;
let tenant: Tenant;

/** A platform on the file's main database whose metrics and spans go to providers of its own. */
async function observedPlatform(extra: Parameters<typeof env.initPlatform>[0] = {}, telemetry = {}): Promise<{ platform: Platform; o: Observed }> {
  const o = observe(telemetry);
  observed.push(o);
  const platform = await env.initPlatform({ tenantSpares: 0, ...extra, telemetry: o.telemetry });
  return { platform, o };
}

const attributesOf = (o: { attributes: Record<string, unknown> }): Record<string, unknown> => o.attributes;

beforeAll(async () => {
  base = await env.initPlatform({ tenantSpares: 0 });
  tenant = await base.tenants.create({ name: 'Observed' });
});

afterAll(async () => {
  for (const o of observed) await o.shutdown();
});

describe('telemetry: withTenant', () => {
  it('records N calls in tenantdb.with_tenant.duration (seconds, by server) and a span each, active inside fn', async () => {
    const { platform, o } = await observedPlatform();
    let inner: string | undefined;
    for (let i = 0; i < 5; i++) {
      await platform.withTenant(tenant.id, async (ctx) => {
        await ctx.query('SELECT 1');
        if (i === 0) {
          // A span of the app's, started inside fn on the same provider: a child of withTenant's.
          o.tracerProvider.getTracer('app').startActiveSpan('app.work', (span) => {
            inner = span.spanContext().spanId;
            span.end();
          });
        }
      });
    }
    const [point, ...others] = await o.histogram('tenantdb.with_tenant.duration');
    expect(others).toEqual([]);
    expect(point!.value.count).toBe(5);
    expect(point!.value.sum).toBeGreaterThan(0);
    expect(point!.value.sum).toBeLessThan(5 * 10); // seconds, not milliseconds
    expect(attributesOf(point!)).toEqual({ 'tenantdb.server': 'default' });

    const spans = o.spans('tenantdb.with_tenant');
    expect(spans).toHaveLength(5);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'tenantdb.tenant.id': tenant.id,
        'tenantdb.database.name': tenant.databaseName,
        'tenantdb.server': 'default',
      });
      expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    }
    const [child] = o.spans('app.work');
    expect(child!.spanContext().spanId).toBe(inner);
    expect(child!.parentSpanContext?.spanId).toBe(spans[0]!.spanContext().spanId);
    expect(child!.spanContext().traceId).toBe(spans[0]!.spanContext().traceId);
  });

  it('a failing withTenant: span status ERROR with tenantdb.error.code and the exception; the histogram has error.type', async () => {
    const { platform, o } = await observedPlatform();
    expect(await rejectionCode(platform.withTenant(randomUUID(), () => 1))).toBe('NOT_FOUND');
    const outsider = await createTestUser(base, 'Outsider');
    expect(await rejectionCode(platform.withTenant(tenant.id, () => 1, { userId: outsider.id }))).toBe('FORBIDDEN');

    const [notFound, forbidden] = o.spans('tenantdb.with_tenant');
    expect(notFound!.status.code).toBe(SpanStatusCode.ERROR);
    expect(notFound!.attributes).toMatchObject({ 'tenantdb.error.code': 'NOT_FOUND', 'error.type': 'NOT_FOUND' });
    expect(notFound!.events.map((e) => e.name)).toContain('exception');
    expect(forbidden!.status.code).toBe(SpanStatusCode.ERROR);
    expect(forbidden!.attributes).toMatchObject({
      'tenantdb.error.code': 'FORBIDDEN',
      'tenantdb.tenant.id': tenant.id,
      'tenantdb.database.name': tenant.databaseName,
    });
    const points = await o.histogram('tenantdb.with_tenant.duration');
    expect(points.map((p) => [p.attributes['error.type'], p.value.count]).sort()).toEqual([
      ['FORBIDDEN', 1],
      ['NOT_FOUND', 1],
    ]);
    // Never a secret in an attribute.
    for (const span of o.spans()) expect(JSON.stringify(span.attributes)).not.toMatch(/postgres(ql)?:\/\/|password|scram/i);
  });

  it('tenantAttributes: true adds the tenant id to the duration metric', async () => {
    const { platform, o } = await observedPlatform({}, { tenantAttributes: true });
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    const [point] = await o.histogram('tenantdb.with_tenant.duration');
    expect(attributesOf(point!)).toEqual({ 'tenantdb.server': 'default', 'tenantdb.tenant.id': tenant.id });
  });

  it('observes connections per server, the budget, pools, hits and misses from stats()', async () => {
    const { platform, o } = await observedPlatform({ pool: { maxConnections: 7 } });
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    await platform.withTenant(tenant.id, (ctx) => ctx.query('SELECT 1'));
    const open = await o.points('tenantdb.connections.open');
    expect(open.map((p) => [p.attributes['tenantdb.server'], p.value])).toEqual([['default', 1]]);
    const max = await o.points('tenantdb.connections.max');
    expect(max.map((p) => [p.attributes['tenantdb.server'], p.value])).toEqual([['default', 7]]);
    const stats = platform.stats().pools;
    expect((await o.points('tenantdb.pool.misses'))[0]!.value).toBe(stats.misses);
    expect((await o.points('tenantdb.pool.hits'))[0]!.value).toBe(stats.hits);
    expect(stats.misses).toBe(1);
    expect(stats.hits).toBeGreaterThanOrEqual(1);
    expect((await o.points('tenantdb.pool.evictions'))[0]!.value).toBe(0);
    expect((await o.points('tenantdb.pools.open'))[0]!.value).toBe(1);
  });

  /**
   * A connection of `tenant` held in a transaction for `holdMs` while a second tenant's query asks for one:
   * with a budget of one slot, the second waits about that long.
   */
  async function waitBehindOne(platform: Platform, name: string, holdMs: number): Promise<void> {
    const other = await base.tenants.create({ name });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holding = platform.withTenant(tenant.id, (ctx) => ctx.transaction(async (tx) => {
      await tx.query('SELECT 1');
      await held;
    }));
    await new Promise((r) => setTimeout(r, 50));
    const waiting = platform.withTenant(other.id, (ctx) => ctx.query('SELECT 1'));
    await new Promise((r) => setTimeout(r, holdMs));
    release();
    await Promise.all([holding, waiting]);
  }

  it('records a wait for the connection budget in tenantdb.connections.budget_wait.duration', async () => {
    const { platform, o } = await observedPlatform({ pool: { maxConnections: 1 } });
    await waitBehindOne(platform, 'Observed other', 100);
    const [point] = await o.histogram('tenantdb.connections.budget_wait.duration');
    expect(point!.value.count).toBe(1);
    expect(point!.value.sum).toBeGreaterThan(0.05);
    expect(attributesOf(point!)).toEqual({ 'tenantdb.server': 'default', 'tenantdb.budget': 'local' });
  });

  it('records every slot of pool.sharedBudget, waits included, as tenantdb.budget shared', async () => {
    // The local budget (50) has room: the wait is for the one slot every process shares.
    const { platform, o } = await observedPlatform({ pool: { sharedBudget: { maxConnections: 1 } } });
    await waitBehindOne(platform, 'Observed shared', 150);
    const points = await o.histogram('tenantdb.connections.budget_wait.duration');
    expect(points.map(attributesOf)).toEqual([{ 'tenantdb.server': 'default', 'tenantdb.budget': 'shared' }]);
    expect(points[0]!.value.count).toBe(2);
    expect(points[0]!.value.sum).toBeGreaterThan(0.1);
  });
});

describe('telemetry: provisioning', () => {
  it('tenants.create: a span with the tenant id and database name, the duration by source (clone)', async () => {
    const { platform, o } = await observedPlatform({ tenantSpares: 0 });
    const created = await platform.tenants.create({ name: 'Cloned' });
    const [span] = o.spans('tenantdb.tenants.create');
    expect(span!.attributes).toMatchObject({
      'tenantdb.tenant.id': created.id,
      'tenantdb.database.name': created.databaseName,
      'tenantdb.server': 'default',
      'tenantdb.provisioning.source': 'clone',
    });
    const [point] = await o.histogram('tenantdb.tenants.create.duration');
    expect(point!.value.count).toBe(1);
    expect(attributesOf(point!)).toEqual({ 'tenantdb.server': 'default', 'tenantdb.provisioning.source': 'clone' });
  });

  it('a failed create: span status ERROR with the code', async () => {
    const { platform, o } = await observedPlatform();
    expect(await rejectionCode(platform.tenants.create({ name: '' }))).toBe('VALIDATION');
    const [span] = o.spans('tenantdb.tenants.create');
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes['tenantdb.error.code']).toBe('VALIDATION');
  });
});

describe('telemetry: spares', () => {
  const spareEnv = useTestPlatform();
  it('tenants.create from a spare: source spare', async () => {
    const o = observe();
    observed.push(o);
    const platform = await spareEnv.initPlatform({ tenantSpares: 1, telemetry: o.telemetry });
    for (let i = 0; i < 200; i++) {
      const { rows } = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM tenant_spares WHERE ready', [], spareEnv.mainDb);
      if (rows[0]!.n === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await platform.tenants.create({ name: 'From a spare' });
    const [point] = await o.histogram('tenantdb.tenants.create.duration');
    expect(attributesOf(point!)).toEqual({ 'tenantdb.server': 'default', 'tenantdb.provisioning.source': 'spare' });
    expect(o.spans('tenantdb.tenants.create')[0]!.attributes['tenantdb.provisioning.source']).toBe('spare');
  });
});

describe('telemetry: documents and storage', () => {
  it('an upload: bytes and duration; the same bytes again: a dedup hit; a download and a sweep: spans', async () => {
    const { platform, o } = await observedPlatform();
    const user = await createTestUser(base, 'Uploader');
    const body = Buffer.alloc(3000, 7);
    const [first, second] = await platform.withTenant(tenant.id, async (ctx) => [
      await ctx.documents.upload({ filename: 'a.bin', body, userId: user.id }),
      await ctx.documents.upload({ filename: 'b.bin', body, userId: user.id }),
    ]);
    expect(second!.deduplicated).toBe(true);
    const sizes = await o.histogram('tenantdb.documents.upload.size');
    expect(sizes.map((p) => [p.attributes['tenantdb.document.deduplicated'], p.value.count, p.value.sum]).sort()).toEqual([
      [false, 1, 3000],
      [true, 1, 3000],
    ]);
    const durations = await o.histogram('tenantdb.documents.upload.duration');
    expect(durations.reduce((n, p) => n + p.value.count, 0)).toBe(2);
    const [hits] = await o.points('tenantdb.documents.dedup.hits');
    expect(hits!.value).toBe(1);
    const uploads = o.spans('tenantdb.documents.upload');
    expect(uploads.map((s) => s.attributes['tenantdb.document.id'])).toEqual([first!.id, second!.id]);
    expect(uploads[0]!.attributes).toMatchObject({ 'tenantdb.tenant.id': tenant.id, 'tenantdb.database.name': tenant.databaseName, 'tenantdb.document.size': 3000 });
    // Children of the scope's span.
    const scope = o.spans('tenantdb.with_tenant')[0]!;
    for (const span of uploads) expect(span.parentSpanContext?.spanId).toBe(scope.spanContext().spanId);

    await platform.withTenant(tenant.id, async (ctx) => {
      const { body: stream } = await ctx.documents.download(first!.id);
      stream.resume();
      await new Promise((r) => stream.on('end', r));
      expect(await rejectionCode(ctx.documents.download(randomUUID()))).toBe('NOT_FOUND');
    });
    const [download, missing] = o.spans('tenantdb.documents.download');
    expect(download!.attributes).toMatchObject({ 'tenantdb.tenant.id': tenant.id, 'tenantdb.document.id': first!.id, 'tenantdb.document.size': 3000 });
    expect(missing!.status.code).toBe(SpanStatusCode.ERROR);
    expect(missing!.attributes['tenantdb.error.code']).toBe('NOT_FOUND');

    const result = await platform.storage.sweep({ tenantId: tenant.id });
    const [sweep] = o.spans('tenantdb.storage.sweep');
    expect(sweep!.attributes).toMatchObject({
      'tenantdb.tenant.id': tenant.id,
      'tenantdb.sweep.objects_deleted': result.objectsDeleted,
      'tenantdb.sweep.uploads_aborted': result.uploadsAborted,
    });
  });
});

describe('telemetry: fleet migrations', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-otel-'));
    await writeFile(path.join(folder, '9000_otel.sql'), 'CREATE TABLE otel_probe (id int);');
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('one broken tenant: tenants counted by outcome, a span per tenant, the failure ERROR with its code', async () => {
    const broken = await base.tenants.create({ name: 'Broken' });
    // The table the migration creates is there already: the migration fails on that tenant.
    await adminQuery('CREATE TABLE otel_probe (id int)', [], broken.databaseName);
    const { platform, o } = await observedPlatform({ tenantMigrations: [folder] });
    const all = await platform.tenants.list({ includeInactive: true });
    const run = await platform.migrations.tenants.up({ concurrency: 2 });
    expect(run.failed.map((f) => f.tenantId)).toEqual([broken.id]);
    const counts = Object.fromEntries(
      (await o.points('tenantdb.migrations.tenants')).map((p) => [p.attributes['tenantdb.migration.outcome'], p.value]),
    );
    expect(counts).toEqual({ succeeded: all.length - 1, failed: 1 });
    const spans = o.spans('tenantdb.migrations.tenant');
    expect(spans).toHaveLength(all.length);
    const failedSpan = spans.find((s) => s.attributes['tenantdb.tenant.id'] === broken.id)!;
    expect(failedSpan.status.code).toBe(SpanStatusCode.ERROR);
    expect(failedSpan.attributes).toMatchObject({
      'tenantdb.database.name': broken.databaseName,
      'tenantdb.error.code': 'MIGRATION_FAILED',
      'tenantdb.migration.run_id': run.id,
    });
    const ok = spans.find((s) => s.attributes['tenantdb.tenant.id'] === tenant.id)!;
    expect(ok.attributes['tenantdb.migration.applied']).toBe(1);
    const durations = await o.histogram('tenantdb.migrations.tenant.duration');
    expect(durations.reduce((n, p) => n + p.value.count, 0)).toBe(all.length);
  });
});
