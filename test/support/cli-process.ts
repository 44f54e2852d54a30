import { runProcess, type ProcessRun } from './spawn.js';
import { cliJs } from './cli-build.js';

/** Only what a clean shell has: no TENANTDB_* or AWS_* from the environment of the test run. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

/** The CLI as a user runs it: `node dist/cli.js …` in a child process, judged by exit code and output. */
export function cli(args: string[], env: Record<string, string | undefined> = cleanEnv()): Promise<ProcessRun> {
  return runProcess(process.execPath, [cliJs, ...args], env);
}

/** The one JSON document a `--json` run printed on stdout (loosely typed: the assertions check its shape). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function json<T = Record<string, any>>(run: ProcessRun): T {
  return JSON.parse(run.stdout) as T;
}
