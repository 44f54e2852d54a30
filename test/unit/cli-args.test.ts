import { describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../src/cli/args.js';
import { CliError } from '../../src/cli/cli-error.js';

function usage(argv: string[]): CliError {
  try {
    parseCliArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

describe('tenantdb command line', () => {
  it('parses commands, sub-commands, operands and options', () => {
    expect(parseCliArgs(['migrate'])).toMatchObject({ command: 'migrate', operands: [], concurrency: undefined, tenants: [] });
    expect(parseCliArgs(['migrate', 'tenants', '--concurrency', '8', '--tenant', 'a', '--tenant=b', '--json'])).toMatchObject({
      command: 'migrate',
      operands: ['tenants'],
      concurrency: 8,
      tenants: ['a', 'b'],
      json: true,
    });
    expect(parseCliArgs(['tenants', 'create', '--name', 'Acme', '--created-by', 'u1', '--server', 'eu1'])).toMatchObject({
      command: 'tenants create',
      name: 'Acme',
      createdBy: 'u1',
      server: 'eu1',
    });
    expect(parseCliArgs(['tenants', 'list', '--all'])).toMatchObject({ command: 'tenants list', all: true });
    expect(parseCliArgs(['tenants', 'drop', 'tenant_acme_1234abcd', '--yes'])).toMatchObject({
      command: 'tenants drop',
      operands: ['tenant_acme_1234abcd'],
      yes: true,
    });
    expect(parseCliArgs(['sweep', '--tenant', 't1', '--older-than-ms', '0'])).toMatchObject({ tenants: ['t1'], olderThanMs: 0 });
    expect(parseCliArgs(['reset', '--yes', '--config', 'conf.mjs', '--quiet', '--verbose'])).toMatchObject({
      command: 'reset',
      config: 'conf.mjs',
      quiet: true,
      verbose: true,
    });
  });

  it('accepts --help and --version without a command, and --help without required options', () => {
    expect(parseCliArgs(['--help'])).toMatchObject({ help: true, command: undefined });
    expect(parseCliArgs(['-h'])).toMatchObject({ help: true });
    expect(parseCliArgs(['reset', '--help'])).toMatchObject({ help: true, command: 'reset' });
    expect(parseCliArgs(['tenants', 'drop', '-h'])).toMatchObject({ help: true, command: 'tenants drop' });
    expect(parseCliArgs(['nonsense', '--help'])).toMatchObject({ help: true, command: undefined });
    expect(parseCliArgs(['--version'])).toMatchObject({ version: true });
  });

  it('rejects unknown commands and options as USAGE (exit 2)', () => {
    for (const argv of [[], ['bogus'], ['tenants'], ['tenants', 'rename'], ['init', '--bogus'], ['status', 'extra']]) {
      const err = usage(argv);
      expect(err.kind).toBe('USAGE');
      expect(err.exitCode).toBe(2);
    }
  });

  it('rejects options that do not apply to the command', () => {
    expect(usage(['init', '--yes']).kind).toBe('USAGE');
    expect(usage(['tenants', 'list', '--name', 'x']).kind).toBe('USAGE');
    expect(usage(['migrate', 'main', '--tenant', 'x']).kind).toBe('USAGE');
    expect(usage(['migrate', 'main', '--concurrency', '2']).kind).toBe('USAGE');
    expect(usage(['sweep', '--tenant', 'a', '--tenant', 'b']).kind).toBe('USAGE');
  });

  it('rejects bad values and missing operands', () => {
    expect(usage(['migrate', 'everything']).kind).toBe('USAGE');
    for (const value of ['0', '-1', '1.5', 'four', '']) expect(usage(['migrate', '--concurrency', value]).kind).toBe('USAGE');
    expect(usage(['sweep', '--older-than-ms', '-5']).kind).toBe('USAGE');
    expect(usage(['tenants', 'deactivate']).kind).toBe('USAGE');
    expect(usage(['tenants', 'activate', 'a', 'b']).kind).toBe('USAGE');
    expect(usage(['tenants', 'create']).kind).toBe('USAGE');
    expect(usage(['tenants', 'create', '--name', '  ']).kind).toBe('USAGE');
  });

  it('--label key=value, repeatable, on tenants create, update and list', () => {
    expect(parseCliArgs(['tenants', 'create', '--name', 'Acme', '--label', 'region=eu', '--label=plan=a=b', '--label', 'empty='])).toMatchObject({
      command: 'tenants create',
      labels: { region: 'eu', plan: 'a=b', empty: '' },
    });
    expect(parseCliArgs(['tenants', 'create', '--name', 'Acme']).labels).toBeUndefined();
    expect(parseCliArgs(['tenants', 'list', '--label', 'region=eu', '--all'])).toMatchObject({ labels: { region: 'eu' }, all: true });
    expect(parseCliArgs(['tenants', 'update', 'id1', '--name', 'New'])).toMatchObject({
      command: 'tenants update',
      operands: ['id1'],
      name: 'New',
      labels: undefined,
    });
    expect(parseCliArgs(['tenants', 'update', 'id1', '--label', 'a=1'])).toMatchObject({ labels: { a: '1' } });
    // An own property, which the library refuses as a key (VALIDATION), not the prototype.
    const proto = parseCliArgs(['tenants', 'list', '--label', '__proto__=x']).labels!;
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(['__proto__']);
  });

  it('rejects a malformed --label, a key given twice, and an update with nothing to change', () => {
    for (const label of ['region', '=eu', '']) expect(usage(['tenants', 'list', '--label', label]).kind).toBe('USAGE');
    expect(usage(['tenants', 'create', '--name', 'A', '--label', 'a=1', '--label', 'a=2']).kind).toBe('USAGE');
    expect(usage(['tenants', 'update', 'id1']).kind).toBe('USAGE');
    expect(usage(['tenants', 'update', '--name', 'A']).kind).toBe('USAGE');
    expect(usage(['tenants', 'update', 'id1', '--name', ' ']).kind).toBe('USAGE');
    expect(usage(['tenants', 'deactivate', 'id1', '--label', 'a=1']).kind).toBe('USAGE');
  });

  it('requires --yes for the commands that destroy data', () => {
    expect(usage(['reset']).exitCode).toBe(2);
    expect(usage(['tenants', 'drop', 'tenant_x']).exitCode).toBe(2);
  });

  it('takes --summary for status only', () => {
    expect(parseCliArgs(['status', '--summary']).summary).toBe(true);
    expect(parseCliArgs(['status']).summary).toBe(false);
    expect(parseCliArgs(['health', '--timeout-ms', '250']).timeoutMs).toBe(250);
    expect(parseCliArgs(['health']).timeoutMs).toBeUndefined();
    expect(() => parseCliArgs(['status', '--timeout-ms', '250'])).toThrow(/does not apply/);
    expect(usage(['tenants', 'list', '--summary']).kind).toBe('USAGE');
  });

  it('the fleet-run commands: migrate plan, resume, down, revert, and runs', () => {
    expect(parseCliArgs(['migrate', 'plan', '--label', 'plan=free', '--canary', '2'])).toMatchObject({
      command: 'migrate plan',
      operands: [],
      labels: { plan: 'free' },
      waves: [2, '100%'],
    });
    expect(parseCliArgs(['migrate', 'resume', 'r1', '--concurrency', '2'])).toMatchObject({ command: 'migrate resume', operands: ['r1'], concurrency: 2 });
    expect(parseCliArgs(['migrate', 'down', '--to', '0100_x', '--server', 'eu1'])).toMatchObject({ command: 'migrate down', to: '0100_x', server: 'eu1' });
    expect(parseCliArgs(['migrate', 'revert', 'r1', '--max-failures', '2'])).toMatchObject({ command: 'migrate revert', operands: ['r1'], maxFailures: 2 });
    expect(parseCliArgs(['runs'])).toMatchObject({ command: 'runs', operands: [], limit: undefined });
    expect(parseCliArgs(['runs', '--limit', '5'])).toMatchObject({ command: 'runs', limit: 5 });
    expect(parseCliArgs(['runs', 'r1'])).toMatchObject({ command: 'runs', operands: ['r1'] });
    // `migrate` alone and with its targets is still the command `migrate`.
    expect(parseCliArgs(['migrate', 'tenants'])).toMatchObject({ command: 'migrate', operands: ['tenants'] });
    expect(parseCliArgs(['migrate', 'plan', '--help'])).toMatchObject({ command: 'migrate plan', help: true });
  });

  it('--canary and --waves make the waves; the stop rules, dates and --only-failed are taken as given', () => {
    const waves = (argv: string[]): unknown => parseCliArgs(['migrate', 'tenants', ...argv]).waves;
    expect(waves([])).toBeUndefined();
    expect(waves(['--canary', '5', '--waves', '10%,100%'])).toEqual([5, '10%', '100%']);
    expect(waves(['--waves', '10, 25%, 100%'])).toEqual([10, '25%', '100%']);
    expect(waves(['--waves', '2.5%,100%'])).toEqual(['2.5%', '100%']);
    expect(waves(['--canary', '1'])).toEqual([1, '100%']);
    expect(
      parseCliArgs([
        'migrate', '--max-failures', '3', '--max-failure-rate', '0.05', '--created-before', '2026-01-01',
        '--created-after', '2025-06-01T00:00:00Z', '--tenant', 'b', '--tenant', 'a', '--only-failed', 'r1',
      ]),
    ).toMatchObject({
      maxFailures: 3,
      maxFailureRate: 0.05,
      createdBefore: '2026-01-01',
      createdAfter: '2025-06-01T00:00:00Z',
      tenants: ['b', 'a'],
      onlyFailed: 'r1',
    });
    expect(parseCliArgs(['migrate', '--max-failure-rate', '1']).maxFailureRate).toBe(1);
  });

  it('rejects bad fleet-run values and options that do not apply, as USAGE', () => {
    for (const argv of [
      ['--canary', '0'],
      ['--canary', '1.5'],
      ['--waves', ''],
      ['--waves', '0%'],
      ['--waves', '101%'],
      ['--waves', '10%,,100%'],
      ['--waves', 'ten'],
      ['--waves', '-1'],
      ['--max-failures', '0'],
      ['--max-failure-rate', '0'],
      ['--max-failure-rate', '1.01'],
      ['--max-failure-rate', '5%'],
      ['--max-failure-rate', 'NaN'],
      ['--created-before', 'soon'],
      ['--created-after', ''],
      ['--only-failed', ' '],
    ]) {
      expect(usage(['migrate', 'tenants', ...argv]).kind, argv.join(' ')).toBe('USAGE');
    }
    expect(usage(['migrate', 'main', '--waves', '100%']).message).toContain('--waves');
    expect(usage(['migrate', 'main', '--only-failed', 'r1']).kind).toBe('USAGE');
    expect(usage(['migrate', 'plan', '--concurrency', '2']).kind).toBe('USAGE');
    expect(usage(['migrate', 'plan', '--only-failed', 'r1']).kind).toBe('USAGE');
    expect(usage(['migrate', 'plan', 'extra']).kind).toBe('USAGE');
    expect(usage(['migrate', 'resume']).message).toContain('a run id');
    expect(usage(['migrate', 'resume', 'r1', '--tenant', 'a']).kind).toBe('USAGE');
    expect(usage(['migrate', 'down']).message).toContain('--to');
    expect(usage(['migrate', 'down', '--to', '']).kind).toBe('USAGE');
    expect(usage(['migrate', 'revert', 'r1', '--label', 'a=b']).kind).toBe('USAGE');
    expect(usage(['runs', 'r1', '--limit', '2']).kind).toBe('USAGE');
    expect(usage(['runs', '--limit', '0']).kind).toBe('USAGE');
    expect(usage(['runs', 'a', 'b']).kind).toBe('USAGE');
    expect(usage(['status', '--canary', '1']).kind).toBe('USAGE');
  });
});
