import { afterAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../src/index.js';
import { adminQuery, useTestPlatform } from '../support/env.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('spare tenant databases', () => {
  const env = useTestPlatform();
  let platform: Platform;

  async function spares(): Promise<Array<{ database_name: string; ready: boolean }>> {
    const { rows } = await adminQuery<{ database_name: string; ready: boolean }>(
      'SELECT database_name, ready FROM tenant_spares ORDER BY created_at',
      [],
      env.mainDb,
    );
    return rows;
  }

  async function readySpares(count: number): Promise<string[]> {
    for (let i = 0; i < 200; i++) {
      const rows = await spares();
      if (rows.length === count && rows.every((r) => r.ready)) return rows.map((r) => r.database_name);
      await sleep(50);
    }
    throw new Error(`spares never reached ${count}: ${JSON.stringify(await spares())}`);
  }

  async function exists(name: string): Promise<boolean> {
    return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  }

  afterAll(async () => {
    await platform?.close();
  });

  it('keeps tenantSpares clones ready after init, and create renames one instead of cloning', async () => {
    platform = env.platform({ tenantSpares: 2 });
    await platform.init();
    const before = await readySpares(2);
    const tenant = await platform.tenants.create({ name: 'From a spare' });
    // The oldest spare became the tenant's database…
    expect(await exists(before[0]!)).toBe(false);
    expect(await exists(tenant.databaseName)).toBe(true);
    const tables = await platform.withTenant(tenant, (ctx) =>
      ctx.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"),
    );
    expect(tables.rows.map((r) => r.t)).toEqual(['documents', 'files', 'tenantdb_migrations']);
    // …and a new spare is cloned in the background.
    const after = await readySpares(2);
    expect(after).toContain(before[1]);
    expect(after).not.toContain(before[0]);
  });

  it('falls back to cloning when a spare was lost behind its back', async () => {
    const [lost] = await readySpares(2);
    await adminQuery(`DROP DATABASE "${lost}"`);
    const [other] = (await spares()).filter((r) => r.database_name !== lost).map((r) => r.database_name);
    await adminQuery(`DROP DATABASE "${other}"`);
    const tenant = await platform.tenants.create({ name: 'After the loss' });
    expect(tenant.status).toBe('ready');
    expect(await exists(tenant.databaseName)).toBe(true);
    await readySpares(2);
    expect((await spares()).map((r) => r.database_name)).not.toContain(lost);
  });

  it('serves creates from spares when the template vanished, and the next refill rebuilds the template', async () => {
    await readySpares(2);
    const { rows } = await adminQuery<{ database_name: string }>('SELECT database_name FROM tenant_templates', [], env.mainDb);
    await adminQuery(`DROP DATABASE "${rows[0]!.database_name}" WITH (FORCE)`);
    const tenant = await platform.tenants.create({ name: 'Template gone' });
    expect(tenant.status).toBe('ready');
    await readySpares(2);
    const rebuilt = await adminQuery<{ database_name: string }>(
      'SELECT database_name FROM tenant_templates ORDER BY updated_at DESC LIMIT 1',
      [],
      env.mainDb,
    );
    expect(await exists(rebuilt.rows[0]!.database_name)).toBe(true);
  });

  it('init removes what crashes left: unfinished rows, and spare databases with no row', async () => {
    await readySpares(2);
    const [spare] = await readySpares(2);
    const prefix = spare!.slice(0, spare!.lastIndexOf('_') + 1);
    const orphan = `${prefix}0000deadbeef`;
    const unfinished = `${prefix}0000feedf00d`;
    await adminQuery(`CREATE DATABASE "${orphan}"`);
    const checksum = (await adminQuery<{ checksum: string }>('SELECT checksum FROM tenant_spares LIMIT 1', [], env.mainDb)).rows[0]!.checksum;
    await adminQuery(
      `INSERT INTO tenant_spares (database_name, server, checksum, ready, created_at) VALUES ($1, 'default', $2, false, now() - interval '2 minutes')`,
      [unfinished, checksum],
      env.mainDb,
    );
    await adminQuery(`CREATE DATABASE "${unfinished}"`);
    await platform.close();
    platform = env.platform({ tenantSpares: 2 });
    await platform.init();
    expect(await exists(orphan)).toBe(false);
    expect(await exists(unfinished)).toBe(false);
    expect((await spares()).map((r) => r.database_name)).not.toContain(unfinished);
  });

  it('close() waits for a refill in flight: every spare database has its row', async () => {
    await platform.tenants.create({ name: 'Then close' });
    await platform.close();
    const rows = await spares();
    const prefix = rows[0]!.database_name.slice(0, rows[0]!.database_name.lastIndexOf('_') + 1);
    const dbs = await adminQuery<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [prefix]);
    expect(dbs.rows.map((r) => r.datname).sort()).toEqual(rows.map((r) => r.database_name).sort());
  });

  it('tenantSpares: 0 clones on demand and keeps none', async () => {
    const none = env.platform({ tenantSpares: 0 });
    for (const row of await spares()) await adminQuery(`DROP DATABASE IF EXISTS "${row.database_name}"`);
    await adminQuery('DELETE FROM tenant_spares', [], env.mainDb);
    const tenant = await none.tenants.create({ name: 'No spares' });
    expect(tenant.status).toBe('ready');
    await sleep(200);
    expect(await spares()).toEqual([]);
  });
});
