import pg from 'pg';
import type { Platform, Tenant } from '../../src/index.js';
import { adminQuery, dbUrl } from './env.js';

/** The advisory lock key that {@link HITS_MIGRATION} waits for in each tenant database: see {@link holdGate}. */
const GATE = 4242;

/**
 * A tenant migration that counts its applications: it waits for the gate (free unless a test holds it), makes
 * `hits` and puts one row in it. Not idempotent: applied twice, it would fail; a tenant where `hits` already
 * exists fails it (`42P07`), which is how a test breaks a tenant.
 */
export const HITS_MIGRATION = {
  '0100_hits.sql': `SELECT pg_advisory_xact_lock(${GATE});\nCREATE TABLE hits (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());\nINSERT INTO hits DEFAULT VALUES;\n`,
  '0100_hits.down.sql': 'DROP TABLE hits;\n',
};

/** The migrations a tenant database has recorded, by name. */
export async function appliedIn(tenant: Pick<Tenant, 'databaseName'>): Promise<string[]> {
  const { rows } = await adminQuery<{ name: string }>('SELECT name FROM tenantdb_migrations ORDER BY name', [], tenant.databaseName);
  return rows.map((r) => r.name);
}

/** The rows of `hits` in a tenant database (how many times {@link HITS_MIGRATION} ran there); null when it has no `hits`. */
export async function hitsIn(tenant: Pick<Tenant, 'databaseName'>): Promise<number | null> {
  const { rows } = await adminQuery<{ t: string | null }>("SELECT to_regclass('hits')::text AS t", [], tenant.databaseName);
  if (rows[0]!.t === null) return null;
  return (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM hits', [], tenant.databaseName)).rows[0]!.n;
}

/** Breaks a tenant for {@link HITS_MIGRATION}: `hits` is already there (empty), so the migration fails. */
export async function breakHits(tenant: Pick<Tenant, 'databaseName'>): Promise<void> {
  await adminQuery('CREATE TABLE hits (id int)', [], tenant.databaseName);
}

/** Undoes {@link breakHits}. */
export async function fixHits(tenant: Pick<Tenant, 'databaseName'>): Promise<void> {
  await adminQuery('DROP TABLE hits', [], tenant.databaseName);
}

/** A held gate: {@link HITS_MIGRATION} waits in the tenant database until it is released. */
export interface HeldGate {
  /** Resolves once a migration waits at the gate. */
  waiting(timeoutMs?: number): Promise<void>;
  release(): Promise<void>;
}

/** Holds the gate of {@link HITS_MIGRATION} in one tenant database, on a session of its own. */
export async function holdGate(tenant: Pick<Tenant, 'databaseName'>): Promise<HeldGate> {
  const client = new pg.Client({ connectionString: dbUrl(tenant.databaseName) });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1)', [GATE]);
  let released = false;
  return {
    async waiting(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND classid = 0 AND objid = $1 AND objsubid = 1`,
          [GATE],
        );
        if (rows[0]!.n > 0) return;
        if (Date.now() > deadline) throw new Error(`nothing waited at the gate of ${tenant.databaseName}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async release() {
      if (released) return;
      released = true;
      await client.end();
    },
  };
}

/**
 * Tenants in groups, each labelled `group: <its name>`, so that a run can take one group alone (`labels`):
 * the groups are made at once, the tenants of a group one after the other (creation order is a run's default
 * order). `serverOf` places the ith tenant of a group (default: the platform's choice).
 */
export async function createGroups<G extends string>(
  platform: Platform,
  sizes: Record<G, number>,
  serverOf: (group: G, i: number) => string | undefined = () => undefined,
): Promise<Record<G, Tenant[]>> {
  const entries = await Promise.all(
    (Object.entries(sizes) as [G, number][]).map(async ([group, count]): Promise<[G, Tenant[]]> => {
      const tenants: Tenant[] = [];
      for (let i = 0; i < count; i++) {
        const server = serverOf(group, i);
        tenants.push(await platform.tenants.create({ name: `${group} ${i}`, labels: { group }, ...(server !== undefined && { server }) }));
      }
      return [group, tenants];
    }),
  );
  return Object.fromEntries(entries) as Record<G, Tenant[]>;
}
