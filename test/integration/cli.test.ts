import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminQuery, cleanUpPlatform, databaseExists, dbUrl, harnessProcessEnv, uniqueName } from '../support/env.js';
import { repoRoot as repo } from '../support/spawn.js';
import { useTempFolders } from '../support/temp-folders.js';
import { buildCliIfStale } from '../support/cli-build.js';
import { cleanEnv, cli, json } from '../support/cli-process.js';

// The CLI as a user runs it: `node dist/cli.js …` in a child process, judged by exit code and output.
const mainDbs: string[] = [];
let work: string;

/** The environment of a user pointing the CLI at the harness' servers, with a main database of its own. */
function platformEnv(mainDb: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  if (!mainDbs.includes(mainDb)) mainDbs.push(mainDb);
  return cleanEnv({ ...harnessProcessEnv(mainDb), ...extra });
}

const migrationFolder = useTempFolders('migrations', () => work);

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tenantdb-cli-test-'));
  await buildCliIfStale(work);
}, 120_000);

afterAll(async () => {
  for (const mainDb of mainDbs) await cleanUpPlatform(mainDb);
  await rm(work, { recursive: true, force: true });
});

describe('tenantdb: usage and configuration', () => {
  it('--help lists every command and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['init', 'migrate', 'status', 'tenants create', 'tenants list', 'sweep', 'reset --yes', 'demo']) {
      expect(run.stdout).toContain(command);
    }
    const one = await cli(['migrate', '--help']);
    expect(one.code).toBe(0);
    expect(one.stdout.startsWith('tenantdb migrate')).toBe(true);
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
    const run = await cli(['--version']);
    expect(run).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect(json(await cli(['--version', '--json']))).toEqual({ version });
  });

  it('an unknown command, an unknown option or a bad value exits 2', async () => {
    for (const args of [['bogus'], ['tenants', 'list', '--bogus'], ['migrate', '--concurrency', '0'], []]) {
      const run = await cli(args);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^error USAGE: /);
    }
    const run = await cli(['bogus', '--json']);
    expect(run.code).toBe(2);
    expect(json(run).error.code).toBe('USAGE');
  });

  it('reset and tenants drop without --yes refuse and exit 2, before reading any configuration', async () => {
    expect((await cli(['reset'])).code).toBe(2);
    expect((await cli(['tenants', 'drop', 'tenant_x_12345678'])).code).toBe(2);
  });

  it('missing configuration exits 3', async () => {
    const none = await cli(['status', '--json']);
    expect(none.code).toBe(3);
    expect(json(none).error.code).toBe('CONFIG');
    const noBucket = await cli(['status'], cleanEnv({ TENANTDB_MAIN_URL: dbUrl('tdbt_unused') }));
    expect(noBucket.code).toBe(3);
    expect(noBucket.stderr).toMatch(/^error CONFIG: /);
    const badUrl = await cli(['status'], cleanEnv({ TENANTDB_MAIN_URL: 'mysql://db/x', TENANTDB_S3_BUCKET: 'b' }));
    expect(badUrl.code).toBe(3);
    const badModule = await cli(['status', '--config', path.join(work, 'missing.mjs')]);
    expect(badModule.code).toBe(3);
  });

  it('never prints the database URL or its password, even when the server refuses it', async () => {
    const password = 'not-the-password-7f3a';
    const mainDb = uniqueName('tdbt_clipw');
    platformEnv(mainDb); // cleaned up afterwards, should a trusting server accept any password
    const url = new URL(dbUrl(mainDb));
    url.password = password;
    const run = await cli(['init', '--verbose'], cleanEnv({ TENANTDB_MAIN_URL: url.toString(), TENANTDB_S3_BUCKET: 'b' }));
    if (run.code !== 0) {
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^error [A-Z_]+: /m);
    }
    for (const output of [run.stdout, run.stderr]) {
      expect(output).not.toContain(password);
      expect(output).not.toContain(url.toString());
    }
  });
});

describe('tenantdb: a platform operated from the command line', () => {
  const mainDb = uniqueName('tdbt_cli');
  let env: Record<string, string | undefined>;
  const ids: Record<'acme' | 'globex', { id: string; databaseName: string }> = {} as never;

  beforeAll(() => {
    env = platformEnv(mainDb);
  });

  it('init creates and migrates the main database; again is a no-op', async () => {
    const run = await cli(['init'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(await databaseExists(mainDb)).toBe(true);
    const again = await cli(['init', '--json'], env);
    expect(again.code).toBe(0);
    expect(json(again)).toEqual({ initialized: true, mainDatabase: mainDb });
  });

  it('migrate main applies the host app main migrations', async () => {
    const folder = await migrationFolder({ '0101_app_settings.sql': 'CREATE TABLE app_settings (key text PRIMARY KEY, value text);' });
    const withFolder = { ...env, TENANTDB_MAIN_MIGRATIONS: folder };
    const run = await cli(['migrate', 'main', '--json'], withFolder);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run)).toEqual({ main: { applied: ['0101_app_settings'] } });
    expect(json(await cli(['migrate', 'main', '--json'], withFolder))).toEqual({ main: { applied: [] } });
  });

  it('tenants create, list, deactivate, activate', async () => {
    for (const name of ['acme', 'globex'] as const) {
      const run = await cli(['tenants', 'create', '--name', `${name} Inc`, '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      const { tenant } = json(run);
      expect(tenant).toMatchObject({ name: `${name} Inc`, isActive: true, status: 'ready', server: 'default' });
      expect(await databaseExists(tenant.databaseName)).toBe(true);
      ids[name] = { id: tenant.id, databaseName: tenant.databaseName };
    }
    const names = async (args: string[]): Promise<string[]> =>
      json<{ tenants: Array<{ name: string }> }>(await cli(['tenants', 'list', ...args, '--json'], env)).tenants.map((t) => t.name).sort();
    expect(await names([])).toEqual(['acme Inc', 'globex Inc']);

    // By database name as well as by id.
    const off = await cli(['tenants', 'deactivate', ids.globex.databaseName, '--json'], env);
    expect(off.code).toBe(0);
    expect(json(off).tenant).toMatchObject({ id: ids.globex.id, isActive: false });
    expect(await names([])).toEqual(['acme Inc']);
    expect(await names(['--all'])).toEqual(['acme Inc', 'globex Inc']);
    const on = await cli(['tenants', 'activate', ids.globex.id], env);
    expect(on.code).toBe(0);
    expect(await names([])).toEqual(['acme Inc', 'globex Inc']);

    const human = await cli(['tenants', 'list'], env);
    expect(human.stdout).toContain(ids.acme.databaseName);
  });

  it('tenants create --label, list --label, update', async () => {
    const labelled = await cli(['tenants', 'create', '--name', 'Initech', '--label', 'region=eu', '--label', 'plan=gold', '--json'], env);
    expect(labelled.code, labelled.stderr).toBe(0);
    const { tenant } = json(labelled);
    expect(tenant.labels).toEqual({ region: 'eu', plan: 'gold' });
    const listed = async (args: string[]): Promise<string[]> =>
      json<{ tenants: Array<{ id: string }> }>(await cli(['tenants', 'list', ...args, '--json'], env)).tenants.map((t) => t.id);
    expect(await listed(['--label', 'region=eu'])).toEqual([tenant.id]);
    expect(await listed(['--label', 'region=eu', '--label', 'plan=gold'])).toEqual([tenant.id]);
    expect(await listed(['--label', 'region=eu', '--label', 'plan=silver'])).toEqual([]);
    const human = await cli(['tenants', 'list', '--label', 'region=eu'], env);
    expect(human.stdout).toMatch(/labels/);
    expect(human.stdout).toContain('plan=gold,region=eu'); // jsonb's order of keys: shorter first
    expect((await cli(['tenants', 'list', '--label', 'region=mars'], env)).stdout).toContain('no active tenants with these labels');

    // By database name; the labels given replace them all; the database name stays.
    const updated = await cli(['tenants', 'update', tenant.databaseName, '--name', 'Initech 2', '--label', 'region=us', '--json'], env);
    expect(updated.code, updated.stderr).toBe(0);
    expect(json(updated).tenant).toMatchObject({ id: tenant.id, name: 'Initech 2', databaseName: tenant.databaseName, labels: { region: 'us' } });
    expect(await listed(['--label', 'region=eu'])).toEqual([]);
    const renamed = await cli(['tenants', 'update', tenant.id, '--name', 'Initech'], env);
    expect(renamed.code, renamed.stderr).toBe(0);
    expect(renamed.stdout).toContain('"Initech"');
    expect(renamed.stdout).toContain('labels region=us');

    const bad = await cli(['tenants', 'update', tenant.id, '--label', 'bad key=v', '--json'], env);
    expect(bad.code).toBe(1);
    expect(json(bad).error.code).toBe('VALIDATION');
    expect((await cli(['tenants', 'update', tenant.id], env)).code).toBe(2);
    // Gone again, so the fleet the next tests migrate is the two tenants above.
    expect((await cli(['tenants', 'drop', tenant.id, '--yes'], env)).code).toBe(0);
  });

  it("a command's TenantDbError exits 1 with error CODE on stderr", async () => {
    const run = await cli(['tenants', 'deactivate', '00000000-0000-4000-8000-000000000000'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error NOT_FOUND: /);
    const asJson = await cli(['tenants', 'create', '--name', 'x', '--server', 'nowhere', '--json'], env);
    expect(asJson.code).toBe(1);
    expect(json(asJson).error.code).toBe('VALIDATION');
  });

  it('migrate tenants rolls a host migration out over the fleet, a plain line per tenant on a pipe', async () => {
    const folder = await migrationFolder({ '0201_app_notes.sql': 'CREATE TABLE app_notes (id serial PRIMARY KEY, body text);' });
    const run = await cli(['migrate', 'tenants', '--json'], { ...env, TENANTDB_TENANT_MIGRATIONS: folder });
    expect(run.code, run.stderr).toBe(0);
    expect(json(run).tenants).toMatchObject({ total: 2, failed: [], skipped: [] });
    expect(json(run).tenants.succeeded.sort()).toEqual([ids.acme.id, ids.globex.id].sort());
    expect(run.stderr.match(/^\[\d\/2\] ok tenant_\w+ \(applied 0201_app_notes\)$/gm)).toHaveLength(2);

    const status = await cli(['status', '--json'], { ...env, TENANTDB_TENANT_MIGRATIONS: folder });
    expect(status.code).toBe(0);
    const doc = json(status);
    expect(doc.main).toEqual({ executed: ['0001_initial', '0002_tenant_dropping', '0003_tenant_credentials', '0004_tenant_moves', '0005_tenant_labels', '0006_migration_runs'], pending: [] });
    expect(doc.tenants).toHaveLength(2);
    for (const t of doc.tenants) {
      expect(t.executed).toContain('0201_app_notes');
      expect(t.pending).toEqual([]);
    }

    const summary = await cli(['status', '--summary', '--json'], { ...env, TENANTDB_TENANT_MIGRATIONS: folder });
    expect(summary.code, summary.stderr).toBe(0);
    expect(json(summary).tenants).toEqual({ total: 2, unreachable: 0, failed: 0, versions: [{ version: '0201_app_notes', tenants: 2, pending: 0 }] });
    const table = await cli(['status', '--summary'], { ...env, TENANTDB_TENANT_MIGRATIONS: folder });
    expect(table.stdout).toMatch(/^tenants: 2 ready tenants at 1 version$/m);
    expect(table.stdout).toMatch(/^ {2}0201_app_notes +2 +0$/m);
  });

  it('migrate (main, then tenants) exits 1 when one tenant fails, and migrates the others', async () => {
    const folder = await migrationFolder({
      '0201_app_notes.sql': 'CREATE TABLE app_notes (id serial PRIMARY KEY, body text);',
      '0202_app_notes_title.sql': `DO $$ BEGIN
          IF current_database() = '${ids.globex.databaseName}' THEN RAISE EXCEPTION 'globex cannot take this'; END IF;
        END $$;
        ALTER TABLE app_notes ADD COLUMN title text;`,
    });
    const failing = { ...env, TENANTDB_TENANT_MIGRATIONS: folder };
    const run = await cli(['migrate', '--concurrency', '2', '--json'], failing);
    expect(run.code).toBe(1);
    const doc = json(run);
    expect(doc.main).toEqual({ applied: [] });
    expect(doc.tenants).toMatchObject({ total: 2, succeeded: [ids.acme.id], skipped: [] });
    expect(doc.tenants.failed).toEqual([
      {
        tenantId: ids.globex.id,
        migration: '0202_app_notes_title',
        error: expect.objectContaining({ code: 'MIGRATION_FAILED' }),
      },
    ]);
    expect(run.stderr).toMatch(/^\[\d\/2\] FAILED /m);

    const human = await cli(['migrate', 'tenants'], failing);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(ids.globex.id);

    // Only the tenant that can take it: success.
    const one = await cli(['migrate', 'tenants', '--tenant', ids.acme.databaseName, '--json'], failing);
    expect(one.code).toBe(0);
    expect(json(one).tenants).toMatchObject({ total: 1, succeeded: [ids.acme.id], failed: [] });
  });

  it('sweep reports what it removed', async () => {
    const run = await cli(['sweep', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run)).toEqual({ objectsDeleted: expect.any(Number), uploadsAborted: expect.any(Number), tenantsDropped: 0 });
    const one = await cli(['sweep', '--tenant', ids.acme.databaseName, '--older-than-ms', '0', '--json'], env);
    expect(one.code).toBe(0);
    expect(json(one)).toMatchObject({ tenantId: ids.acme.id, objectsDeleted: 0, uploadsAborted: 0 });
  });

  it('tenants drop --yes drops the database and the registry row', async () => {
    const run = await cli(['tenants', 'drop', ids.acme.id, '--yes', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run).dropped).toMatchObject(ids.acme);
    expect(await databaseExists(ids.acme.databaseName)).toBe(false);
    const left = json<{ tenants: Array<{ id: string }> }>(await cli(['tenants', 'list', '--all', '--json'], env));
    expect(left.tenants.map((t) => t.id)).toEqual([ids.globex.id]);
  });

  it('demo runs the guided tour on the configured servers', async () => {
    const run = await cli(['demo', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run);
    expect(doc.documents.map((d: { deduplicated: boolean }) => d.deduplicated)).toEqual([false, true, false, false]);
    expect(doc.tenants[0].stats).toMatchObject({ documents: 3, files: 2 });
    expect(doc.migration).toMatchObject({ name: '9001_demo_document_tags', failed: 0 });
    expect(doc.migration.succeeded).toBe(doc.migration.total);
  }, 120_000);

  it('reset --yes drops every tenant database, the templates, the spare databases and the main database', async () => {
    const templates = (await adminQuery<{ name: string }>('SELECT database_name AS name FROM tenant_templates', [], mainDb)).rows.map((r) => r.name);
    expect(templates.length).toBeGreaterThan(0);
    const run = await cli(['reset', '--yes', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run);
    expect(doc).toMatchObject({ mainDatabase: mainDb, existed: true });
    expect(doc.tenantsDropped.length).toBe(3); // globex and the demo's two
    expect(doc.templatesDropped.sort()).toEqual(templates.sort());
    const spares = (await adminQuery<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'tenantdb\\_spare\\_%'")).rows;
    expect(spares.filter((r) => doc.sparesDropped.includes(r.datname))).toEqual([]);
    for (const name of [mainDb, ...templates, ...doc.sparesDropped, ...doc.tenantsDropped.map((t: { databaseName: string }) => t.databaseName)]) {
      expect(await databaseExists(name)).toBe(false);
    }
    const again = await cli(['reset', '--yes', '--json'], env);
    expect(again.code).toBe(0);
    expect(json(again)).toMatchObject({ existed: false });
  });
});

describe('tenantdb --config <module>', () => {
  it('takes the platform options from a module: a default-exported function, or a CommonJS options export', async () => {
    const mainDb = uniqueName('tdbt_clicfg');
    platformEnv(mainDb); // registers the database and prefix for cleanup
    const credentials = inject('s3Credentials');
    const options = {
      mainUrl: dbUrl(mainDb),
      s3: { bucket: inject('s3Bucket'), endpoint: inject('s3Endpoint'), region: 'us-east-1', prefix: `${mainDb}/`, credentials },
    };
    const esm = path.join(work, 'tenantdb.config.mjs');
    await writeFile(esm, `export default async () => (${JSON.stringify(options)});\n`);
    const cjs = path.join(work, 'tenantdb.config.cjs');
    await writeFile(cjs, `exports.options = ${JSON.stringify(options)};\n`);

    const init = await cli(['init', '--config', esm]);
    expect(init.code, init.stderr).toBe(0);
    expect(await databaseExists(mainDb)).toBe(true);
    const list = await cli(['tenants', 'list', '--config', cjs, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(json(list)).toEqual({ tenants: [] });

    const empty = path.join(work, 'empty.config.mjs');
    await writeFile(empty, 'export const unrelated = 1;\n');
    expect((await cli(['status', '--config', empty])).code).toBe(3);
  });
});

describe('tenantdb migrations create: files only, no database', () => {
  it('writes the next numbered up and down files in --dir, as text and as JSON', async () => {
    const dir = await migrationFolder({ '0001_first.sql': 'select 1;\n', '0002_second.sql': 'select 2;\n', 'notes.md': '' });
    const run = await cli(['migrations', 'create', 'Add Invoices-table', '--tenant', '--dir', dir]);
    expect(run.code, run.stderr).toBe(0);
    const up = path.join(dir, '0003_add_invoices_table.sql');
    const down = path.join(dir, '0003_add_invoices_table.down.sql');
    expect(run.stdout).toBe(`${up}\n${down}\n`);
    expect(readFileSync(up, 'utf8')).toMatch(/^-- 0003_add_invoices_table: applied once to every tenant database/);
    expect(readFileSync(down, 'utf8')).toMatch(/^-- Reverts 0003_add_invoices_table/);
    const again = await cli(['migrations', 'create', 'next', '--main', '--dir', path.join(dir, 'new'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(json(again)).toEqual({
      name: '0001_next',
      up: path.join(dir, 'new', '0001_next.sql'),
      down: path.join(dir, 'new', '0001_next.down.sql'),
    });
  });

  it('defaults to the first configured folder of the family, else asks for --dir (exit 2)', async () => {
    const [tenantDir, other, mainDir] = [await migrationFolder({}), await migrationFolder({}), await migrationFolder({ '0041_x.sql': '' })];
    const fromEnv = await cli(
      ['migrations', 'create', 'a', '--tenant', '--json'],
      cleanEnv({ TENANTDB_TENANT_MIGRATIONS: [tenantDir, other].join(path.delimiter) }),
    );
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(json(fromEnv).up).toBe(path.join(tenantDir, '0001_a.sql'));
    const config = path.join(work, 'migrations.config.mjs');
    await writeFile(config, `export default { mainUrl: 'postgres://nowhere.invalid/x', s3: { bucket: 'b' }, mainMigrations: [${JSON.stringify(mainDir)}] };\n`);
    const fromConfig = await cli(['migrations', 'create', 'b', '--main', '--config', config, '--json']);
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(json(fromConfig).up).toBe(path.join(mainDir, '0042_b.sql'));

    const none = await cli(['migrations', 'create', 'c', '--tenant', '--config', config, '--json']);
    expect(none.code).toBe(2);
    expect(json(none).error.code).toBe('USAGE');
    expect(none.stderr).toContain('--dir');
  });

  it('refuses exclusive or missing family flags and an empty name with exit 2, writing nothing', async () => {
    const dir = await migrationFolder({});
    for (const args of [
      ['migrations', 'create', 'x', '--tenant', '--main', '--dir', dir],
      ['migrations', 'create', 'x', '--dir', dir],
      ['migrations', 'create', '!!', '--tenant', '--dir', dir],
    ]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^error USAGE: /);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
