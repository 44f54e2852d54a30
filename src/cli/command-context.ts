import type { Platform, PlatformOptions } from '../index.js';
import type { CliArgs } from './args.js';
import type { FleetProgress } from './progress.js';
import type { Scrubber } from './scrubber.js';

/** What a command gets to do its work. */
export interface CommandContext {
  readonly args: CliArgs;
  /** The platform of this run; the runner closes it after the command. */
  readonly platform: Platform;
  /** The options `platform` was created with. */
  readonly options: PlatformOptions;
  /** A line of human output on stdout; nothing with `--json`. */
  print(line: string): void;
  /** A line of commentary on stderr (progress, what is being done); nothing with `--quiet`. */
  note(line: string): void;
  /** A line on stderr even with `--quiet`: why the command exits 1 though it did not throw. */
  warn(line: string): void;
  /** Progress display for a fleet migration on stderr, or undefined with `--quiet`. */
  progress(label: string): FleetProgress | undefined;
  /** Hides secrets in text. */
  readonly scrub: Scrubber;
}

/** What a command returns: the document printed with `--json`, and the exit code (default 0). */
export interface CommandOutcome {
  json: unknown;
  exitCode?: number;
}

/** One `tenantdb` command. */
export type Command = (cx: CommandContext) => Promise<CommandOutcome>;

/** What a command that only works on files gets: no platform, no connection. */
export interface FileCommandContext {
  readonly args: CliArgs;
  /** The working directory relative paths are resolved against. */
  readonly cwd: string;
  /** The environment (the configuration variables, when `--config` is not given). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** A line of human output on stdout; nothing with `--json`. */
  print(line: string): void;
}

/** One `tenantdb` command that works on files only. */
export type FileCommand = (cx: FileCommandContext) => Promise<CommandOutcome>;
