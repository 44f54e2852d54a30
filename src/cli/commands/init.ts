import type { Command } from '../command-context.js';
import { mainDatabaseName } from '../database-urls.js';

/** `tenantdb init`: creates the main database if missing, migrates it and prepares the tenant templates. */
export const initCommand: Command = async ({ platform, options, print }) => {
  await platform.init();
  const mainDatabase = mainDatabaseName(options.mainUrl);
  print(`main database "${mainDatabase}" is ready (created if missing, migrated, tenant template prepared)`);
  return { json: { initialized: true, mainDatabase } };
};
