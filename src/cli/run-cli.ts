import { createPlatform, isTenantDbError, type Logger, type Platform, type PlatformOptions } from '../index.js';
import { parseCliArgs, type CliArgs, type CommandName } from './args.js';
import { CliError, configError, EXIT_CODES } from './cli-error.js';
import type { Command, CommandContext, CommandOutcome, FileCommand } from './command-context.js';
import { demoCommand } from './commands/demo.js';
import { healthCommand } from './commands/health.js';
import { initCommand } from './commands/init.js';
import { migrateCommand } from './commands/migrate.js';
import { migrationsCreateCommand } from './commands/migrations.js';
import { resetCommand } from './commands/reset.js';
import { migrateDownCommand, migratePlanCommand, migrateResumeCommand, migrateRevertCommand, runsCommand } from './commands/runs.js';
import { statusCommand } from './commands/status.js';
import { sweepCommand } from './commands/sweep.js';
import {
  tenantsActivateCommand,
  tenantsCreateCommand,
  tenantsDeactivateCommand,
  tenantsDropCommand,
  tenantsListCommand,
  tenantsMoveCommand,
  tenantsUpdateCommand,
} from './commands/tenants.js';
import { loadPlatformOptions } from './config.js';
import { helpText } from './help.js';
import { errorJson } from './output.js';
import { createFleetProgress, type ProgressStream } from './progress.js';
import { createScrubber, type Scrubber } from './scrubber.js';
import { packageVersion } from './version.js';

/** The process around a CLI run: its streams, environment and working directory. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  /** Errors, progress and commentary. */
  stderr: ProgressStream;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** The commands that work on files only: run without a platform (no configuration needed beyond what they read). */
const FILE_COMMANDS = {
  'migrations create': migrationsCreateCommand,
} satisfies Partial<Record<CommandName, FileCommand>>;

type FileCommandName = keyof typeof FILE_COMMANDS;

function isFileCommand(command: CommandName): command is FileCommandName {
  return Object.hasOwn(FILE_COMMANDS, command);
}

const COMMANDS: Record<Exclude<CommandName, FileCommandName>, Command> = {
  init: initCommand,
  migrate: migrateCommand,
  'migrate plan': migratePlanCommand,
  'migrate resume': migrateResumeCommand,
  'migrate down': migrateDownCommand,
  'migrate revert': migrateRevertCommand,
  runs: runsCommand,
  status: statusCommand,
  health: healthCommand,
  'tenants create': tenantsCreateCommand,
  'tenants list': tenantsListCommand,
  'tenants update': tenantsUpdateCommand,
  'tenants deactivate': tenantsDeactivateCommand,
  'tenants activate': tenantsActivateCommand,
  'tenants drop': tenantsDropCommand,
  'tenants move': tenantsMoveCommand,
  sweep: sweepCommand,
  reset: resetCommand,
  demo: demoCommand,
};

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message } : v)) ?? '';
  } catch {
    return String(value);
  }
}

/** The library's log lines on stderr (`--verbose`), secrets scrubbed. */
function stderrLogger(stderr: ProgressStream, scrub: Scrubber): Logger {
  const at =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      stderr.write(`${scrub(`${level} ${msg ?? ''} ${safeJson(obj)}`.replace(/\s+$/, ''))}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** `stream` with every text written through `scrub()` (read at each write: the scrubber grows once the options are known). */
function scrubbing<S extends ProgressStream>(stream: S, scrub: () => Scrubber): S {
  return {
    write: (text: string) => stream.write(scrub()(text)),
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns;
    },
  } as S;
}

function exitCodeOf(err: unknown): number {
  return err instanceof CliError ? err.exitCode : EXIT_CODES.FAILED;
}

/** Prints an error as `error CODE: message` (and its causes) on stderr, and as JSON on stdout with `--json`. */
function reportError(io: CliIo, err: unknown, json: boolean, scrub: Scrubber): void {
  const { code, message } = err instanceof CliError ? { code: err.kind, message: scrub(err.message) } : errorJson(err, scrub);
  const document = err instanceof CliError ? { code, message } : errorJson(err, scrub);
  let text = `error ${code}: ${message}\n`;
  let cause = (err as { cause?: unknown } | null)?.cause;
  for (let depth = 0; cause !== undefined && cause !== null && depth < 3; depth++) {
    const c = errorJson(cause, scrub);
    if (!message.includes(c.message)) text += `  cause: ${c.code === 'ERROR' ? '' : `${c.code} `}${c.message}\n`;
    cause = (cause as { cause?: unknown }).cause;
  }
  // A missing main database is the usual first-day mistake.
  if ((err as { code?: unknown } | null)?.code === '3D000') text += '  hint: run "tenantdb init" first\n';
  if (err instanceof CliError && err.kind === 'USAGE') text += '  see "tenantdb --help"\n';
  io.stderr.write(text);
  if (json) io.stdout.write(`${JSON.stringify({ error: document }, null, 2)}\n`);
}

function contextFor(
  args: CliArgs,
  platform: Platform,
  options: PlatformOptions,
  io: CliIo,
  scrub: Scrubber,
  print: (line: string) => void,
): CommandContext {
  return {
    args,
    platform,
    options,
    scrub,
    print,
    note: (line) => {
      if (!args.quiet) io.stderr.write(`${line}\n`);
    },
    warn: (line) => {
      io.stderr.write(`${line}\n`);
    },
    progress: (label) => (args.quiet ? undefined : createFleetProgress(io.stderr, label, scrub)),
  };
}

/**
 * Runs one `tenantdb` command line and returns the exit code (see {@link EXIT_CODES}); never throws.
 * The platform it opens is always closed before it returns.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(['migrate', '--json'], { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
 * ```
 */
export async function runCli(argv: readonly string[], cliIo: CliIo): Promise<number> {
  // Known before parsing, so that even a usage error is reported as JSON.
  const json = argv.includes('--json');
  let scrub = createScrubber(undefined, cliIo.env);
  // Everything printed goes through the scrubber of the moment, not only errors: results echo what was
  // typed (a URL pasted where a tenant id belongs comes back as the failed tenant's id).
  const io: CliIo = { ...cliIo, stdout: scrubbing(cliIo.stdout, () => scrub), stderr: scrubbing(cliIo.stderr, () => scrub) };
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (err) {
    reportError(io, err, json, scrub);
    return exitCodeOf(err);
  }
  if (args.version) {
    const version = packageVersion();
    io.stdout.write(args.json ? `${JSON.stringify({ version })}\n` : `${version}\n`);
    return EXIT_CODES.OK;
  }
  if (args.help || args.command === undefined) {
    io.stdout.write(helpText(args.command));
    return EXIT_CODES.OK;
  }

  const print = (line: string): void => {
    if (!args.json) io.stdout.write(`${line}\n`);
  };
  /** The outcome's document with `--json`, and its exit code. */
  const finish = (outcome: CommandOutcome): number => {
    // String by string as well: JSON escapes would hide a secret with a quote or a backslash from the stream's scrub.
    if (args.json) io.stdout.write(`${JSON.stringify(outcome.json, (_key, v: unknown) => (typeof v === 'string' ? scrub(v) : v), 2)}\n`);
    return outcome.exitCode ?? EXIT_CODES.OK;
  };

  if (isFileCommand(args.command)) {
    try {
      return finish(await FILE_COMMANDS[args.command]({ args, cwd: io.cwd, env: io.env, print }));
    } catch (err) {
      reportError(io, err, args.json, scrub);
      return exitCodeOf(err);
    }
  }

  let platform: Platform | undefined;
  try {
    let options = await loadPlatformOptions({ file: args.config, env: io.env, cwd: io.cwd });
    scrub = createScrubber(options, io.env);
    if (args.verbose && options.logger === undefined) options = { ...options, logger: stderrLogger(io.stderr, scrub) };
    try {
      platform = createPlatform(options);
    } catch (err) {
      throw isTenantDbError(err, 'VALIDATION') ? configError(`bad platform options: ${err.message}`, err) : err;
    }
    return finish(await COMMANDS[args.command](contextFor(args, platform, options, io, scrub, print)));
  } catch (err) {
    reportError(io, err, args.json, scrub);
    return exitCodeOf(err);
  } finally {
    await platform?.close().catch(() => {});
  }
}
