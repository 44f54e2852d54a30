import diagnostics from 'node:diagnostics_channel';

/**
 * The name of the `node:diagnostics_channel` on which the library publishes each step of its multi-step
 * work as it completes: tenant provisioning, spares, template builds, drops, migrations and moves. A subscriber
 * runs synchronously, before the next step starts: crash tests kill the process there, tracers time the
 * steps. Nothing is published when nobody subscribes.
 */
export const STEP_CHANNEL = 'tenantdb:step';

/**
 * The steps published on {@link STEP_CHANNEL}, each once it is done:
 * - `create:locked` (the provisioning lock taken), `create:registered` (the `provisioning` row written),
 *   `create:cloned` (the database cloned, or a spare renamed), `create:role` (its login role made, with
 *   `tenantRoles`), `create:ready` (the row ready, the creator admin);
 * - `spare:claimed` (a spare's row taken, before its rename), `spare:registered` (a new spare's row),
 *   `spare:cloned` (its database, before the row says ready);
 * - `template:created`, `template:migrated`, `template:closed` (connections refused: complete),
 *   `template:registered`;
 * - `drop:marked` (status `dropping`), `drop:database` (database dropped), `drop:objects` (objects deleted);
 * - `migration:applied` (a migration's SQL and bookkeeping row ran, before COMMIT), `migration:committed`;
 * - `fleet:tenant` (a fleet run starts on a tenant), `fleet:tenant-done` (its migrations are all applied);
 * - `credentials:next` (a rotation's new password stored, before the server's changes);
 * - `move:locked` (the move's lock taken), `move:registered` (its `tenant_moves` row), `move:created` (the
 *   target database made, under its move name), `move:copied` (schema and rows there; logical: in sync),
 *   `move:blocked` (writes refused on the source), `move:caught-up` (the target has every committed write and
 *   the sequences), `move:renamed` (the target database under the tenant's name), `move:switched` (the
 *   registry names the target, in one transaction with the move's phase), `move:cleaned` (the source gone).
 *   `databaseName` is the tenant's, `server` the target.
 */
export type StepName =
  | 'create:locked'
  | 'create:registered'
  | 'create:cloned'
  | 'create:role'
  | 'create:ready'
  | 'spare:claimed'
  | 'spare:registered'
  | 'spare:cloned'
  | 'template:created'
  | 'template:migrated'
  | 'template:closed'
  | 'template:registered'
  | 'drop:marked'
  | 'drop:database'
  | 'drop:objects'
  | 'migration:applied'
  | 'migration:committed'
  | 'fleet:tenant'
  | 'fleet:tenant-done'
  | 'credentials:next'
  | 'move:locked'
  | 'move:registered'
  | 'move:created'
  | 'move:copied'
  | 'move:blocked'
  | 'move:caught-up'
  | 'move:renamed'
  | 'move:switched'
  | 'move:cleaned';

/** What a subscriber of {@link STEP_CHANNEL} receives: the step and what it was done to. */
export interface StepMessage {
  step: StepName;
  /** The tenant, when the step is one tenant's. */
  tenantId?: string;
  /** The database the step worked on (a tenant's, a spare's or a template's), when there is one. */
  databaseName?: string;
  /** The server name (a key of `tenantServers`), when known. */
  server?: string;
  /** The migration, for `migration:*` steps. */
  migration?: string;
  /** `main` or `tenant`, for `migration:*` steps. */
  family?: string;
}

const channel = diagnostics.channel(STEP_CHANNEL);

/** Publishes a finished step (see {@link STEP_CHANNEL}). @internal */
export function step(name: StepName, detail: Omit<StepMessage, 'step'> = {}): void {
  if (channel.hasSubscribers) channel.publish({ step: name, ...detail } satisfies StepMessage);
}
