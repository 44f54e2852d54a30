import type { FleetMigrateResult } from '../../index.js';
import { EXIT_CODES } from '../cli-error.js';
import type { Command, CommandContext } from '../command-context.js';
import { errorJson, errorLine, plural } from '../output.js';

/** The JSON form of a fleet run: errors as `{ code, message }`. */
export function fleetResultJson(result: FleetMigrateResult, scrub: (text: string) => string): unknown {
  return {
    total: result.total,
    succeeded: result.succeeded,
    failed: result.failed.map((f) => ({ tenantId: f.tenantId, migration: f.migration, error: errorJson(f.error, scrub) })),
    skipped: result.skipped,
  };
}

/** Runs the tenant migrations over the fleet with progress and prints the summary. */
export async function migrateTenants(cx: CommandContext): Promise<FleetMigrateResult> {
  const { platform, args } = cx;
  const progress = cx.progress('tenants');
  let result: FleetMigrateResult;
  try {
    result = await platform.migrations.tenants.up({
      ...(args.concurrency !== undefined && { concurrency: args.concurrency }),
      ...(args.tenants.length > 0 && { tenants: args.tenants }),
      ...(progress && { onProgress: (e) => progress.onProgress(e) }),
    });
  } finally {
    progress?.finish();
  }
  cx.print(
    `tenants: ${plural(result.total, 'tenant')}, ${result.succeeded.length} succeeded, ` +
      `${result.failed.length} failed, ${result.skipped.length} skipped (not ready)`,
  );
  for (const f of result.failed) {
    cx.print(`  FAILED ${f.tenantId}${f.migration ? ` at ${f.migration}` : ''}: ${errorLine(f.error, cx.scrub)}`);
  }
  return result;
}

/**
 * `tenantdb migrate [main|tenants] [--concurrency N] [--tenant ID …]`: the main database, then every
 * tenant (or only those given). Exit code 1 when any tenant failed; the others are migrated anyway.
 */
export const migrateCommand: Command = async (cx) => {
  const target = cx.args.operands[0];
  const json: { main?: { applied: string[] }; tenants?: unknown } = {};
  let exitCode: number = EXIT_CODES.OK;
  if (target !== 'tenants') {
    const applied = (await cx.platform.migrations.main.up()).map((m) => m.name);
    json.main = { applied };
    cx.print(applied.length > 0 ? `main: applied ${applied.join(', ')}` : 'main: up to date');
  }
  if (target !== 'main') {
    const result = await migrateTenants(cx);
    json.tenants = fleetResultJson(result, cx.scrub);
    if (result.failed.length > 0) exitCode = EXIT_CODES.FAILED;
  }
  return { json, exitCode };
};
