import type { Command } from '../command-context.js';
import { formatTable, plural } from '../output.js';

/** `tenantdb status`: the main database's executed and pending migrations, and every ready tenant's. */
export const statusCommand: Command = async ({ platform, print }) => {
  const executed = (await platform.migrations.main.executed()).map((m) => m.name);
  const pending = (await platform.migrations.main.pending()).map((m) => m.name);
  const tenants = await platform.migrations.tenants.status();

  print(`main: ${plural(executed.length, 'migration')} executed, ${pending.length} pending${pending.length ? ` (${pending.join(', ')})` : ''}`);
  const behind = tenants.filter((t) => t.pending.length > 0);
  print(`tenants: ${plural(tenants.length, 'ready tenant')}, ${behind.length} with pending migrations`);
  if (tenants.length > 0) {
    const rows = tenants.map((t) => [t.tenantId, t.databaseName, String(t.executed.length), t.pending.join(', ') || '-']);
    for (const line of formatTable(['tenant', 'database', 'executed', 'pending'], rows)) print(`  ${line}`);
  }
  return { json: { main: { executed, pending }, tenants } };
};
