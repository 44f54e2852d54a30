import path from 'node:path';
import { usageError } from '../cli-error.js';
import type { FileCommand } from '../command-context.js';
import { configuredMigrationFolders } from '../config.js';
import { createMigrationFiles } from '../migration-files.js';

/**
 * `tenantdb migrations create NAME --tenant|--main [--dir DIR]`: the next numbered `NNNN_name.sql` and its
 * `NNNN_name.down.sql` in DIR, by default the first configured folder of the family. Files only: no
 * database is opened.
 */
export const migrationsCreateCommand: FileCommand = async ({ args, cwd, env, print }) => {
  const family = args.family!;
  let dir = args.dir === undefined ? undefined : path.resolve(cwd, args.dir);
  if (dir === undefined) {
    [dir] = await configuredMigrationFolders({ file: args.config, env, cwd }, family);
    if (dir === undefined) {
      const where = family === 'tenant' ? 'tenantMigrations (TENANTDB_TENANT_MIGRATIONS)' : 'mainMigrations (TENANTDB_MAIN_MIGRATIONS)';
      throw usageError(`no ${family} migration folder is configured in ${where}: pass --dir DIR`);
    }
  }
  const created = await createMigrationFiles({ dir, name: args.operands[0]!, family });
  print(created.up);
  print(created.down);
  return { json: created };
};
