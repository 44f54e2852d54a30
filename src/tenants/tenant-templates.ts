import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  clientConnector,
  createSqlUmzug,
  loadMigrationFiles,
  migrationSetChecksum,
  type SqlMigrationFile,
} from '../migrations/sql-migrations.js';
import type { PlatformContext } from '../platform/platform-context.js';
import { databaseOf } from '../util/redact.js';
import { quoteDatabaseName } from '../util/sql.js';
import type { ServerAdmin } from './server-admin.js';

/** Templates kept per server: the newest, and the previous ones a rolling deploy may still use. */
const KEPT_TEMPLATES = 3;

/**
 * One template database per tenant server, migrated to the latest tenant schema (built-in and host
 * migrations), from which new tenant databases are cloned in milliseconds. A new template is built, under
 * a new name, when the set of tenant migrations changes (the three newest of a server are kept); building
 * is serialised across processes by an advisory lock on the main database. The library never keeps a connection open to a template:
 * it is built, then closed to connections (`ALLOW_CONNECTIONS false`), so cloning never waits.
 * @internal
 */
export class TenantTemplates {
  readonly #ctx: PlatformContext;
  readonly #admin: ServerAdmin;
  #files: Promise<SqlMigrationFile[]> | undefined;
  readonly #ready = new Map<string, { name: string; checksum: string }>();
  readonly #building = new Map<string, Promise<string>>();

  constructor(ctx: PlatformContext, admin: ServerAdmin) {
    this.#ctx = ctx;
    this.#admin = admin;
  }

  /** The tenant migrations, built-in then the host's, read once. */
  files(): Promise<SqlMigrationFile[]> {
    this.#files ??= loadMigrationFiles('tenant', this.#ctx.options.tenantMigrations).catch((err: unknown) => {
      this.#files = undefined;
      throw err;
    });
    return this.#files;
  }

  /** The name of the server's template at the current migration set (built if missing or stale). */
  async ensure(server: string): Promise<string> {
    const checksum = migrationSetChecksum(await this.files());
    const known = this.#ready.get(server);
    if (known?.checksum === checksum) return known.name;
    let building = this.#building.get(server);
    if (!building) {
      building = this.#ensure(server, checksum).finally(() => this.#building.delete(server));
      this.#building.set(server, building);
    }
    return building;
  }

  /** Forgets what this process knows of a server's template (another process may have rebuilt it). */
  forget(server: string): void {
    this.#ready.delete(server);
  }

  #templateName(server: string, checksum: string): string {
    const owner = createHash('sha256').update(`${databaseOf(this.#ctx.options.mainUrl)}\0${server}`).digest('hex');
    return `tenantdb_tpl_${owner.slice(0, 8)}_${checksum.slice(0, 8)}`;
  }

  async #current(client: pg.ClientBase, server: string, checksum: string): Promise<{ name: string; checksum: string } | undefined> {
    const { rows } = await client.query<{ database_name: string }>(
      'SELECT database_name FROM tenant_templates WHERE server = $1 AND checksum = $2',
      [server, checksum],
    );
    const row = rows[0];
    return row && { name: row.database_name, checksum };
  }

  /**
   * Drops all but the newest {@link KEPT_TEMPLATES} templates of a server. Older ones are kept a while so
   * that, during a rolling deploy, processes still on the previous migration set find theirs instead of
   * rebuilding it (and the new processes then rebuilding theirs, back and forth).
   */
  async #prune(client: pg.ClientBase, server: string): Promise<void> {
    const { rows } = await client.query<{ database_name: string }>(
      `SELECT database_name FROM tenant_templates WHERE server = $1 ORDER BY updated_at DESC OFFSET ${KEPT_TEMPLATES}`,
      [server],
    );
    for (const { database_name: name } of rows) {
      await this.#admin.dropDatabase(server, name);
      await client.query('DELETE FROM tenant_templates WHERE server = $1 AND database_name = $2', [server, name]);
    }
  }

  async #ensure(server: string, checksum: string): Promise<string> {
    const client = await this.#ctx.main.connect();
    let broken = false;
    try {
      const fresh = async (): Promise<string | undefined> => {
        const row = await this.#current(client, server, checksum);
        // Complete, not merely present: a build that failed or crashed half way can leave the database behind.
        if (row && (await this.#admin.isCompleteTemplate(server, row.name))) {
          this.#ready.set(server, row);
          return row.name;
        }
        return undefined;
      };
      const quick = await fresh();
      if (quick) return quick;

      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`tenantdb:template:${server}`]);
      try {
        const built = await fresh(); // another process may have built it while we waited
        if (built) return built;
        const name = this.#templateName(server, checksum);
        this.#ctx.logger.info({ server, template: name }, 'building tenant template');
        await this.#admin.dropDatabase(server, name); // a leftover of a build that crashed
        try {
          await this.#admin.createDatabase(server, name);
          const umzug = createSqlUmzug({
            connect: clientConnector(this.#admin.databaseUrl(server, name)),
            files: await this.files(),
            family: 'tenant',
            logger: this.#ctx.logger,
          });
          await umzug.up();
          // The last step of a build, and so its mark of completion (see isCompleteTemplate).
          await this.#admin.query(server, `ALTER DATABASE ${quoteDatabaseName(name)} WITH ALLOW_CONNECTIONS false`);
        } catch (err) {
          // Never leave a half-migrated database under a template's name for a later create to clone.
          await this.#admin.dropDatabase(server, name).catch(() => {});
          throw err;
        }
        await client.query(
          `INSERT INTO tenant_templates (server, database_name, checksum, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (server, checksum) DO UPDATE SET database_name = EXCLUDED.database_name, updated_at = now()`,
          [server, name, checksum],
        );
        await this.#prune(client, server);
        this.#ready.set(server, { name, checksum });
        return name;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`tenantdb:template:${server}`]).catch(() => {
          broken = true;
        });
      }
    } catch (err) {
      broken = true;
      throw err;
    } finally {
      client.release(broken);
    }
  }
}
