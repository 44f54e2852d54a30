import type { Command } from '../command-context.js';

/** `tenantdb sweep [--tenant ID] [--older-than-ms N]`: removes unreferenced objects and stale uploads, and finishes drops that stopped half way. */
export const sweepCommand: Command = async ({ platform, args, print }) => {
  const ref = args.tenants[0];
  // Like the other commands, a database name works as well as an id.
  const tenantId = ref === undefined ? undefined : (await platform.tenants.get(ref)).id;
  const result = await platform.storage.sweep({
    ...(tenantId !== undefined && { tenantId }),
    ...(args.olderThanMs !== undefined && { olderThanMs: args.olderThanMs }),
  });
  const drops = result.tenantsDropped ? `, ${result.tenantsDropped} half-done tenant drops finished` : '';
  print(`sweep: ${result.objectsDeleted} unreferenced objects deleted, ${result.uploadsAborted} stale uploads aborted${drops}`);
  return { json: { ...(tenantId !== undefined && { tenantId }), ...result } };
};
