import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  createSqlUmzug,
  loadMigrationFiles,
  migrationSetChecksum,
  type SqlMigrationFile,
} from '../migrations/sql-migrations.js';
import type { PlatformContext } from '../core/platform-context.js';
import { databaseOf } from '../util/redact.js';
import { quoteDatabaseName } from '../util/sql.js';
import { step } from '../util/steps.js';
import { PG, sqlState } from '../util/pg-errors.js';
import { TENANT_GRANTS, type ServerAdmin } from './server-admin.js';

/** Templates kept per server: the newest, and the previous ones a rolling deploy may still use. */
const KEPT_TEMPLATES = 3;

/**
 * One template database per tenant server, migrated to the latest tenant schema (built-in and host
 * migrations), from which new tenant databases are cloned in milliseconds. A new template is built, under
 * a new name, when the set of tenant migrations changes (the three newest of a server are kept); building
 * is serialised across processes by an advisory lock on the main database (on a connection of its own, never a pooled one).
 * The library never keeps a connection open to a template:
 * it is built, then closed to connections (`ALLOW_CONNECTIONS false`), so cloning never waits.
 * @internal
 */
export class TenantTemplates {
  readonly #ctx: PlatformContext;
  readonly #admin: ServerAdmin;
  #files: Promise<SqlMigrationFile[]> | undefined;
  readonly #ready = new Map<string, { name: string; checksum: string }>();
  readonly #building = new Map<string, Promise<string>>();
  readonly #refilling = new Map<string, Promise<void>>();

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
    const checksum = this.#checksum(await this.files());
    const known = this.#ready.get(server);
    if (known?.checksum === checksum) return known.name;
    let building = this.#building.get(server);
    if (!building) {
      building = this.#ensure(server, checksum).finally(() => this.#building.delete(server));
      this.#building.set(server, building);
    }
    return building;
  }

  /** The template's identity: its migration set, and whether it carries the grants of `tenantRoles`. */
  #checksum(files: SqlMigrationFile[]): string {
    const checksum = migrationSetChecksum(files);
    return this.#ctx.options.tenantRoles ? createHash('sha256').update(`${checksum}\0tenantRoles`).digest('hex') : checksum;
  }

  /** Forgets what this process knows of a server's template (another process may have rebuilt it). */
  forget(server: string): void {
    this.#ready.delete(server);
  }

  /** 8 hex naming this platform's (main database's) databases on a server. */
  #owner(server: string): string {
    return createHash('sha256').update(`${databaseOf(this.#ctx.options.mainUrl)}\0${server}`).digest('hex').slice(0, 8);
  }

  #templateName(server: string, checksum: string): string {
    return `tenantdb_tpl_${this.#owner(server)}_${checksum.slice(0, 8)}`;
  }

  #sparePrefix(server: string): string {
    return `tenantdb_spare_${this.#owner(server)}_`;
  }

  /**
   * Takes a ready spare of the server's current template and renames it to `database`. False when there is
   * none (or it could not be renamed): the caller clones the template instead.
   */
  async claimSpare(server: string, database: string): Promise<boolean> {
    const checksum = this.#ready.get(server)?.checksum;
    if (this.#ctx.options.tenantSpares === 0 || checksum === undefined) return false;
    const { rows } = await this.#ctx.main.query<{ database_name: string }>(
      `DELETE FROM tenant_spares WHERE database_name = (
         SELECT database_name FROM tenant_spares WHERE server = $1 AND checksum = $2 AND ready
          ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING database_name`,
      [server, checksum],
    );
    const spare = rows[0]?.database_name;
    if (spare === undefined) return false;
    step('spare:claimed', { databaseName: spare, server });
    try {
      await this.#admin.query(server, `ALTER DATABASE ${quoteDatabaseName(spare)} RENAME TO ${quoteDatabaseName(database)}`);
      return true;
    } catch (err) {
      // Gone or in use behind our back: it is no use as a spare any more.
      this.#ctx.logger.warn({ server, spare, err: (err as Error).message }, 'could not use a spare tenant database');
      await this.#admin.dropDatabase(server, spare).catch(() => {});
      return false;
    }
  }

  /** Tops the server's spares up to `tenantSpares`, in the background; `close()` waits for it. */
  refill(server: string): void {
    if (this.#ctx.options.tenantSpares === 0 || this.#ctx.closed || this.#refilling.has(server)) return;
    // Taken now: after close() starts, `ctx.main` refuses, but this pool stays open until the refill is done.
    const main = this.#ctx.main;
    const work = this.#refill(main, server)
      .catch((err: unknown) => this.#ctx.logger.warn({ server, err: (err as Error).message }, 'could not clone a spare tenant database'))
      .finally(() => this.#refilling.delete(server));
    this.#refilling.set(server, work);
  }

  async #refill(main: pg.Pool, server: string): Promise<void> {
    try {
      await this.#refillFrom(main, server, await this.ensure(server));
    } catch (err) {
      // The template went behind this process's back (another process rebuilt it): look again, once.
      if (sqlState(err) !== PG.INVALID_CATALOG_NAME) throw err;
      this.forget(server);
      await this.#refillFrom(main, server, await this.ensure(server));
    }
  }

  async #refillFrom(main: pg.Pool, server: string, template: string): Promise<void> {
    const checksum = this.#ready.get(server)?.checksum;
    if (checksum === undefined) return;
    while (!this.#ctx.closed) {
      const { rows } = await main.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM tenant_spares WHERE server = $1 AND checksum = $2',
        [server, checksum],
      );
      if (rows[0]!.n >= this.#ctx.options.tenantSpares) return;
      const name = `${this.#sparePrefix(server)}${randomBytes(6).toString('hex')}`;
      // The row first (not ready): a database of ours is never without a row, except for a claim in flight.
      await main.query('INSERT INTO tenant_spares (database_name, server, checksum) VALUES ($1, $2, $3)', [name, server, checksum]);
      step('spare:registered', { databaseName: name, server });
      try {
        await this.#admin.createDatabase(server, name, template);
        // A spare waits closed: only the tenant role it is renamed for may connect to it.
        if (this.#ctx.options.tenantRoles) await this.#admin.query(server, `REVOKE ALL ON DATABASE ${quoteDatabaseName(name)} FROM PUBLIC`);
        step('spare:cloned', { databaseName: name, server });
        await main.query('UPDATE tenant_spares SET ready = true WHERE database_name = $1', [name]);
      } catch (err) {
        await this.#admin.dropDatabase(server, name).catch(() => {});
        await main.query('DELETE FROM tenant_spares WHERE database_name = $1', [name]).catch(() => {});
        throw err;
      }
    }
  }

  /**
   * Removes what crashes and template changes left of spares: rows never finished (older than a minute),
   * spares of templates no longer kept, and spare databases of this platform with no row.
   */
  async repairSpares(): Promise<void> {
    const main = this.#ctx.main;
    const { rows } = await main.query<{ database_name: string; server: string }>(
      `DELETE FROM tenant_spares s
        WHERE (NOT ready AND created_at < now() - interval '1 minute')
           OR NOT EXISTS (SELECT 1 FROM tenant_templates t WHERE t.server = s.server AND t.checksum = s.checksum)
       RETURNING database_name, server`,
    );
    for (const row of rows) {
      if (!(row.server in this.#ctx.options.tenantServers)) continue;
      await this.#admin.dropDatabase(row.server, row.database_name).catch((err: unknown) => {
        this.#ctx.logger.warn({ server: row.server, err: (err as Error).message }, 'could not drop a stale spare database');
      });
    }
    for (const server of Object.keys(this.#ctx.options.tenantServers)) {
      try {
        const listed = await main.query<{ database_name: string }>('SELECT database_name FROM tenant_spares WHERE server = $1', [server]);
        const known = new Set(listed.rows.map((r) => r.database_name));
        const found = await this.#admin.query<{ datname: string }>(server, 'SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
          this.#sparePrefix(server),
        ]);
        for (const { datname } of found.rows) if (!known.has(datname)) await this.#admin.dropDatabase(server, datname);
      } catch (err) {
        // One server down must not stop init(); its leftovers go at a later pass.
        this.#ctx.logger.warn({ server, err: (err as Error).message }, 'could not clean up spare databases');
      }
    }
  }

  /**
   * Grants the group of tenant roles its rights inside a database (see TENANT_GRANTS): the template at its
   * build, or a database made before `tenantRoles` that `tenants.rotateCredentials` gives a role.
   */
  async #grant(server: string, database: string): Promise<void> {
    await this.#admin.ensureGroupRole(server);
    const lease = await this.#ctx.connections.direct(this.#admin.databaseUrl(server, database))();
    try {
      await lease.client.query(TENANT_GRANTS);
    } finally {
      await lease.release();
    }
  }

  /** {@link #grant}, for a tenant database of this server. */
  grantTenantRights(server: string, database: string): Promise<void> {
    return this.#grant(server, database);
  }

  /** Waits for background refills. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#refilling.values()]);
  }

  async #current(server: string, checksum: string): Promise<{ name: string; checksum: string } | undefined> {
    const { rows } = await this.#ctx.main.query<{ database_name: string }>(
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
  async #prune(server: string): Promise<void> {
    const main = this.#ctx.main;
    const { rows } = await main.query<{ database_name: string }>(
      `SELECT database_name FROM tenant_templates WHERE server = $1 ORDER BY updated_at DESC OFFSET ${KEPT_TEMPLATES}`,
      [server],
    );
    for (const { database_name: name } of rows) {
      await this.#admin.dropDatabase(server, name);
      await main.query('DELETE FROM tenant_templates WHERE server = $1 AND database_name = $2', [server, name]);
    }
  }

  /** The server's template if it is registered and complete (a build that failed or crashed half way can leave the database behind). */
  async #fresh(server: string, checksum: string): Promise<string | undefined> {
    const row = await this.#current(server, checksum);
    if (row && (await this.#admin.isCompleteTemplate(server, row.name))) {
      this.#ready.set(server, row);
      return row.name;
    }
    return undefined;
  }

  async #ensure(server: string, checksum: string): Promise<string> {
    const quick = await this.#fresh(server, checksum);
    if (quick) return quick;
    // The build lock lives on a connection of its own (see LockSession): no pooled connection is held
    // while waiting for it, nor while building.
    return this.#ctx.locks.withLock(`tenantdb:template:${server}`, async () => {
      const built = await this.#fresh(server, checksum); // another process may have built it while we waited
      if (built) return built;
      const name = this.#templateName(server, checksum);
      this.#ctx.logger.info({ server, template: name }, 'building tenant template');
      await this.#admin.dropDatabase(server, name); // a leftover of a build that crashed
      try {
        await this.#admin.createDatabase(server, name);
        step('template:created', { databaseName: name, server });
        const umzug = createSqlUmzug({
          connect: this.#ctx.connections.direct(this.#admin.databaseUrl(server, name)),
          files: await this.files(),
          family: 'tenant',
          logger: this.#ctx.logger,
        });
        await umzug.up();
        if (this.#ctx.options.tenantRoles) await this.#grant(server, name);
        step('template:migrated', { databaseName: name, server });
        // The last step of a build, and so its mark of completion (see isCompleteTemplate).
        await this.#admin.query(server, `ALTER DATABASE ${quoteDatabaseName(name)} WITH ALLOW_CONNECTIONS false`);
        // A pooler between us and the server (an adminUrl that is PgBouncer) keeps its server connections
        // to the template open after the migration's client left; cloning would fail on them (55006).
        await this.#admin.endSessions(server, name);
        step('template:closed', { databaseName: name, server });
      } catch (err) {
        // Never leave a half-migrated database under a template's name for a later create to clone.
        await this.#admin.dropDatabase(server, name).catch(() => {});
        throw err;
      }
      await this.#ctx.main.query(
        `INSERT INTO tenant_templates (server, database_name, checksum, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (server, checksum) DO UPDATE SET database_name = EXCLUDED.database_name, updated_at = now()`,
        [server, name, checksum],
      );
      step('template:registered', { databaseName: name, server });
      await this.#prune(server);
      this.#ready.set(server, { name, checksum });
      return name;
    });
  }
}
