// One process of the shared-budget test: a platform that runs skewed load over the tenants it is given until
// told to stop, then prints what it did. Plain JavaScript over the built package (`npm test` builds first),
// so that a child starts in a fraction of a second.
//
// Environment: BUDGET_OPTIONS (the platform's options, JSON), BUDGET_TENANTS (tenant ids, JSON), BUDGET_SEQUENCE
// (indices into the tenants, JSON: the order the callers ask for them, hottest first), BUDGET_CALLERS (concurrent
// callers). Protocol: prints `ready` once warm; stdin `go` starts the load; stdin `stop N` ends it once at least N
// calls succeeded since `go` (or 30 s passed; `stop` alone: at once), and the child prints one JSON line `{ calls, errors, pools }`
// (errors counted by code, the pool counters), then exits. The minimum makes the amount of work a given, not a
// matter of how fast the machine is.
import { createInterface } from 'node:readline';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { createPlatform } from '../../dist/index.js';

const options = JSON.parse(process.env.BUDGET_OPTIONS);
const tenants = JSON.parse(process.env.BUDGET_TENANTS);
const sequence = JSON.parse(process.env.BUDGET_SEQUENCE);
const callers = Number(process.env.BUDGET_CALLERS);

const platform = createPlatform(options);
await platform.withTenant(tenants[0], (ctx) => ctx.query('SELECT 1'));
let stopping = false;
let calls = 0;
/** Set by `stop N`: called once `calls` reaches N. */
let reached;
let stopAt = Infinity;
const errors = {};
let next = Math.floor(Math.random() * sequence.length);

const caller = async () => {
  while (!stopping) {
    const tenant = tenants[sequence[next++ % sequence.length]];
    try {
      await platform.withTenant(tenant, (ctx) => ctx.query('SELECT pg_sleep(0.002)'));
      if (++calls >= stopAt) reached?.();
    } catch (err) {
      const code = err?.code ?? String(err);
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
};

const lines = createInterface({ input: process.stdin });
let load;
lines.on('line', async (line) => {
  if (line === 'go') load = Promise.all(Array.from({ length: callers }, caller));
  if (line.startsWith('stop')) {
    stopAt = Number(line.slice(4).trim() || 0);
    // Bounded, so that a child whose calls fail reports them instead of hanging the test.
    if (calls < stopAt) await new Promise((resolve) => ((reached = resolve), setTimeout(resolve, 30_000).unref()));
    stopping = true;
    await load;
    const { pools } = platform.stats();
    await platform.close();
    process.stdout.write(`${JSON.stringify({ calls, errors, pools })}\n`);
    lines.close();
  }
});
process.stdout.write('ready\n');
