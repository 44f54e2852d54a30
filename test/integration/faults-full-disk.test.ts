import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Platform, Tenant } from '../../src/index.js';
import { startPostgres, type RunningServer } from '../../scripts/dev-servers.js';
import { listKeys, useTestPlatform, useTestS3Client } from '../support/env.js';
import { rejectionOf } from '../support/errors.js';

const run = promisify(execFile);

/**
 * A small tmpfs for a tablespace of a PostgreSQL of the test's own (the data folder and the WAL stay on the
 * normal disk, so a full tablespace fails statements, never the server). Needs root and a kernel that lets
 * this process mount; otherwise the file is skipped, and says why.
 */
async function mountSmallDisk(): Promise<{ mountPoint?: string; skip?: string }> {
  if (process.env.TENANTDB_TEST_PG_URL) return { skip: 'TENANTDB_TEST_PG_URL is set: no PostgreSQL of the test\'s own' };
  if (process.getuid?.() !== 0) return { skip: 'not root: cannot mount a tmpfs' };
  const mountPoint = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-full-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mountPoint]);
    return { mountPoint };
  } catch (err) {
    await rm(mountPoint, { recursive: true, force: true });
    return { skip: `cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}` };
  }
}

const disk = await mountSmallDisk();
if (disk.skip) console.log(`faults-full-disk skipped: ${disk.skip}`);

describe.skipIf(Boolean(disk.skip))('faults: a full disk under PostgreSQL', () => {
  const env = useTestPlatform();
  const s3 = useTestS3Client();
  const mountPoint = disk.mountPoint!;
  let server: RunningServer | undefined;
  let platform: Platform;
  let tenant: Tenant;
  const userId = randomUUID();

  async function ownQuery(database: string, sql: string): Promise<pg.QueryResult> {
    const u = new URL(server!.url);
    u.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: u.toString() });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** Moves `tables` of `database`, with their indexes, to the small tablespace: empty, their next row needs a new page there. */
  async function moveToSmallDisk(database: string, tables: string[]): Promise<void> {
    const list = tables.map((t) => `'${t}'::regclass`).join(', ');
    const indexes = await ownQuery(database, `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid IN (${list})`);
    const statements = [
      ...tables.map((t) => `ALTER TABLE ${t} SET TABLESPACE small`),
      ...indexes.rows.map((r: { name: string }) => `ALTER INDEX ${r.name} SET TABLESPACE small`),
    ];
    await ownQuery(database, statements.join('; '));
  }

  /** Fills the small tablespace from `database` until PostgreSQL says it is full (53100). */
  async function fillDisk(database: string): Promise<void> {
    await ownQuery(database, 'CREATE TABLE filler (b text) TABLESPACE small');
    for (let i = 0; i < 100; i++) {
      const err = await ownQuery(database, "INSERT INTO filler SELECT repeat(md5(random()::text), 30) FROM generate_series(1, 1000)").then(
        () => undefined,
        (e: unknown) => e,
      );
      if (err) {
        expect(err).toMatchObject({ code: '53100' });
        return;
      }
    }
    throw new Error('the small tablespace never filled up');
  }

  const rowCount = async (): Promise<number> =>
    Number(
      (await ownQuery(tenant.databaseName, 'SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM files) AS n')).rows[0].n,
    );

  beforeAll(async () => {
    server = await startPostgres({}, false);
    expect(server.kind).toBe('embedded');
    // The server's user (made by its first start, if need be) owns the tablespace's folder.
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    await run('chown', [`${uid.trim()}:${gid.trim()}`, mountPoint]);
    await ownQuery('postgres', `CREATE TABLESPACE small LOCATION '${mountPoint}'`);
    const u = new URL(server.url);
    u.pathname = `/${env.mainDb}`;
    platform = env.platform({ mainUrl: u.toString(), tenantSpares: 0 });
    await platform.init();
    tenant = await platform.tenants.create({ name: 'Full disk' });
    await moveToSmallDisk(tenant.databaseName, ['documents', 'files']);
    await moveToSmallDisk(env.mainDb, ['users']);
    await fillDisk(tenant.databaseName);
  });
  afterAll(async () => {
    await platform?.close();
    await server?.stop();
    await run('umount', [mountPoint]).catch(() => {});
    await rm(mountPoint, { recursive: true, force: true });
  });

  it('an upload whose rows cannot be written: DATABASE with 53100 as cause, no rows, no object', async () => {
    const err = await rejectionOf(
      platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'full.txt', body: 'no room', userId })),
    );
    expect(err.code).toBe('DATABASE');
    expect(err.cause).toMatchObject({ code: '53100' });
    expect(await rowCount()).toBe(0);
    // The object went up before the rows failed; the upload deleted it again.
    expect(await listKeys(s3, inject('s3Bucket'), env.prefix)).toEqual([]);
  });

  it('a user create: DATABASE with 53100 as cause, and no user', async () => {
    const err = await rejectionOf(
      platform.users.create({ firstName: 'Full', lastName: 'Disk', email: 'full@example.com', password: 'correct horse' }),
    );
    expect(err.code).toBe('DATABASE');
    expect(err.cause).toMatchObject({ code: '53100' });
    expect(await platform.users.findByEmail('full@example.com')).toBeNull();
  });

  it('works again once space is freed', async () => {
    await ownQuery(tenant.databaseName, 'DROP TABLE filler');
    const doc = await platform.withTenant(tenant, (ctx) => ctx.documents.upload({ filename: 'full.txt', body: 'room now', userId }));
    expect(doc.sizeBytes).toBe(8);
    expect(await rowCount()).toBe(2);
    const user = await platform.users.create({ firstName: 'Full', lastName: 'Disk', email: 'full@example.com', password: 'correct horse' });
    expect((await platform.users.get(user.id)).email).toBe('full@example.com');
  });
});
