import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetStatusSummary, Platform, Tenant } from '../../src/index.js';
import { useTestPlatform } from '../support/env.js';
import { harnessServer, refusedServer } from '../support/server-urls.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform({ tenantServers: { default: harnessServer('default'), eu1: harnessServer('eu1') }, tenantSpares: 0 });
let folder: string;
let hosted: Platform;
let home: Tenant[];
let away: Tenant;
let builtIn: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'tenantdb-summary-'));
  const base = await env.initPlatform();
  home = await Promise.all([0, 1, 2, 3].map((i) => base.tenants.create({ name: `Summary ${i}`, server: 'default' })));
  away = await base.tenants.create({ name: 'Summary away', server: 'eu1' });
  builtIn = (await base.migrations.tenants.status()).find((r) => r.tenantId === home[0]!.id)!.executed.at(-1)!;
  await writeFile(path.join(folder, '0100_notes.sql'), 'CREATE TABLE notes (id int PRIMARY KEY);\n');
  await writeFile(path.join(folder, '0101_notes_body.sql'), 'ALTER TABLE notes ADD COLUMN body text;\n');
  // A rollout caught half way: two tenants current, one at the first host migration, the rest at the built-in ones.
  hosted = env.platform({ tenantMigrations: [folder] });
  const result = await hosted.migrations.tenants.up({ tenants: [home[0]!.id, away.id] });
  expect(result.failed).toEqual([]);
  await (await hosted.migrations.tenant(home[1]!)).up({ to: '0100_notes' });
}, 120_000);

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('migrations.tenants.status({ summary: true })', () => {
  it('counts the tenants at each version, in migration order, with what is pending there', async () => {
    const summary: FleetStatusSummary = await hosted.migrations.tenants.status({ summary: true });
    expect(summary).toEqual({
      total: 5,
      unreachable: 0,
      failed: 0,
      versions: [
        { version: builtIn, tenants: 2, pending: 2 },
        { version: '0100_notes', tenants: 1, pending: 1 },
        { version: '0101_notes_body', tenants: 2, pending: 0 },
      ],
    });
    // Without the argument: the rows, as before.
    const rows = await hosted.migrations.tenants.status();
    expect(rows).toHaveLength(5);
    expect(rows.find((r) => r.tenantId === home[1]!.id)).toMatchObject({ reachable: true, pending: ['0101_notes_body'] });
    expect(Array.isArray(await hosted.migrations.tenants.status({ summary: false }))).toBe(true);
  });

  it('counts the tenants of a server that cannot be reached apart', async () => {
    const down = env.platform({ tenantServers: { default: harnessServer('default'), eu1: refusedServer() }, tenantMigrations: [folder], tenantSpares: 0 });
    const summary = await down.migrations.tenants.status({ summary: true });
    expect(summary).toMatchObject({ total: 5, unreachable: 1, failed: 0 });
    expect(summary.versions).toEqual([
      { version: builtIn, tenants: 2, pending: 2 },
      { version: '0100_notes', tenants: 1, pending: 1 },
      { version: '0101_notes_body', tenants: 1, pending: 0 },
    ]);
  });

  it('refuses options that are not an object, and a summary that is not a boolean (VALIDATION)', async () => {
    expect(await rejectionCode(hosted.migrations.tenants.status('summary' as never))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.status(null as never))).toBe('VALIDATION');
    expect(await rejectionCode(hosted.migrations.tenants.status({ summary: 'yes' } as never))).toBe('VALIDATION');
  });
});
