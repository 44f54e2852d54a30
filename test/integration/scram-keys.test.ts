import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantDbError } from '../../src/errors.js';
import { openClient } from '../../src/connections/timed-client.js';
import { TenantPoolManager, type PoolKey } from '../../src/pools/tenant-pool-manager.js';
import { scramDerivations } from '../../src/util/scram.js';
import { adminQuery, serverUrl, uniqueName } from '../support/env.js';

// A role of its own, so that the keys derived for it are this file's alone.
const ROLE = uniqueName('tdbt_scram');
const DB = uniqueName('tdbt_scram_db');
let password = `pw-${ROLE}`;

function url(pass: string, database = DB): string {
  const u = new URL(serverUrl());
  u.username = ROLE;
  u.password = pass;
  u.pathname = `/${database}`;
  return u.toString();
}

const serverOf = (pass: string): string => url(pass, '').replace(/\/$/, '');

/** True when the server asked this role for SCRAM (the harness' embedded server does; a trust server does not). */
let scram = false;

beforeAll(async () => {
  await adminQuery(`CREATE ROLE "${ROLE}" LOGIN PASSWORD '${password}'`);
  await adminQuery(`CREATE DATABASE "${DB}" OWNER "${ROLE}"`);
  const before = scramDerivations();
  const client = await openClient(url(password), 10_000);
  await client.end();
  scram = scramDerivations() === before + 1;
});

afterAll(async () => {
  await adminQuery(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  await adminQuery(`DROP ROLE IF EXISTS "${ROLE}"`);
});

describe('SCRAM keys derived once', () => {
  it('opens a hundred tenant connections, with the server checking each, and derives no key again', async (ctx) => {
    if (!scram) ctx.skip(); // the server does not use SCRAM for this role: nothing to derive
    const pools = new TenantPoolManager({ maxConnectionsPerTenant: 100, maxConnections: 100, idleMs: 30_000, acquireTimeoutMs: 30_000 });
    try {
      const key: PoolKey = { server: serverOf(password), database: DB };
      const before = scramDerivations();
      const pids = await Promise.all(
        Array.from({ length: 100 }, () =>
          pools.withClient(key, async (client) => {
            const { rows } = await client.query<{ pid: number; user: string }>('SELECT pg_backend_pid() AS pid, current_user AS user');
            await new Promise((resolve) => setTimeout(resolve, 50)); // hold it, so that the hundred are open at once
            return rows[0]!;
          }),
        ),
      );
      expect(new Set(pids.map((r) => r.pid)).size).toBe(100);
      expect(pids.every((r) => r.user === ROLE)).toBe(true);
      expect(scramDerivations()).toBe(before);
      expect(pools.stats().pools.misses).toBe(100);
    } finally {
      await pools.close();
    }
  });

  it('still refuses a wrong password, and follows a password change (new salt, new keys)', async (ctx) => {
    if (!scram) ctx.skip();
    const wrong = await openClient(url('not-the-password'), 10_000).then(
      (c) => c.end().then(() => undefined),
      (err: unknown) => err,
    );
    expect(isTenantDbError(wrong) && wrong.code).toBe('DATABASE');
    expect((wrong as Error).message).not.toContain('not-the-password');

    const old = password;
    password = `new-${old}`;
    await adminQuery(`ALTER ROLE "${ROLE}" PASSWORD '${password}'`);
    const before = scramDerivations();
    const stale = await openClient(url(old), 10_000).then(
      (c) => c.end().then(() => undefined),
      (err: unknown) => err,
    );
    expect(isTenantDbError(stale) && stale.code).toBe('DATABASE');
    const fresh = await openClient(url(password), 10_000);
    expect((await fresh.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe(ROLE);
    await fresh.end();
    expect(scramDerivations()).toBe(before + 2);
  });
});
