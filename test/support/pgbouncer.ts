import { describe, inject } from 'vitest';

/** PgBouncer's pool modes the harness runs one PgBouncer for. */
export type PgBouncerMode = 'session' | 'transaction';

/** Why the PgBouncer tests are skipped (not installed); empty when the harness' PgBouncers run. */
export function pgbouncerSkipReason(): string {
  return inject('pgbouncerSkipReason');
}

/** True when the harness runs its PgBouncers; for `describe.skipIf(!pgbouncerAvailable)`. */
export const pgbouncerAvailable: boolean = pgbouncerSkipReason() === '';

/** URL of the `postgres` database through the harness' PgBouncer in `mode`; undefined when none runs. */
export function pgbouncerUrl(mode: PgBouncerMode): string | undefined {
  const url = inject(mode === 'session' ? 'pgbouncerSessionUrl' : 'pgbouncerTransactionUrl');
  return url === '' ? undefined : url;
}

/**
 * The pooled URL of `database`: {@link dbUrl} of env.ts, but through the harness' PgBouncer in `mode`
 * (which forwards any database name to the test server). Throws when no PgBouncer runs, so a test that
 * forgot to skip fails loudly instead of testing the server directly.
 */
export function viaPgBouncer(mode: PgBouncerMode, database: string): string {
  const base = pgbouncerUrl(mode);
  if (base === undefined) throw new Error(`no ${mode}-mode PgBouncer runs: ${pgbouncerSkipReason()}`);
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A describe block that needs the harness' PgBouncers; skipped when they do not run, with the reason in
 * its name so the skip shows in the report.
 */
export function describeWithPgBouncer(name: string, fn: () => void): void {
  if (pgbouncerAvailable) describe(name, fn);
  else describe.skip(`${name} (skipped: ${pgbouncerSkipReason()})`, fn);
}
