import { AsyncResource } from 'node:async_hooks';
import { EventEmitter, EventEmitterAsyncResource } from 'node:events';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, type Platform, type Tenant, type TenantContext } from '../../src/index.js';
import { seededRandom } from '../../bench/measure.js';
import { dbUrl, useTestPlatform } from '../support/env.js';

// What the library promises about currentTenant() (API.md: "across any await … never leak into concurrent
// scopes"), made precise for work that leaves the scope's own async chain:
//
// - Timers, immediates, ticks, microtasks, promise continuations and stream callbacks started inside a scope
//   run in it, whoever resolves the promise or feeds the stream afterwards.
// - A callback runs in the scope of the code that *calls* it. An EventEmitter listener runs inside emit(), so
//   it sees the emitter's scope, not the scope that added it (Node's AsyncLocalStorage semantics); a listener
//   bound with AsyncResource.bind, or added to an EventEmitterAsyncResource, keeps the scope it was bound in.
// - A `.then()` callback runs in the scope that attached it, not the one that resolved the promise.
// - `ctx` exposes no pg client or pool (only query/transaction/documents), so the library hands out no pg
//   callback API. An app's own pg connection calls its callbacks from its socket, i.e. in the scope that
//   opened the connection: one opened inside the scope is fine; one opened outside every scope gives
//   `undefined` in callbacks (its promise API keeps the caller's scope).

const TENANTS = 6;
const SCOPES = 240;
// Reproducible delays: TENANTDB_TEST_SEED=<n> replays a failing run's schedule.
const SEED = Number(process.env.TENANTDB_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));


const env = useTestPlatform();
let platform: Platform;
let tenants: Tenant[];
/** Created outside every scope: listeners are added inside scopes. */
const bus = new EventEmitter();
bus.setMaxListeners(0);
/** Connected outside every scope, shared by all of them, one scope at a time (pg queues no callbacks of its own in 9). */
let sharedClient: pg.Client;
let sharedTurn: Promise<unknown> = Promise.resolve();
function withShared<T>(fn: () => Promise<T>): Promise<T> {
  const mine = sharedTurn.then(fn);
  sharedTurn = mine.catch(() => {});
  return mine;
}

beforeAll(async () => {
  platform = await env.initPlatform();
  tenants = await Promise.all(Array.from({ length: TENANTS }, (_, i) => platform.tenants.create({ name: `Context ${i}` })));
  sharedClient = new pg.Client({ connectionString: dbUrl(tenants[0]!.databaseName) });
  await sharedClient.connect();
});

afterAll(async () => {
  await sharedClient?.end();
});

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface Observation {
  scope: number;
  where: string;
  expected: string;
  seen: string;
}

/** Who `currentTenant()` is, as a name a failure message can show. */
function seenTenant(): string {
  const c = currentTenant();
  return c ? c.tenant.name : 'none';
}

/** Everything the scopes observe, and the seeded delays they interleave by. */
class Run {
  readonly observations: Observation[] = [];
  readonly random: () => number;
  /** Scope i's ctx, once it is open: a partner checks identity, not only the tenant. */
  readonly contexts = new Map<number, TenantContext>();
  /** Resolved once scope i added its listeners / created its promise for its partner. */
  readonly ready = Array.from({ length: SCOPES }, () => deferred());
  /** What scope i hands its partner (i + 1): a promise to resolve, emitters to emit on. */
  readonly handoff = Array.from({ length: SCOPES }, () => ({
    promise: deferred<string>(),
    local: new EventEmitter(),
    resource: undefined as EventEmitterAsyncResource | undefined,
  }));
  /** Resolved when scope i's cross-scope listeners have all fired. */
  readonly fired = Array.from({ length: SCOPES }, () => deferred());

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  delay(max = 8): Promise<void> {
    return sleep(Math.floor(this.random() * max));
  }

  /** Records what `currentTenant()` is here, against the tenant scope `scope`'s code must see. */
  look(scope: number, where: string, expected: Tenant | 'none', ctx?: TenantContext): void {
    const c = currentTenant();
    const identity = ctx === undefined || c === ctx ? '' : ' (another ctx)';
    this.observations.push({ scope, where, expected: expected === 'none' ? 'none' : expected.name, seen: `${seenTenant()}${c ? identity : ''}` });
  }

  /** Observations that do not name the tenant they should. */
  problems(): Observation[] {
    return this.observations.filter((o) => o.seen !== o.expected);
  }
}

const partnerOf = (i: number): number => (i + 1) % SCOPES;
const tenantOf = (i: number): Tenant => tenants[i % TENANTS]!;

/** Timers of every kind, each callback looking at currentTenant(), one querying through it. */
async function timers(run: Run, i: number, ctx: TenantContext): Promise<void> {
  const t = tenantOf(i);
  const look = (where: string): void => run.look(i, where, t, ctx);
  await new Promise<void>((resolve) => setTimeout(() => (look('setTimeout'), resolve()), Math.floor(run.random() * 8)));
  await new Promise<void>((resolve) => setImmediate(() => (look('setImmediate'), resolve())));
  await new Promise<void>((resolve) => process.nextTick(() => (look('nextTick'), resolve())));
  await new Promise<void>((resolve) => queueMicrotask(() => (look('queueMicrotask'), resolve())));
  const databases: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let ticks = 0;
    const interval = setInterval(() => {
      look(`setInterval #${ticks}`);
      if (++ticks < 3) return;
      clearInterval(interval);
      currentTenant()!
        .query<{ db: string }>('SELECT current_database() AS db')
        .then(({ rows }) => {
          databases.push(rows[0]!.db);
          resolve();
        }, reject);
    }, 1 + Math.floor(run.random() * 4));
  });
  run.observations.push({ scope: i, where: 'query from setInterval', expected: t.databaseName, seen: databases[0] ?? 'none' });
}

/** A pipeline() whose source, transforms and sink look at currentTenant(); one transform queries through it. */
async function streams(run: Run, i: number, ctx: TenantContext): Promise<void> {
  const t = tenantOf(i);
  const look = (where: string): void => run.look(i, where, t, ctx);
  const delays = Array.from({ length: 4 }, () => Math.floor(run.random() * 6));
  async function* source(): AsyncGenerator<number> {
    for (const [n, ms] of delays.entries()) {
      await sleep(ms);
      look('source');
      yield n;
    }
  }
  const later = new Transform({
    objectMode: true,
    transform(chunk: number, _encoding, callback) {
      look('transform()');
      setTimeout(() => {
        look('transform() timer');
        callback(null, chunk);
      }, delays[chunk]);
    },
  });
  const query = new Transform({
    objectMode: true,
    transform(_chunk: number, _encoding, callback) {
      look('querying transform()');
      currentTenant()!
        .query<{ db: string }>('SELECT current_database() AS db')
        .then(({ rows }) => callback(null, rows[0]!.db), callback);
    },
    flush(callback) {
      look('flush()');
      callback();
    },
  });
  const sink = new Writable({
    objectMode: true,
    write(db: string, _encoding, callback) {
      look('write()');
      run.observations.push({ scope: i, where: 'query from transform()', expected: t.databaseName, seen: db });
      callback();
    },
    final(callback) {
      look('final()');
      callback();
    },
  });
  await pipeline(Readable.from(source()), later, query, sink);
  look('after pipeline()');
}

/**
 * Emitters: the shared bus (made outside every scope) and one made inside, emitted from this scope; then
 * this scope's listeners emitted by its partner, another tenant's scope: plain (the partner's scope),
 * bound (this scope), on an EventEmitterAsyncResource made here (this scope).
 */
async function emitters(run: Run, i: number, ctx: TenantContext): Promise<void> {
  const t = tenantOf(i);
  const partner = partnerOf(i);
  const mine = run.handoff[i]!;
  const own = new Promise<void>((resolve) => bus.once(`own ${i}`, () => (run.look(i, 'bus listener, own emit', t, ctx), resolve())));
  const inner = new EventEmitter();
  const innerFired = new Promise<void>((resolve) => inner.once('tick', () => (run.look(i, 'inner emitter, emit from a timer', t, ctx), resolve())));

  // For the partner: it emits these from its own scope.
  let pending = 3;
  const done = (): void => {
    if (--pending === 0) run.fired[i]!.resolve();
  };
  bus.once(`cross ${i}`, () => {
    run.look(i, "bus listener, partner's emit: the partner's scope", tenantOf(partner), run.contexts.get(partner));
    done();
  });
  mine.local.once(
    'bound',
    AsyncResource.bind(() => {
      run.look(i, "bound listener, partner's emit: its own scope", t, ctx);
      done();
    }),
  );
  mine.resource = new EventEmitterAsyncResource({ name: 'tenantdb-test' });
  mine.resource.once('resource', () => {
    run.look(i, "EventEmitterAsyncResource, partner's emit: its own scope", t, ctx);
    done();
  });

  await run.delay();
  bus.emit(`own ${i}`);
  setTimeout(() => inner.emit('tick'), Math.floor(run.random() * 5));
  await Promise.all([own, innerFired]);
}

/**
 * Promises across tenants: this scope awaits a promise its partner resolves (this scope after the await);
 * the partner attaches `.then` to it (the partner's scope in the callback); a nested scope of another
 * tenant, then `.then` attached outside it (this scope again).
 */
async function promises(run: Run, i: number, ctx: TenantContext): Promise<void> {
  const t = tenantOf(i);
  const resolvedBy = await run.handoff[i]!.promise.promise;
  run.look(i, `after awaiting a promise resolved by ${resolvedBy}`, t, ctx);
  const other = tenantOf(i + 2);
  const inner = await platform
    .withTenant(other, async (innerCtx) => {
      await run.delay(4);
      run.look(i, 'nested scope of another tenant', other, innerCtx);
      return innerCtx;
    })
    .then((innerCtx) => {
      run.look(i, '.then of the nested scope, attached outside it', t, ctx);
      return innerCtx;
    });
  expect(inner).not.toBe(ctx);
  run.look(i, 'after the nested scope', t, ctx);
}

/** The partner's side: resolves scope `of`'s promise, attaches a `.then` to it, emits its events. */
async function partnerWork(run: Run, me: number, of: number, ctx: TenantContext): Promise<void> {
  const t = tenantOf(me);
  await run.ready[of]!.promise;
  await run.delay();
  const handoff = run.handoff[of]!;
  const seenInThen = handoff.promise.promise.then(() => run.look(me, ".then attached by the partner: the partner's scope", t, ctx));
  handoff.promise.resolve(t.name);
  await seenInThen;
  await run.delay();
  bus.emit(`cross ${of}`);
  handoff.local.emit('bound');
  handoff.resource!.emit('resource');
  handoff.resource!.emitDestroy();
}

/** Every kind of work above in each of SCOPES concurrent scopes over TENANTS tenants. */
async function allScopes(run: Run): Promise<void> {
  await Promise.all(
    Array.from({ length: SCOPES }, async (_, i) => {
      await run.delay(20);
      await platform.withTenant(tenantOf(i), async (ctx) => {
        run.contexts.set(i, ctx);
        const work = [timers(run, i, ctx), streams(run, i, ctx), emitters(run, i, ctx)];
        // emitters() added the listeners synchronously, before its first await.
        run.ready[i]!.resolve();
        work.push(promises(run, i, ctx), partnerWork(run, i, (i + SCOPES - 1) % SCOPES, ctx), run.fired[i]!.promise);
        await Promise.all(work);
        run.look(i, 'end of scope', tenantOf(i), ctx);
      });
    }),
  );
}

describe('currentTenant() in work that leaves the scope’s own async chain', () => {
  it(`${SCOPES} concurrent scopes over ${TENANTS} tenants: timers, streams, emitters and promises each see their own tenant`, async () => {
    const run = new Run(SEED);
    await allScopes(run);
    // Every probe ran: the same number of observations in every scope.
    const perScope = run.observations.filter((o) => o.scope === 0).length;
    expect(perScope).toBeGreaterThan(30);
    expect(run.observations).toHaveLength(perScope * SCOPES);
    expect(run.problems(), `seed ${SEED}`).toEqual([]);
    expect(currentTenant()).toBeUndefined();
  }, 120_000);

  it("pg's callback API: a connection opened in the scope calls back in it; one opened outside every scope does not (bind it)", async () => {
    const run = new Run(SEED + 1);
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        await run.delay(10);
        const t = tenantOf(i);
        await platform.withTenant(t, async (ctx) => {
          const own = new pg.Client({ connectionString: dbUrl(t.databaseName) });
          await own.connect();
          try {
            await run.delay();
            const db = await new Promise<string>((resolve, reject) =>
              own.query<{ db: string }>('SELECT current_database() AS db', (err, res) => {
                run.look(i, 'callback of a connection opened in the scope', t, ctx);
                if (err) reject(err);
                else resolve(res.rows[0]!.db);
              }),
            );
            run.observations.push({ scope: i, where: 'database of that connection', expected: t.databaseName, seen: db });
            await withShared(async () => {
              await new Promise<void>((resolve, reject) =>
                sharedClient.query('SELECT 1', (err) => {
                  run.look(i, 'callback of a connection opened outside every scope', 'none');
                  if (err) reject(err);
                  else resolve();
                }),
              );
              await new Promise<void>((resolve, reject) =>
                sharedClient.query(
                  'SELECT 1',
                  AsyncResource.bind((err: Error | null) => {
                    run.look(i, 'bound callback of that connection', t, ctx);
                    if (err) reject(err);
                    else resolve();
                  }),
                ),
              );
              await sharedClient.query('SELECT 1');
            });
            run.look(i, "after awaiting that connection's promise API", t, ctx);
          } finally {
            await own.end();
          }
        });
      }),
    );
    expect(run.observations).toHaveLength(24 * 5);
    expect(run.problems(), `seed ${SEED + 1}`).toEqual([]);
  }, 120_000);
});
