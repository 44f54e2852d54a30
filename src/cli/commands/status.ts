import { EXIT_CODES } from '../cli-error.js';
import type { FleetStatusSummary } from '../../index.js';
import type { Command, CommandContext } from '../command-context.js';
import { errorJson, errorLine, formatTable, plural } from '../output.js';

/** `tenantdb status --summary`: the ready tenants counted per schema version. */
async function printSummary({ platform, print }: CommandContext): Promise<FleetStatusSummary> {
  const summary = await platform.migrations.tenants.status({ summary: true });
  const unread = summary.unreachable + summary.failed;
  const apart = unread ? `, ${unread} not read (${summary.unreachable} unreachable)` : '';
  print(`tenants: ${plural(summary.total, 'ready tenant')} at ${plural(summary.versions.length, 'version')}${apart}`);
  if (summary.versions.length > 0) {
    const rows = summary.versions.map((v) => [v.version ?? '(none)', String(v.tenants), String(v.pending)]);
    for (const line of formatTable(['version', 'tenants', 'pending'], rows)) print(`  ${line}`);
  }
  return summary;
}

/**
 * `tenantdb status [--summary]`: the main database's executed and pending migrations, and every ready
 * tenant's (or, with `--summary`, the tenants counted per schema version).
 */
export const statusCommand: Command = async (cx) => {
  const { platform, print, scrub } = cx;
  const executed = (await platform.migrations.main.executed()).map((m) => m.name);
  const pending = (await platform.migrations.main.pending()).map((m) => m.name);
  print(`main: ${plural(executed.length, 'migration')} executed, ${pending.length} pending${pending.length ? ` (${pending.join(', ')})` : ''}`);
  if (cx.args.summary) {
    const summary = await printSummary(cx);
    const failed = summary.unreachable + summary.failed > 0;
    return { json: { main: { executed, pending }, tenants: summary }, ...(failed && { exitCode: EXIT_CODES.FAILED }) };
  }
  const tenants = await platform.migrations.tenants.status();

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
