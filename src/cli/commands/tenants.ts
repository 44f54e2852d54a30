import type { Tenant } from '../../index.js';
import type { Command, CommandContext } from '../command-context.js';
import { formatTable, shortDate } from '../output.js';
import { moveProgressLine } from '../progress.js';

/** The tenant an operand names: its id or its database name. NOT_FOUND when none. */
function resolve(cx: CommandContext): Promise<Tenant> {
  return cx.platform.tenants.get(cx.args.operands[0]!);
}

function describe(t: Tenant): string {
  return `${t.id} "${t.name}" (database ${t.databaseName} on ${t.server}, ${t.isActive ? 'active' : 'inactive'}, ${t.status})`;
}

/** `key=value, …` of a tenant's labels, or `-` when it has none. */
function labelList(t: Tenant): string {
  const pairs = Object.entries(t.labels).map(([key, value]) => `${key}=${value}`);
  return pairs.length > 0 ? pairs.join(',') : '-';
}

/** `tenantdb tenants create --name NAME [--created-by USER_ID] [--server NAME] [--label KEY=VALUE …]`. */
export const tenantsCreateCommand: Command = async (cx) => {
  const { name, createdBy, server, labels } = cx.args;
  const tenant = await cx.platform.tenants.create({
    name: name!,
    ...(createdBy !== undefined && { createdBy }),
    ...(server !== undefined && { server }),
    ...(labels !== undefined && { labels }),
  });
  cx.print(`created tenant ${describe(tenant)}`);
  return { json: { tenant } };
};

/** `tenantdb tenants list [--all] [--label KEY=VALUE …]`: active tenants, or every tenant with `--all`; those with every label given. */
export const tenantsListCommand: Command = async (cx) => {
  const { all, labels } = cx.args;
  const tenants = await cx.platform.tenants.list({ includeInactive: all, ...(labels !== undefined && { labels }) });
  if (tenants.length === 0) {
    const which = labels !== undefined ? ' with these labels' : '';
    cx.print(all ? `no tenants${which}` : `no active tenants${which} (--all lists deactivated ones too)`);
  } else {
    const rows = tenants.map((t) => [
      t.id,
      t.databaseName,
      t.server,
      t.isActive ? 'yes' : 'no',
      t.status,
      shortDate(t.createdAt),
      t.name,
      labelList(t),
    ]);
    for (const line of formatTable(['id', 'database', 'server', 'active', 'status', 'created', 'name', 'labels'], rows)) cx.print(line);
  }
  return { json: { tenants } };
};

/** `tenantdb tenants update ID [--name NAME] [--label KEY=VALUE …]`: renames and/or replaces the labels. */
export const tenantsUpdateCommand: Command = async (cx) => {
  const { name, labels } = cx.args;
  const tenant = await cx.platform.tenants.update((await resolve(cx)).id, {
    ...(name !== undefined && { name }),
    ...(labels !== undefined && { labels }),
  });
  cx.print(`updated tenant ${describe(tenant)}, labels ${labelList(tenant)}`);
  return { json: { tenant } };
};

/** `tenantdb tenants deactivate ID`: soft delete; data kept. */
export const tenantsDeactivateCommand: Command = async (cx) => {
  const tenant = await cx.platform.tenants.deactivate((await resolve(cx)).id);
  cx.print(`deactivated tenant ${describe(tenant)}`);
  return { json: { tenant } };
};

/** `tenantdb tenants activate ID`: undoes `deactivate`. */
export const tenantsActivateCommand: Command = async (cx) => {
  const tenant = await cx.platform.tenants.activate((await resolve(cx)).id);
  cx.print(`activated tenant ${describe(tenant)}`);
  return { json: { tenant } };
};

/** `tenantdb tenants drop ID --yes`: drops the database, deletes the stored objects and the registry row. */
export const tenantsDropCommand: Command = async (cx) => {
  const tenant = await resolve(cx);
  await cx.platform.tenants.drop(tenant.id);
  cx.print(`dropped tenant ${tenant.id} "${tenant.name}" (database ${tenant.databaseName} and its documents)`);
  return { json: { dropped: { id: tenant.id, name: tenant.name, databaseName: tenant.databaseName } } };
};

/** `tenantdb tenants move ID --to SERVER`: moves the tenant's database to another tenant server. */
export const tenantsMoveCommand: Command = async (cx) => {
  const tenant = await resolve(cx);
  const result = await cx.platform.tenants.move(tenant.id, cx.args.to!, { onProgress: (event) => cx.note(moveProgressLine(event)) });
  cx.print(
    `moved tenant ${describe(result.tenant)} from ${result.from} by ${result.method} in ${Math.round(result.durationMs)} ms ` +
      `(writes blocked ${Math.round(result.blockedMs)} ms; ${result.tables} tables, ${result.sequences} sequences)`,
  );
  const { tenant: moved, ...rest } = result;
  return { json: { moved: { id: moved.id, name: moved.name, databaseName: moved.databaseName, ...rest } } };
};
