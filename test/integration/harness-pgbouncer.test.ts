import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminQuery, dropPlatformDatabases, uniqueName } from '../support/env.js';
import { describeWithPgBouncer, viaPgBouncer, type PgBouncerMode } from '../support/pgbouncer.js';

// Every client pooledClient() connects, ended after its describe block.
const clients: pg.Client[] = [];

/** A connected client on `database` through the harness' PgBouncer in `mode`, ended after the block. */
async function pooledClient(mode: PgBouncerMode, database: string, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: viaPgBouncer(mode, database), ...extra });
  clients.push(client);
  await client.connect();
  return client;
}

/** The error connecting through PgBouncer fails with; fails the test if the connection succeeds. */
async function connectError(mode: PgBouncerMode, database: string, extra: pg.ClientConfig = {}): Promise<pg.DatabaseError> {
  const client = new pg.Client({ connectionString: viaPgBouncer(mode, database), ...extra });
  const err = await client.connect().then(
    async () => {
      await client.end();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(pg.DatabaseError);
  return err as pg.DatabaseError;
}

const backendPid = async (client: pg.Client): Promise<number> =>
  (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

for (const mode of ['session', 'transaction'] as const) {
  describeWithPgBouncer(`test harness: PgBouncer in ${mode} mode`, () => {
    // Created on the server directly: PgBouncer forwards any database name, including new ones.
    const database = uniqueName(`tdbt_bouncer_${mode.slice(0, 4)}`);
    beforeAll(async () => {
      await adminQuery(`CREATE DATABASE "${database}"`);
    });
    afterAll(async () => {
      await Promise.allSettled(clients.splice(0).map((c) => c.end()));
      // WITH (FORCE) also ends the idle server connections PgBouncer keeps in its pool.
      await dropPlatformDatabases(database);
    });

    it('answers a query on a database created for the test', async () => {
      const client = await pooledClient(mode, database);
      const { rows } = await client.query<{ one: number; db: string }>('SELECT 1 AS one, current_database() AS db');
      expect(rows).toEqual([{ one: 1, db: database }]);
    });

    it(`runs in ${mode} mode`, async () => {
      // The admin console (database `pgbouncer`, for admin_users) shows the PgBouncer's own settings.
      const admin = await pooledClient(mode, 'pgbouncer');
      const { rows } = await admin.query<{ key: string; value: string }>('SHOW CONFIG');
      expect(rows.find((r) => r.key === 'pool_mode')?.value).toBe(mode);
    });

    if (mode === 'session') {
      it('keeps one server connection per client, while another client holds a transaction open', async () => {
        const holder = await pooledClient(mode, database);
        await holder.query('BEGIN');
        const heldPid = await backendPid(holder);
        const client = await pooledClient(mode, database);
        const first = await backendPid(client);
        const second = await backendPid(client);
        expect(second).toBe(first);
        expect(first).not.toBe(heldPid);
        await holder.query('COMMIT');
      });
    }

    if (mode === 'transaction') {
      it('reports a database that does not exist with SQLSTATE 08P01, not the server\'s 3D000', async () => {
        const missing = uniqueName('tdbt_bouncer_missing');
        const err = await connectError(mode, missing);
        // PgBouncer passes on the server's message, under its own code for a failed server login.
        expect({ code: err.code, message: err.message }).toEqual({ code: '08P01', message: `database "${missing}" does not exist` });
      });

      it('refuses a startup parameter it does not know with SQLSTATE 08P01', async () => {
        // pg sends its statement_timeout option as a startup parameter, which PgBouncer does not forward.
        const err = await connectError(mode, database, { statement_timeout: 5000 });
        expect({ code: err.code, message: err.message }).toEqual({ code: '08P01', message: 'unsupported startup parameter: statement_timeout' });
      });
    }
  });
}
