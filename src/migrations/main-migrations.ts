import type { MigrationMeta } from 'umzug';
import type { PlatformContext } from '../core/platform-context.js';
import { createSqlUmzug, loadMigrationFiles, type SqlUmzug } from './sql-migrations.js';
import type { MigrationDownOptions, MigrationUpOptions } from './types.js';

export type { MigrationMeta } from 'umzug';

/**
 * `platform.migrations.main`: the main database's migrations, the built-in ones then the host's
 * (`mainMigrations`). Each call runs on a dedicated connection over `mainAdminUrl`, ended afterwards. Returns umzug's
 * `MigrationMeta` (`{ name, path? }`) lists.
 *
 * @example
 * ```ts
 * await platform.migrations.main.up();
 * const pending = await platform.migrations.main.pending(); // []
 * ```
 */
export interface MainMigrations {
  /** Applies the pending migrations (all, or up to and including `to`); returns those applied. */
  up(options?: MigrationUpOptions): Promise<MigrationMeta[]>;
  /**
   * Reverts the last applied migration, or every one down to and including `to` (`0`: all). A
   * migration without a `.down.sql` file (the built-in initial ones) cannot be reverted: MIGRATION_FAILED.
   */
  down(options?: MigrationDownOptions): Promise<MigrationMeta[]>;
  /** The migrations not applied yet, in the order `up` would apply them. */
  pending(): Promise<MigrationMeta[]>;
  /** The applied migrations that still have a file, in order. */
  executed(): Promise<MigrationMeta[]>;
}

/**
 * The main database's {@link MainMigrations}. The migration files are read again on every call, so an
 * edited file is noticed.
 * @internal
 */
export function createMainMigrations(ctx: PlatformContext): MainMigrations {
  const umzug = async (): Promise<SqlUmzug> => {
    ctx.assertOpen();
    const files = await loadMigrationFiles('main', ctx.options.mainMigrations);
    return createSqlUmzug({ connect: ctx.connections.direct(ctx.options.mainAdminUrl), files, family: 'main', logger: ctx.logger });
  };
  return {
    up: async (options) => (await umzug()).up(options?.to === undefined ? {} : { to: options.to }),
    down: async (options) => (await umzug()).down(options?.to === undefined ? {} : { to: options.to }),
    pending: async () => (await umzug()).pending(),
    executed: async () => (await umzug()).executed(),
  };
}
