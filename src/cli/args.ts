import { parseArgs } from 'node:util';
import type { FleetWave } from '../index.js';
import { validateStopRules, validateWaves } from '../migrations/fleet-plan.js';
import { usageError } from './cli-error.js';

/** Every command of `tenantdb`, with its sub-command when it has one. */
export const COMMAND_NAMES = [
  'init',
  'migrate',
  'migrate plan',
  'migrate resume',
  'migrate down',
  'migrate revert',
  'runs',
  'status',
  'health',
  'tenants create',
  'tenants list',
  'tenants update',
  'tenants deactivate',
  'tenants activate',
  'tenants drop',
  'tenants move',
  'sweep',
  'reset',
  'demo',
  'migrations create',
] as const;

/** One of {@link COMMAND_NAMES}. */
export type CommandName = (typeof COMMAND_NAMES)[number];

/** The command line, checked: what {@link parseCliArgs} returns. */
export interface CliArgs {
  /** Undefined only with `--help` or `--version` and no command. */
  command: CommandName | undefined;
  /** The command's operands: the target of `migrate`, the tenant of `tenants drop ID`, … */
  operands: string[];
  /** `--json`: one JSON document on stdout, nothing else. */
  json: boolean;
  /** `--help` / `-h`. */
  help: boolean;
  /** `--version`. */
  version: boolean;
  /** `--verbose`: the library's log lines on stderr. */
  verbose: boolean;
  /** `--quiet`: no progress on stderr. */
  quiet: boolean;
  /** `--config <module>`. */
  config: string | undefined;
  /** `--yes`: confirms `reset` and `tenants drop`. */
  yes: boolean;
  /** `--all` of `tenants list`: include deactivated tenants. */
  all: boolean;
  /** `--concurrency N` of `migrate` and its fleet runs. */
  concurrency: number | undefined;
  /** `--tenant ID`, repeatable for `migrate` (in the order given), once for `sweep`. */
  tenants: string[];
  /**
   * The waves of a fleet run: `--canary N` first, then the `--waves` list (`10%,100%`); undefined when
   * neither is given. `--canary` alone is a canary, then the rest.
   */
  waves: FleetWave[] | undefined;
  /** `--max-failures N` of a fleet run. */
  maxFailures: number | undefined;
  /** `--max-failure-rate R` of a fleet run: above 0, at most 1. */
  maxFailureRate: number | undefined;
  /** `--created-before DATE` of a fleet selection. */
  createdBefore: string | undefined;
  /** `--created-after DATE` of a fleet selection. */
  createdAfter: string | undefined;
  /** `--only-failed RUN_ID` of `migrate tenants`: only the tenants that failed in that run. */
  onlyFailed: string | undefined;
  /** `--limit N` of `runs`. */
  limit: number | undefined;
  /** `--name` of `tenants create` and `tenants update`. */
  name: string | undefined;
  /** `--created-by USER_ID` of `tenants create`. */
  createdBy: string | undefined;
  /** `--server NAME` of `tenants create`; of a fleet selection, only the tenants on that server. */
  server: string | undefined;
  /**
   * `--label key=value`, repeatable, of `tenants create`, `update` (the new labels, replacing all) and `list`
   * (a filter); undefined when not given. The library checks keys and values.
   */
  labels: Record<string, string> | undefined;
  /** `--to SERVER` of `tenants move`; `--to NAME` of `migrate down`. */
  to: string | undefined;
  /** `--older-than-ms N` of `sweep`. */
  olderThanMs: number | undefined;
  /** `--tenant` or `--main` of `migrations create`: the family of the new migration. */
  family: 'tenant' | 'main' | undefined;
  /** `--dir DIR` of `migrations create`. */
  dir: string | undefined;
  /** `--summary` of `status`: tenants counted per schema version. */
  summary: boolean;
  /** `--timeout-ms N` of `health`: the bound of each check. */
  timeoutMs: number | undefined;
}

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean' },
  config: { type: 'string' },
  yes: { type: 'boolean' },
  all: { type: 'boolean' },
  concurrency: { type: 'string' },
  tenant: { type: 'string', multiple: true },
  name: { type: 'string' },
  label: { type: 'string', multiple: true },
  'created-by': { type: 'string' },
  server: { type: 'string' },
  to: { type: 'string' },
  'older-than-ms': { type: 'string' },
  summary: { type: 'boolean' },
  canary: { type: 'string' },
  waves: { type: 'string' },
  'max-failures': { type: 'string' },
  'max-failure-rate': { type: 'string' },
  'created-before': { type: 'string' },
  'created-after': { type: 'string' },
  'only-failed': { type: 'string' },
  limit: { type: 'string' },
  'timeout-ms': { type: 'string' },
} as const;

/** The options of `migrations create`, where `--tenant` is a flag (the family), not a tenant id. */
const FILE_OPTIONS = {
  ...OPTIONS,
  tenant: { type: 'boolean' },
  main: { type: 'boolean' },
  dir: { type: 'string' },
} as const;

type OptionName = keyof typeof FILE_OPTIONS;

const GLOBAL_OPTIONS: ReadonlySet<OptionName> = new Set(['json', 'help', 'version', 'verbose', 'quiet', 'config']);

interface CommandSpec {
  /** Options beyond the global ones. */
  options: OptionName[];
  /** Operands: at least, at most. */
  operands: [number, number];
  /** Allowed values of the first operand, when restricted. */
  choices?: string[];
  /** Options that must be given. */
  required?: OptionName[];
  /** What the operands are, for the message when one is missing. Default: a tenant id or database name. */
  operand?: string;
}

/** The options choosing the tenants of a fleet run. */
const SELECTION: OptionName[] = ['tenant', 'server', 'label', 'created-before', 'created-after'];
/** The options staging a fleet run and stopping it. */
const STAGING: OptionName[] = ['concurrency', 'canary', 'waves', 'max-failures', 'max-failure-rate'];

const SPECS: Record<CommandName, CommandSpec> = {
  init: { options: [], operands: [0, 0] },
  migrate: { options: [...SELECTION, ...STAGING, 'only-failed'], operands: [0, 1], choices: ['main', 'tenants'] },
  'migrate plan': { options: [...SELECTION, 'canary', 'waves'], operands: [0, 0] },
  'migrate resume': { options: ['concurrency'], operands: [1, 1], operand: 'a run id' },
  'migrate down': { options: ['to', ...SELECTION, ...STAGING], operands: [0, 0], required: ['to'] },
  'migrate revert': { options: STAGING, operands: [1, 1], operand: 'a run id' },
  runs: { options: ['limit'], operands: [0, 1] },
  status: { options: ['summary'], operands: [0, 0] },
  health: { options: ['timeout-ms'], operands: [0, 0] },
  'tenants create': { options: ['name', 'created-by', 'server', 'label'], operands: [0, 0], required: ['name'] },
  'tenants list': { options: ['all', 'label'], operands: [0, 0] },
  'tenants update': { options: ['name', 'label'], operands: [1, 1] },
  'tenants deactivate': { options: [], operands: [1, 1] },
  'tenants activate': { options: [], operands: [1, 1] },
  'tenants drop': { options: ['yes'], operands: [1, 1], required: ['yes'] },
  'tenants move': { options: ['to'], operands: [1, 1], required: ['to'] },
  sweep: { options: ['tenant', 'older-than-ms'], operands: [0, 0] },
  reset: { options: ['yes'], operands: [0, 0], required: ['yes'] },
  demo: { options: [], operands: [0, 0] },
  'migrations create': { options: ['tenant', 'main', 'dir'], operands: [1, 1] },
};

/** The commands that take a sub-command, and their sub-commands (`migrate` is a command of its own too). */
const GROUPS: Record<string, string[]> = Object.fromEntries(
  ['tenants', 'migrations', 'migrate'].map((group) => [
    group,
    COMMAND_NAMES.filter((c) => c.startsWith(`${group} `)).map((c) => c.slice(group.length + 1)),
  ]),
);

function integer(value: string | undefined, option: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw usageError(`--${option} must be an integer of at least ${min}, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** The first word of a command line that is not an option or the value of `--config`. */
function firstWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config') i++;
    else if (!argv[i]!.startsWith('-')) return argv[i];
  }
  return undefined;
}

/** The `--label key=value` options as labels: split at the first `=`; a key given twice is a usage error. */
function labelsOf(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const entries = values.map((pair): [string, string] => {
    const at = pair.indexOf('=');
    if (at <= 0) throw usageError('--label takes key=value');
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
  const keys = new Set(entries.map(([key]) => key));
  if (keys.size < entries.length) throw usageError('--label: a key is given twice');
  // fromEntries makes own properties, `__proto__` included (which the library then refuses as a key).
  return Object.fromEntries(entries);
}

/** A decimal number (`0.05`, `1`), or undefined when `value` is not one. */
function decimal(value: string): number | undefined {
  return /^(\d+(\.\d*)?|\.\d+)$/.test(value) ? Number(value) : undefined;
}

/**
 * The waves of `--canary N` and `--waves LIST` (counts and `N%` shares, comma-separated), checked as the
 * library checks `waves`; a canary alone is followed by the rest (`[N, '100%']`).
 */
function wavesOf(canary: string | undefined, list: string | undefined): FleetWave[] | undefined {
  if (canary === undefined && list === undefined) return undefined;
  const first = integer(canary, 'canary', 1);
  const rest = list === undefined ? ['100%'] : list.split(',').map((w) => w.trim());
  const waves = [...(first === undefined ? [] : [first]), ...rest.map((w) => (/^\d+$/.test(w) ? Number(w) : w))];
  try {
    return validateWaves(waves);
  } catch (err) {
    throw usageError(`--waves takes counts and shares separated by commas (5,10%,100%): ${(err as Error).message}`);
  }
}

/** `--max-failure-rate R`: a number above 0 and at most 1, checked as the library checks it. */
function rateOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const rate = decimal(value);
  try {
    return validateStopRules({ maxFailureRate: rate ?? NaN }).maxFailureRate;
  } catch {
    throw usageError(`--max-failure-rate must be a number above 0 and at most 1, not ${JSON.stringify(value)}`);
  }
}

/** A `--created-before` / `--created-after` date: anything `Date` reads (`2026-01-01`, an ISO instant). */
function dateOf(value: string | undefined, option: string): string | undefined {
  if (value !== undefined && (value.trim() === '' || Number.isNaN(Date.parse(value)))) {
    throw usageError(`--${option} must be a date such as 2026-01-01, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** The command named by the leading positionals, and how many positionals that took. */
function resolveCommand(positionals: string[]): { command: CommandName; used: number } {
  const [word, sub] = positionals;
  if (word === undefined) throw usageError('no command given');
  const subs = Object.hasOwn(GROUPS, word) ? GROUPS[word] : undefined;
  // `migrate` alone, or with its target (main, tenants), is the command `migrate`.
  if (subs && (COMMAND_NAMES as readonly string[]).includes(word) && (sub === undefined || !subs.includes(sub))) {
    return { command: word as CommandName, used: 1 };
  }
  if (subs) {
    if (sub === undefined) throw usageError(`"${word}" needs one of: ${subs.join(', ')}`);
    if (!subs.includes(sub)) throw usageError(`unknown command "${word} ${sub}"`);
    return { command: `${word} ${sub}` as CommandName, used: 2 };
  }
  if (!(COMMAND_NAMES as readonly string[]).includes(word)) throw usageError(`unknown command "${word}"`);
  return { command: word as CommandName, used: 1 };
}

/**
 * Parses and checks a `tenantdb` command line (`argv` without node and the script). Every mistake is a
 * USAGE {@link CliError} (exit code 2). With `--help` or `--version` only the options themselves are
 * checked, so `tenantdb reset --help` works without `--yes`.
 *
 * @example
 * ```ts
 * parseCliArgs(['migrate', 'tenants', '--concurrency', '8']).concurrency; // 8
 * ```
 */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FILE_OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    // The command word decides what `--tenant` is: a tenant id, or the family of `migrations create`.
    const options = firstWord(argv) === 'migrations' ? FILE_OPTIONS : OPTIONS;
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const tenantIds = Array.isArray(values.tenant) ? values.tenant : [];
  const args: CliArgs = {
    command: undefined,
    operands: [],
    json: values.json === true,
    help: values.help === true,
    version: values.version === true,
    verbose: values.verbose === true,
    quiet: values.quiet === true,
    config: values.config,
    yes: values.yes === true,
    all: values.all === true,
    concurrency: undefined,
    tenants: tenantIds,
    waves: undefined,
    maxFailures: undefined,
    maxFailureRate: undefined,
    createdBefore: values['created-before'],
    createdAfter: values['created-after'],
    onlyFailed: values['only-failed'],
    limit: undefined,
    name: values.name,
    createdBy: values['created-by'],
    server: values.server,
    labels: undefined,
    to: values.to,
    olderThanMs: undefined,
    family: values.tenant === true ? 'tenant' : values.main === true ? 'main' : undefined,
    dir: values.dir,
    summary: values.summary === true,
    timeoutMs: undefined,
  };
  if (args.version) return args;
  if (args.help) {
    try {
      args.command = resolveCommand(positionals).command;
    } catch {
      // General help for anything that is not a command.
    }
    return args;
  }

  const { command, used } = resolveCommand(positionals);
  const spec = SPECS[command];
  args.command = command;
  args.operands = positionals.slice(used);

  for (const option of Object.keys(values) as OptionName[]) {
    if (!GLOBAL_OPTIONS.has(option) && !spec.options.includes(option)) {
      throw usageError(`--${option} does not apply to "${command}"`);
    }
  }
  const [min, max] = spec.operands;
  if (args.operands.length < min) {
    const what = command === 'migrations create' ? 'a migration name' : (spec.operand ?? 'a tenant id or database name');
    throw usageError(`"${command}" needs ${what}`);
  }
  if (args.operands.length > max) throw usageError(`unexpected argument ${JSON.stringify(args.operands[max])} for "${command}"`);
  const target = args.operands[0];
  if (spec.choices && target !== undefined && !spec.choices.includes(target)) {
    throw usageError(`"${command}" takes ${spec.choices.join(' or ')}, not ${JSON.stringify(target)}`);
  }
  for (const option of spec.required ?? []) {
    if (values[option] === undefined) {
      throw usageError(option === 'yes' ? `"${command}" destroys data: add --yes to confirm` : `"${command}" needs --${option}`);
    }
  }

  args.concurrency = integer(values.concurrency, 'concurrency', 1);
  args.olderThanMs = integer(values['older-than-ms'], 'older-than-ms', 0);
  args.waves = wavesOf(values.canary, values.waves);
  args.maxFailures = integer(values['max-failures'], 'max-failures', 1);
  args.maxFailureRate = rateOf(values['max-failure-rate']);
  args.limit = integer(values.limit, 'limit', 1);
  args.createdBefore = dateOf(values['created-before'], 'created-before');
  args.createdAfter = dateOf(values['created-after'], 'created-after');
  if (args.onlyFailed !== undefined && args.onlyFailed.trim() === '') throw usageError('--only-failed needs the id of a run');
  if (args.to !== undefined && args.to.trim() === '') throw usageError('--to must not be empty');
  args.timeoutMs = integer(values['timeout-ms'], 'timeout-ms', 1);
  args.labels = labelsOf(values.label);
  if (command === 'tenants update' && values.name === undefined && args.labels === undefined) {
    throw usageError('"tenants update" needs --name or --label');
  }
  if (command === 'migrate' && target === 'main') {
    const fleet = Object.keys(values).find((option) => !GLOBAL_OPTIONS.has(option as OptionName));
    if (fleet !== undefined) throw usageError(`--${fleet} applies to tenant migrations, not to "migrate main"`);
  }
  if (command === 'runs' && target !== undefined && args.limit !== undefined) throw usageError('--limit lists runs: not with a run id');
  if (command === 'sweep' && args.tenants.length > 1) throw usageError('"sweep" takes at most one --tenant');
  if (args.name !== undefined && args.name.trim() === '') throw usageError('--name must not be empty');
  if (command === 'migrations create') {
    if (values.tenant === true && values.main === true) throw usageError('--tenant and --main exclude each other');
    if (args.family === undefined) throw usageError('"migrations create" needs --tenant or --main');
    if (args.dir !== undefined && args.dir.trim() === '') throw usageError('--dir must not be empty');
  }
  return args;
}
