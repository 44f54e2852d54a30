import pg from 'pg';
import type { PlatformOptions } from '../../index.js';
import type { Command } from '../command-context.js';
import { databaseUrl, mainDatabaseName, quoteIdent } from '../database-urls.js';

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {}); // a dying connection is reported by the query that fails
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The direct URL of a tenant server's `postgres` database, or undefined for a server this config does not name. */
function serverAdminUrl(options: PlatformOptions, server: string): string | undefined {
  const configured = options.tenantServers?.[server];
  const url =
    typeof configured === 'object' && configured !== null
      ? (configured.adminUrl ?? configured.url)
      : (configured ?? (server === 'default' ? (options.mainAdminUrl ?? options.mainUrl) : undefined));
  return url === undefined ? undefined : databaseUrl(url);
}

/**
 * `tenantdb reset --yes` (development): drops every tenant the main database lists (database and stored
 * objects, through `tenants.drop`), the tenant templates and spare databases it lists, then the main database itself. The
 * public API has no call for the last two, so they go through `pg` on the server's `postgres` database.
 * If a tenant cannot be dropped, nothing else is: the main database still lists what is left.
 */
export const resetCommand: Command = async ({ platform, options, print, note }) => {
  const mainDatabase = mainDatabaseName(options.mainUrl);
  const adminUrl = databaseUrl(options.mainAdminUrl ?? options.mainUrl);
  const exists = await withClient(adminUrl, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [mainDatabase])).rowCount === 1);
  if (!exists) {
    print(`main database "${mainDatabase}" does not exist: nothing to reset`);
    return { json: { mainDatabase, existed: false, tenantsDropped: [], templatesDropped: [], sparesDropped: [] } };
  }

  // A main database that init() never finished may lack any of these tables.
  const tables = await withClient(options.mainUrl, async (c) => {
    const { rows } = await c.query<{ tenants: string | null; templates: string | null; spares: string | null }>(
      `SELECT to_regclass('public.tenants')::text AS tenants, to_regclass('public.tenant_templates')::text AS templates,
              to_regclass('public.tenant_spares')::text AS spares`,
    );
    return rows[0]!;
  });

  const tenantsDropped: Array<{ id: string; databaseName: string }> = [];
  if (tables.tenants !== null) {
    for (const tenant of await platform.tenants.list({ includeInactive: true })) {
      note(`dropping tenant ${tenant.databaseName}`);
      await platform.tenants.drop(tenant.id);
      tenantsDropped.push({ id: tenant.id, databaseName: tenant.databaseName });
    }
  }

  // The main database goes last, and the platform's pools on it must be gone first. Closing also waits
  // for spare databases still being cloned, so the lists read next are complete.
  await platform.close();
  const listed = async (table: string): Promise<Array<{ server: string; database_name: string }>> =>
    withClient(options.mainUrl, async (c) => (await c.query<{ server: string; database_name: string }>(`SELECT server, database_name FROM ${table}`)).rows);
  const templates = tables.templates === null ? [] : await listed('tenant_templates');
  const spares = tables.spares === null ? [] : await listed('tenant_spares');

  const dropAll = async (rows: Array<{ server: string; database_name: string }>, what: string): Promise<string[]> => {
    const dropped: string[] = [];
    for (const { server, database_name: name } of rows) {
      const url = serverAdminUrl(options, server);
      if (url === undefined) {
        note(`skipping ${what} ${name}: server "${server}" is not in this configuration`);
        continue;
      }
      await withClient(url, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
      dropped.push(name);
    }
    return dropped;
  };
  const templatesDropped = await dropAll(templates, 'template');
  const sparesDropped = await dropAll(spares, 'spare database');
  await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(mainDatabase)} WITH (FORCE)`));

  print(
    `reset: dropped ${tenantsDropped.length} tenant(s), ${templatesDropped.length} template(s), ${sparesDropped.length} spare database(s) and the main database "${mainDatabase}"`,
  );
  return { json: { mainDatabase, existed: true, tenantsDropped, templatesDropped, sparesDropped } };
};
