import type { CommandName } from './args.js';

const GLOBAL = `Options for every command:
  --json             one JSON document on stdout, nothing else (errors: {"error":{"code","message"}})
  --config <module>  platform options from a .js/.mjs/.cjs module instead of the environment
  --quiet            no progress on stderr
  --verbose          the library's log lines on stderr
  -h, --help         this help (tenantdb <command> --help for one command)
  --version          the version`;

const CONFIG = `Configuration (without --config):
  TENANTDB_MAIN_URL            postgres://user:password@host:5432/saas_platform (required)
  TENANTDB_MAIN_ADMIN_URL      a direct URL of the main database when TENANTDB_MAIN_URL is a pooler
  TENANTDB_S3_BUCKET           the bucket for documents (required)
  TENANTDB_S3_ENDPOINT         an S3-compatible endpoint (MinIO, …); default AWS S3
  TENANTDB_S3_REGION           default AWS_REGION, else us-east-1
  TENANTDB_S3_PREFIX           prefix of every object key
  TENANTDB_S3_FORCE_PATH_STYLE true or false; default true with an endpoint
  TENANTDB_TENANT_MIGRATIONS   your tenant migration folders, separated by ":" (";" on Windows)
  TENANTDB_MAIN_MIGRATIONS     your main-database migration folders, likewise
  S3 credentials the AWS way: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, …`;

const EXITS = `Exit codes:
  0  success
  1  some work failed (a tenant's migration, or the command's error: error CODE: message)
  2  usage error (unknown command or option, bad value, missing --yes)
  3  configuration error (missing environment variable, bad --config module or options)`;

const COMMANDS: Record<CommandName, string> = {
  init: `tenantdb init
  Creates the main database if it is missing, migrates it and prepares the tenant template. Idempotent.`,
  migrate: `tenantdb migrate [main|tenants] [selection] [staging] [--only-failed RUN]
  Migrates the main database, then the tenant databases (both when neither is named), as a recorded
  run (see "tenantdb runs"). Selection, every condition together (default: every tenant):
  --tenant ID             only this tenant (id or database name); repeatable, in the order given
  --server NAME           only the tenants on this tenant server
  --label KEY=VALUE       only the tenants with this label; repeatable
  --created-before DATE   only tenants created before DATE (2026-01-01, an ISO instant)
  --created-after DATE    only tenants created at or after DATE
  Staging and stop rules:
  --concurrency N         tenants migrated at once (default 4)
  --canary N              a first wave of N tenants (then --waves, else the rest)
  --waves LIST            waves in order, counts or shares of the selection: 10%,100% (the last takes the rest)
  --max-failures N        halt once N tenants failed: no tenant starts after that
  --max-failure-rate R    halt once the failed share of the tenants finished reaches R (0 < R <= 1)
  --only-failed RUN       only the tenants that failed in run RUN
  Progress on stderr: a line per wave, and a bar on a terminal or a line per tenant otherwise.
  The exit code is 1 when the run does not complete (a tenant failed, or a stop rule halted it).`,
  'migrate plan': `tenantdb migrate plan [selection] [--canary N] [--waves LIST]
  A dry run, changing nothing: the selected tenants grouped by the migrations they have pending,
  and the waves a run with the same flags would have. Selection and waves as for "migrate".
  Tenants still being provisioned are not shown (a run skips them). Exit 1 when a tenant could not be read.`,
  'migrate resume': `tenantdb migrate resume RUN [--concurrency N]
  Carries on a halted run, or one whose process died, from its pending tenants, with the run's own
  selection, waves and stop rules. CONFLICT when a live process carries it, or when one of its
  migration files changed since it started. Exit 1 when it does not complete.`,
  'migrate down': `tenantdb migrate down --to NAME [selection] [staging]
  Selection, staging and stop rules as for "migrate" (see tenantdb migrate --help).
  Reverts every selected tenant down to and including migration NAME (--to 0: all of them), with the
  .down.sql files, as a recorded run in waves and with stop rules, as for "migrate".`,
  'migrate revert': `tenantdb migrate revert RUN [staging]
  Staging and stop rules as for "migrate": --concurrency, --canary, --waves, --max-failures, --max-failure-rate.
  Takes back exactly what up run RUN applied, tenant by tenant, newest migration first, as a recorded
  run. A tenant where a later migration was applied on top fails with CONFLICT and is left as it is.`,
  runs: `tenantdb runs [RUN] [--limit N]
  The newest fleet migration runs (default 20) with their status and counts; with RUN, that run with
  every tenant's wave, outcome, migrations applied and error.`,
  status: `tenantdb status [--summary]
  Executed and pending migrations of the main database and of every ready tenant.
  --summary   instead of a row per tenant, the tenants counted per schema version (their last
              executed migration), unreachable ones apart: a mixed fleet at a glance
  The exit code is 1 when some tenant's migrations could not be read.`,
  health: `tenantdb health [--timeout-ms N]
  Checks the main database, every tenant server and S3 at once, a line per check with its
  latency and, when it failed, its error. Needs no init.
  --timeout-ms N   the bound of each check, in milliseconds (default 2000)
  The exit code is 1 when a check failed.`,
  'tenants create': `tenantdb tenants create --name NAME [--created-by USER_ID] [--server NAME] [--label KEY=VALUE …]
  Creates a tenant and its database. --created-by makes that user its first admin.
  --label KEY=VALUE  a label of the tenant; repeatable`,
  'tenants list': `tenantdb tenants list [--all] [--label KEY=VALUE …]
  The active tenants; --all includes deactivated ones.
  --label KEY=VALUE  only the tenants with this label; repeatable (every one must match)`,
  'tenants update': `tenantdb tenants update ID [--name NAME] [--label KEY=VALUE …]
  Renames a tenant and/or replaces its labels (the --label options become its whole set of labels).
  Its database name does not change. ID is an id or a database name.`,
  'tenants deactivate': `tenantdb tenants deactivate ID
  Soft delete: data kept, entering the tenant gives TENANT_INACTIVE. ID is an id or a database name.`,
  'tenants activate': `tenantdb tenants activate ID
  Undoes deactivate.`,
  'tenants drop': `tenantdb tenants drop ID --yes
  Drops the tenant's database, deletes its stored documents and its registry row. Needs --yes.`,
  'tenants move': `tenantdb tenants move ID --to SERVER
  Moves a live tenant's database to another tenant server (a name of tenantServers, so --config):
  logical replication when the source has wal_level = logical (writes wait only for the final
  catch-up), else a copy (writes wait throughout). A failure leaves the tenant where it was; exit 1.
  Progress on stderr, one line per step.`,
  sweep: `tenantdb sweep [--tenant ID] [--older-than-ms N]
  Deletes stored objects no file references and aborts stale multipart uploads, older than
  --older-than-ms (default one hour); every tenant, or only --tenant.`,
  reset: `tenantdb reset --yes
  Development only: drops every tenant database the main database lists (and their documents),
  the tenant templates, then the main database. Needs --yes.`,
  'migrations create': `tenantdb migrations create NAME --tenant|--main [--dir DIR]
  Writes the next numbered NNNN_name.sql and an empty NNNN_name.down.sql for a tenant (--tenant) or
  main-database (--main) migration. NAME is lower-cased to letters, digits and "_".
  --dir DIR   the folder (created when missing); default the first of tenantMigrations /
              mainMigrations (TENANTDB_TENANT_MIGRATIONS / TENANTDB_MAIN_MIGRATIONS)
  Numbers count within DIR only: your migrations run after the built-in ones, in their own order.
  Never overwrites a file; needs no database.`,
  demo: `tenantdb demo
  A guided tour on the configured servers: users, tenants, deduplicated uploads, a tenant
  migration rolled out over the fleet, statistics. Writes into the configured main database.`,
};

/** The help of one command, or the general help listing every command. */
export function helpText(command?: CommandName): string {
  if (command !== undefined) return `${COMMANDS[command]}\n\n${GLOBAL}\n`;
  const list = Object.values(COMMANDS)
    .map((text) => `  ${text.split('\n')[0]!.replace(/^tenantdb /, '')}`)
    .join('\n');
  return `tenantdb: operate a @org/tenantdb platform (database-per-tenant PostgreSQL, documents on S3)

Usage: tenantdb <command> [options]

Commands:
${list}

${GLOBAL}

${CONFIG}

${EXITS}
`;
}
