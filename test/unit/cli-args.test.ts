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
    expect(usage(['tenants', 'list', '--summary']).kind).toBe('USAGE');
  });
});
