/**
 * The exit codes of the `tenantdb` command, documented in the README: deploy scripts rely on them.
 */
export const EXIT_CODES = Object.freeze({
  /** Everything asked for was done. */
  OK: 0,
  /** Some work failed: a tenant's migration, or a command's `TenantDbError`. */
  FAILED: 1,
  /** A bad command line: unknown command or option, a bad value, a missing `--yes`. */
  USAGE: 2,
  /** Missing or bad configuration (environment or `--config` module). */
  CONFIG: 3,
});

/** What kind of mistake a {@link CliError} reports: `USAGE` exits 2, `CONFIG` exits 3. */
export type CliErrorKind = 'USAGE' | 'CONFIG';

/** A mistake of the person (or script) running the command, as opposed to a failure of the work. */
export class CliError extends Error {
  /** `USAGE` or `CONFIG`; also the code printed as `error CODE: message`. */
  readonly kind: CliErrorKind;

  constructor(kind: CliErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
  }

  override get name(): string {
    return 'CliError';
  }

  /** The process exit code for this error. */
  get exitCode(): number {
    return this.kind === 'USAGE' ? EXIT_CODES.USAGE : EXIT_CODES.CONFIG;
  }
}

/** A {@link CliError} of kind `USAGE` (exit 2). */
export function usageError(message: string): CliError {
  return new CliError('USAGE', message);
}

/** A {@link CliError} of kind `CONFIG` (exit 3). */
export function configError(message: string, cause?: unknown): CliError {
  return new CliError('CONFIG', message, cause === undefined ? undefined : { cause });
}
