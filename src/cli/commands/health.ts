import { EXIT_CODES } from '../cli-error.js';
import type { HealthCheck } from '../../index.js';
import type { Command } from '../command-context.js';
import { formatTable } from '../output.js';

/**
 * `tenantdb health [--timeout-ms N]`: checks the main database, every tenant server and S3 at once (see
 * `platform.health()`), a line per check; exit 1 when one failed.
 */
export const healthCommand: Command = async ({ platform, args, print, scrub }) => {
  const report = await platform.health(args.timeoutMs === undefined ? {} : { timeoutMs: args.timeoutMs });
  const { main, servers, s3 } = report.checks;
  const checks: Array<[string, HealthCheck]> = [
    ['main', main],
    ...Object.entries(servers).map(([name, check]): [string, HealthCheck] => [`server ${name}`, check]),
    ['s3', s3],
  ];
  const rows = checks.map(([name, c]) => [
    name,
    c.ok ? 'ok' : 'FAILED',
    `${c.latencyMs} ms`,
    c.error ? scrub(`${c.error.code} ${c.error.message}`) : '',
  ]);
  for (const line of formatTable(['check', 'status', 'latency', 'error'], rows)) print(line);
  print(report.ok ? 'healthy' : 'unhealthy');
  return { json: report, ...(!report.ok && { exitCode: EXIT_CODES.FAILED }) };
};
