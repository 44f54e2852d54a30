import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../src/cli/args.js';
import { CliError } from '../../src/cli/cli-error.js';
import { createMigrationFiles, migrationName, nextMigrationNumber } from '../../src/cli/migration-files.js';

const made: string[] = [];
afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-migration-files-'));
  made.push(dir);
  return dir;
}

function kindOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (err) {
    return err instanceof CliError ? err.kind : 'not a CliError';
  }
  return undefined;
}

describe('migrations create: naming and numbering', () => {
  it('normalises names to lower-case [a-z0-9_] and refuses what leaves nothing', () => {
    expect(migrationName('Add invoices-table')).toBe('add_invoices_table');
    expect(migrationName('  add  Users!  ')).toBe('add_users');
    expect(migrationName('v2 -- index')).toBe('v2_index');
    expect(kindOf(() => migrationName('--- !!'))).toBe('USAGE');
    expect(kindOf(() => migrationName(''))).toBe('USAGE');
  });

  it('numbers one more than the highest migration file, ignoring other files', () => {
    expect(nextMigrationNumber([])).toBe('0001');
    expect(nextMigrationNumber(['0001_a.sql', '0007_b.down.sql', '0002_c.sql', 'README.md', '0009.txt'])).toBe('0008');
    expect(nextMigrationNumber(['9999_last.sql'])).toBe('10000');
  });

  it('writes the up and down files in a folder it creates, and never overwrites', async () => {
    const dir = path.join(await tempDir(), 'nested', 'tenant');
    const first = await createMigrationFiles({ dir, name: 'Add invoices', family: 'tenant' });
    expect(first).toEqual({
      name: '0001_add_invoices',
      up: path.join(dir, '0001_add_invoices.sql'),
      down: path.join(dir, '0001_add_invoices.down.sql'),
    });
    expect(await readFile(first.up, 'utf8')).toMatch(/^-- 0001_add_invoices: /);
    expect(await readFile(first.down, 'utf8')).toMatch(/^-- Reverts 0001_add_invoices/);
    await writeFile(path.join(dir, '0004_by_hand.sql'), 'select 1;\n');
    expect((await createMigrationFiles({ dir, name: 'next', family: 'main' })).name).toBe('0005_next');

    // Never overwrites: the files of a name taken already stay as they were, and racing creates either
    // get numbers of their own or are refused (USAGE), never leaving a down file without its up file.
    await writeFile(first.up, 'create table invoices ();\n');
    expect((await createMigrationFiles({ dir, name: 'add invoices', family: 'tenant' })).name).toBe('0006_add_invoices');
    expect(await readFile(first.up, 'utf8')).toBe('create table invoices ();\n');
    const race = await Promise.allSettled(Array.from({ length: 5 }, () => createMigrationFiles({ dir, name: 'race', family: 'tenant' })));
    for (const r of race) if (r.status === 'rejected') expect((r.reason as CliError).kind).toBe('USAGE');
    const names = race.flatMap((r) => (r.status === 'fulfilled' ? [r.value.name] : []));
    expect(new Set(names).size).toBe(names.length);
    const files = await readdir(dir);
    for (const down of files.filter((f) => f.endsWith('.down.sql'))) expect(files).toContain(down.replace('.down.sql', '.sql'));
  });

  it('parses --tenant and --main as the family, exclusive, one required', () => {
    expect(parseCliArgs(['migrations', 'create', 'add x', '--tenant', '--dir', 'm'])).toMatchObject({
      command: 'migrations create',
      operands: ['add x'],
      family: 'tenant',
      dir: 'm',
      tenants: [],
    });
    expect(parseCliArgs(['--config', 'c.mjs', 'migrations', 'create', 'x', '--main'])).toMatchObject({ family: 'main', config: 'c.mjs' });
    for (const argv of [
      ['migrations', 'create', 'x'],
      ['migrations', 'create', 'x', '--tenant', '--main'],
      ['migrations', 'create', '--tenant'],
      ['migrations', 'create', 'x', '--tenant', '--dir', ''],
      ['migrations', 'create', 'x', '--tenant', 'y'],
      ['migrations'],
      ['migrations', 'drop'],
      ['migrate', '--main'],
      ['status', '--dir', 'x'],
    ]) {
      expect(kindOf(() => parseCliArgs(argv)), argv.join(' ')).toBe('USAGE');
    }
    // Elsewhere --tenant still takes a tenant id.
    expect(parseCliArgs(['migrate', '--tenant', 'a']).tenants).toEqual(['a']);
  });
});
