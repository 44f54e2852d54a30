import { parseArgs } from 'node:util';
import { usageError } from './cli-error.js';

/** Every command of `tenantdb`, with its sub-command when it has one. */
export const COMMAND_NAMES = [
  'init',
  'migrate',
  'status',
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
  /** `--concurrency N` of `migrate`. */
  concurrency: number | undefined;
  /** `--tenant ID`, repeatable for `migrate`, once for `sweep`. */
  tenants: string[];
  /** `--name` of `tenants create` and `tenants update`. */
  name: string | undefined;
  /** `--created-by USER_ID` of `tenants create`. */
  createdBy: string | undefined;
  /** `--server NAME` of `tenants create`. */
  server: string | undefined;
  /**
   * `--label key=value`, repeatable, of `tenants create`, `update` (the new labels, replacing all) and `list`
   * (a filter); undefined when not given. The library checks keys and values.
   */
  labels: Record<string, string> | undefined;
  /** `--to SERVER` of `tenants move`. */
  to: string | undefined;
  /** `--older-than-ms N` of `sweep`. */
  olderThanMs: number | undefined;
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
} as const;

type OptionName = keyof typeof OPTIONS;

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
}

const SPECS: Record<CommandName, CommandSpec> = {
  init: { options: [], operands: [0, 0] },
  migrate: { options: ['concurrency', 'tenant'], operands: [0, 1], choices: ['main', 'tenants'] },
  status: { options: [], operands: [0, 0] },
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
};

const TENANTS_SUBCOMMANDS: string[] = COMMAND_NAMES.filter((c) => c.startsWith('tenants ')).map((c) => c.slice('tenants '.length));

function integer(value: string | undefined, option: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw usageError(`--${option} must be an integer of at least ${min}, not ${JSON.stringify(value)}`);
  }
  return Number(value);
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

/** The command named by the leading positionals, and how many positionals that took. */
function resolveCommand(positionals: string[]): { command: CommandName; used: number } {
  const [word, sub] = positionals;
  if (word === undefined) throw usageError('no command given');
  if (word === 'tenants') {
    if (sub === undefined) throw usageError(`"tenants" needs one of: ${TENANTS_SUBCOMMANDS.join(', ')}`);
    if (!TENANTS_SUBCOMMANDS.includes(sub)) throw usageError(`unknown command "tenants ${sub}"`);
    return { command: `tenants ${sub}` as CommandName, used: 2 };
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
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
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
    tenants: values.tenant ?? [],
    name: values.name,
    createdBy: values['created-by'],
    server: values.server,
    labels: undefined,
    to: values.to,
    olderThanMs: undefined,
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
  if (args.operands.length < min) throw usageError(`"${command}" needs a tenant id or database name`);
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
  args.labels = labelsOf(values.label);
  if (command === 'tenants update' && values.name === undefined && args.labels === undefined) {
    throw usageError('"tenants update" needs --name or --label');
  }
  if (command === 'migrate' && target === 'main' && (values.concurrency !== undefined || args.tenants.length > 0)) {
    throw usageError('--concurrency and --tenant apply to tenant migrations, not to "migrate main"');
  }
  if (command === 'sweep' && args.tenants.length > 1) throw usageError('"sweep" takes at most one --tenant');
  if (args.name !== undefined && args.name.trim() === '') throw usageError('--name must not be empty');
  return args;
}
