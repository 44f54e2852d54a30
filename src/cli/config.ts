import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PlatformOptions } from '../index.js';
import { configError } from './cli-error.js';

/** The environment variables the CLI reads, documented in the README. */
export const CONFIG_ENV = [
  'TENANTDB_MAIN_URL',
  'TENANTDB_MAIN_ADMIN_URL',
  'TENANTDB_S3_BUCKET',
  'TENANTDB_S3_ENDPOINT',
  'TENANTDB_S3_REGION',
  'TENANTDB_S3_PREFIX',
  'TENANTDB_S3_FORCE_PATH_STYLE',
  'TENANTDB_TENANT_MIGRATIONS',
  'TENANTDB_MAIN_MIGRATIONS',
] as const;

type Env = Readonly<Record<string, string | undefined>>;

function folders(value: string | undefined, cwd: string): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(path.delimiter)
    .filter((f) => f.trim() !== '')
    .map((f) => path.resolve(cwd, f));
}

function set(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * {@link PlatformOptions} from the environment: `TENANTDB_MAIN_URL` and `TENANTDB_S3_BUCKET` are
 * required; `TENANTDB_MAIN_ADMIN_URL` (a direct URL when the main URL is a pooler), `TENANTDB_S3_ENDPOINT`, `TENANTDB_S3_REGION`, `TENANTDB_S3_PREFIX`,
 * `TENANTDB_S3_FORCE_PATH_STYLE` (`true`/`false`) and the migration folders
 * (`TENANTDB_TENANT_MIGRATIONS`, `TENANTDB_MAIN_MIGRATIONS`: separated by `path.delimiter`, relative to
 * `cwd`) are optional. S3 credentials are left to the AWS SDK's default chain (`AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, …). A missing variable is a CONFIG CliError (exit 3).
 */
export function optionsFromEnv(env: Env, cwd: string = process.cwd()): PlatformOptions {
  const mainUrl = set(env.TENANTDB_MAIN_URL);
  if (mainUrl === undefined) throw configError('TENANTDB_MAIN_URL is not set (or pass --config <module>)');
  const bucket = set(env.TENANTDB_S3_BUCKET);
  if (bucket === undefined) throw configError('TENANTDB_S3_BUCKET is not set (or pass --config <module>)');
  const forcePathStyle = set(env.TENANTDB_S3_FORCE_PATH_STYLE);
  if (forcePathStyle !== undefined && forcePathStyle !== 'true' && forcePathStyle !== 'false') {
    throw configError('TENANTDB_S3_FORCE_PATH_STYLE must be true or false');
  }
  const s3: PlatformOptions['s3'] = { bucket };
  const endpoint = set(env.TENANTDB_S3_ENDPOINT);
  const region = set(env.TENANTDB_S3_REGION);
  const prefix = set(env.TENANTDB_S3_PREFIX);
  if (endpoint !== undefined) s3.endpoint = endpoint;
  if (region !== undefined) s3.region = region;
  if (prefix !== undefined) s3.prefix = prefix;
  if (forcePathStyle !== undefined) s3.forcePathStyle = forcePathStyle === 'true';
  const options: PlatformOptions = { mainUrl, s3 };
  const mainAdminUrl = set(env.TENANTDB_MAIN_ADMIN_URL);
  if (mainAdminUrl !== undefined) options.mainAdminUrl = mainAdminUrl;
  const tenantMigrations = folders(env.TENANTDB_TENANT_MIGRATIONS, cwd);
  const mainMigrations = folders(env.TENANTDB_MAIN_MIGRATIONS, cwd);
  if (tenantMigrations) options.tenantMigrations = tenantMigrations;
  if (mainMigrations) options.mainMigrations = mainMigrations;
  return options;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * {@link PlatformOptions} from a config module (`.js`, `.mjs` or `.cjs`, relative to `cwd`): its default
 * export, else its `options` export, either the options themselves or a function returning them (or a
 * promise of them). A module that cannot be loaded or exports nothing usable is a CONFIG CliError (exit 3).
 *
 * @example
 * ```js
 * // tenantdb.config.mjs
 * export default () => ({ mainUrl: process.env.DATABASE_URL, s3: { bucket: 'docs' } });
 * ```
 */
export async function optionsFromModule(file: string, cwd: string = process.cwd()): Promise<PlatformOptions> {
  const absolute = path.resolve(cwd, file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (err) {
    throw configError(`cannot load the config module ${absolute}: ${(err as Error).message}`, err);
  }
  let value: unknown = mod.default;
  // A CommonJS `exports.options = …` arrives as `default.options`.
  if (isObject(value) && !('mainUrl' in value) && 'options' in value) value = value.options;
  value ??= mod.options;
  try {
    if (typeof value === 'function') value = await (value as () => unknown)();
  } catch (err) {
    throw configError(`the config module ${absolute} threw: ${(err as Error).message}`, err);
  }
  if (!isObject(value)) {
    throw configError(`the config module ${absolute} must export (default or "options") the platform options or a function returning them`);
  }
  return value as unknown as PlatformOptions;
}

/** The options of this run: from `--config <module>` when given, else from the environment. */
export function loadPlatformOptions(config: { file: string | undefined; env: Env; cwd: string }): Promise<PlatformOptions> {
  if (config.file !== undefined) return optionsFromModule(config.file, config.cwd);
  return Promise.resolve().then(() => optionsFromEnv(config.env, config.cwd));
}

/**
 * The host's migration folders of one family (`tenantMigrations` or `mainMigrations`), absolute: from
 * `--config <module>` when given, else from `TENANTDB_TENANT_MIGRATIONS` / `TENANTDB_MAIN_MIGRATIONS`
 * alone (the rest of the configuration is not needed, nor read). Empty when none is configured.
 */
export async function configuredMigrationFolders(
  config: { file: string | undefined; env: Env; cwd: string },
  family: 'tenant' | 'main',
): Promise<string[]> {
  if (config.file === undefined) {
    return folders(family === 'tenant' ? config.env.TENANTDB_TENANT_MIGRATIONS : config.env.TENANTDB_MAIN_MIGRATIONS, config.cwd) ?? [];
  }
  const options = await optionsFromModule(config.file, config.cwd);
  const value: unknown = family === 'tenant' ? options.tenantMigrations : options.mainMigrations;
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((f) => typeof f === 'string' && f !== '')) {
    throw configError(`${family}Migrations must be an array of folder paths`);
  }
  return value.map((f: string) => path.resolve(config.cwd, f));
}
