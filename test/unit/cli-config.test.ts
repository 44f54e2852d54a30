import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/cli-error.js';
import { optionsFromEnv } from '../../src/cli/config.js';

const base = { TENANTDB_MAIN_URL: 'postgres://app:pw@db:5432/saas', TENANTDB_S3_BUCKET: 'docs' };

function configError(env: Record<string, string | undefined>): CliError {
  try {
    optionsFromEnv(env, '/srv/app');
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('expected a configuration error');
}

describe('tenantdb configuration from the environment', () => {
  it('needs the main URL and the bucket only', () => {
    expect(optionsFromEnv(base, '/srv/app')).toEqual({ mainUrl: base.TENANTDB_MAIN_URL, s3: { bucket: 'docs' } });
  });

  it('reads the optional S3 settings and migration folders', () => {
    const options = optionsFromEnv(
      {
        ...base,
        TENANTDB_S3_ENDPOINT: 'http://minio:9000',
        TENANTDB_S3_REGION: 'eu-west-1',
        TENANTDB_S3_PREFIX: 'app1/',
        TENANTDB_S3_FORCE_PATH_STYLE: 'false',
        TENANTDB_TENANT_MIGRATIONS: ['db/tenant', '/abs/tenant', ''].join(path.delimiter),
        TENANTDB_MAIN_MIGRATIONS: 'db/main',
      },
      '/srv/app',
    );
    expect(options).toEqual({
      mainUrl: base.TENANTDB_MAIN_URL,
      s3: { bucket: 'docs', endpoint: 'http://minio:9000', region: 'eu-west-1', prefix: 'app1/', forcePathStyle: false },
      tenantMigrations: [path.resolve('/srv/app', 'db/tenant'), path.resolve('/abs/tenant')],
      mainMigrations: [path.resolve('/srv/app', 'db/main')],
    });
  });

  it('leaves S3 credentials to the AWS SDK default chain', () => {
    const options = optionsFromEnv({ ...base, AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' }, '/srv/app');
    expect(options.s3.credentials).toBeUndefined();
  });

  it('reports what is missing or bad as CONFIG (exit 3)', () => {
    for (const env of [{}, { TENANTDB_S3_BUCKET: 'docs' }, { TENANTDB_MAIN_URL: base.TENANTDB_MAIN_URL }, { ...base, TENANTDB_MAIN_URL: '' }]) {
      const err = configError(env);
      expect(err.kind).toBe('CONFIG');
      expect(err.exitCode).toBe(3);
    }
    expect(configError({ ...base, TENANTDB_S3_FORCE_PATH_STYLE: 'yes' }).kind).toBe('CONFIG');
  });
});
