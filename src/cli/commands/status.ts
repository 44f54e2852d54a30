import { EXIT_CODES } from '../cli-error.js';
import type { Command } from '../command-context.js';
import { errorJson, errorLine, formatTable, plural } from '../output.js';

/** `tenantdb status`: the main database's executed and pending migrations, and every ready tenant's. */
export const statusCommand: Command = async ({ platform, print, scrub }) => {
  const executed = (await platform.migrations.main.executed()).map((m) => m.name);
  const pending = (await platform.migrations.main.pending()).map((m) => m.name);
  const tenants = await platform.migrations.tenants.status();

  print(`main: ${plural(executed.length, 'migration')} executed, ${pending.length} pending${pending.length ? ` (${pending.join(', ')})` : ''}`);
  const behind = tenants.filter((t) => t.pending.length > 0);
  const failed = tenants.filter((t) => t.error !== undefined);
  const unread = failed.length ? `, ${failed.length} not read (${tenants.filter((t) => !t.reachable).length} unreachable)` : '';
  print(`tenants: ${plural(tenants.length, 'ready tenant')}, ${behind.length} with pending migrations${unread}`);
  if (tenants.length > 0) {
    const rows = tenants.map((t) => [
      t.tenantId,
      t.databaseName,
      t.server,
      t.error ? '?' : String(t.executed.length),
      t.error ? (t.reachable ? `error: ${errorLine(t.error, scrub)}` : 'unreachable') : t.pending.join(', ') || '-',
    ]);
    for (const line of formatTable(['tenant', 'database', 'server', 'executed', 'pending'], rows)) print(`  ${line}`);
  }
  const json = tenants.map(({ error, ...t }) => (error ? { ...t, error: errorJson(error, scrub) } : t));
  return { json: { main: { executed, pending }, tenants: json }, ...(failed.length > 0 && { exitCode: EXIT_CODES.FAILED }) };
};
