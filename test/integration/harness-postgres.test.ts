import { describe, expect, it } from 'vitest';
import { adminQuery, dropPlatformDatabases, uniqueName } from '../support/env.js';

describe('test harness: PostgreSQL', () => {
  it('answers a round trip over a socket', async () => {
    const { rows } = await adminQuery<{ sum: number; version: string }>('SELECT $1::int + $2::int AS sum, version()', [40, 2]);
    expect(rows[0]!.sum).toBe(42);
    expect(rows[0]!.version).toMatch(/^PostgreSQL \d+/);
  });

  it('creates and drops a uniquely named database', async () => {
    const name = uniqueName('tdbt_smoke');
    await adminQuery(`CREATE DATABASE "${name}"`);
    await adminQuery('CREATE TABLE t (v int); INSERT INTO t VALUES (7)', [], name).catch(async (err) => {
      await dropPlatformDatabases(name);
      throw err;
    });
    const { rows } = await adminQuery<{ v: number }>('SELECT v FROM t', [], name);
    expect(rows).toEqual([{ v: 7 }]);
    await dropPlatformDatabases(name);
    const gone = await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    expect(gone.rowCount).toBe(0);
  });
});
