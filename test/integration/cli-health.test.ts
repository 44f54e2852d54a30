import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { harnessProcessEnv, serverUrl } from '../support/env.js';
import { buildCliIfStale, cliJs } from '../support/cli-build.js';
import { harnessServer } from '../support/server-urls.js';
import { silentServer } from '../support/silent-server.js';
import { runProcess, type ProcessRun } from '../support/spawn.js';

// `tenantdb health` as a user runs it, against the harness' servers (its `postgres` database as the main
// database: health needs no init, so there is nothing to clean up) and a server that never answers.
let work: string;
let hung: Awaited<ReturnType<typeof silentServer>>;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-cli-health-'));
  hung = await silentServer({ swallow: true });
  await buildCliIfStale(work);
}, 120_000);

afterAll(async () => {
  await hung.close();
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[], extra: Record<string, string> = {}): Promise<ProcessRun> {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...harnessProcessEnv('postgres'),
    TENANTDB_MAIN_URL: serverUrl(),
    ...extra,
  };
  return runProcess(process.execPath, [cliJs, ...args], env);
}

describe('tenantdb health', () => {
  it('prints a line per check and exits 0 when every check is ok; --json prints the report', async () => {
    const run = await cli(['health', '--timeout-ms', '10000']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^check\s+status\s+latency\s+error$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/).slice(0, -2).join(' '))).toEqual(['main ok', 'server default ok', 's3 ok']);
    expect(lines.at(-1)).toBe('healthy');

    const json = await cli(['health', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      ok: true,
      checks: {
        main: { ok: true, latencyMs: expect.any(Number) },
        servers: { default: { ok: true, latencyMs: expect.any(Number) } },
        s3: { ok: true, latencyMs: expect.any(Number) },
      },
    });
  });

  it('exits 1 when a check fails, within about --timeout-ms, and never prints a password', async () => {
    const password = 'health-secret-9c1e';
    const config = path.join(work, 'health.config.mjs');
    const credentials = inject('s3Credentials');
    const options = {
      mainUrl: serverUrl(),
      s3: { bucket: inject('s3Bucket'), endpoint: inject('s3Endpoint'), region: 'us-east-1', credentials },
      tenantServers: { default: harnessServer('health'), hung: `postgres://app:${password}@127.0.0.1:${hung.port}` },
    };
    await writeFile(config, `export default ${JSON.stringify(options)};\n`);
    const started = Date.now();
    const run = await cli(['health', '--config', config, '--timeout-ms', '500']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/^server hung\s+FAILED\s+\d+ ms\s+UNAVAILABLE the tenant server "hung" did not answer within 500 ms$/m);
    expect(run.stdout).toMatch(/^server default\s+ok\s/m);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('unhealthy');

    const json = await cli(['health', '--config', config, '--timeout-ms', '500', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, checks: { servers: { hung: { ok: false, error: { code: 'UNAVAILABLE' } } } } });
    // Two runs, each a process start and about half a second of checks.
    expect(Date.now() - started).toBeLessThan(20_000);
    for (const output of [run.stdout, run.stderr, json.stdout, json.stderr]) expect(output).not.toContain(password);
  });

  it('refuses a bad --timeout-ms with exit 2, and documents the command', async () => {
    for (const value of ['0', '-5', 'soon']) expect((await cli(['health', '--timeout-ms', value])).code).toBe(2);
    const help = await cli(['health', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.startsWith('tenantdb health [--timeout-ms N]')).toBe(true);
    expect((await cli(['--help'])).stdout).toContain('health [--timeout-ms N]');
  });
});
