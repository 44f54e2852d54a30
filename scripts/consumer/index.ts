// A TypeScript consumer of the root entry. scripts/check-exports.mjs compiles it against the packed
// tarball (as ESM and CJS under `nodenext`, and under `bundler`), strict, with skipLibCheck off and
// nothing installed but the package, typescript and @types/node. The repo's typecheck also compiles it
// against the sources. It is never run.
import {
  createPlatform,
  currentTenant,
  isTenantDbError,
  ERROR_CODES,
  HTTP_STATUS,
  ROLES,
  TenantDbError,
  type Document,
  type DocumentDownload,
  type FleetMigrateFailure,
  type FleetMigrateResult,
  type FleetProgressEvent,
  type HealthCheck,
  type HealthOptions,
  type HealthReport,
  type ListDocumentsOptions,
  type ListTenantsOptions,
  type Logger,
  type MigrationMeta,
  type Page,
  type Platform,
  type PlatformOptions,
  type PlatformStats,
  type Queryable,
  type RepairResult,
  type Role,
  type SweepResult,
  type Tenant,
  type TenantContext,
  type TenantDbErrorCode,
  type TenantDbErrorOptions,
  type TenantMember,
  type TenantMigrations,
  type TenantServerOptions,
  type TenantStats,
  type UploadInput,
  type User,
  type UserTenant,
} from '@org/tenantdb';

// Compile-time assertions: `Equal` is exact (an `any` is equal to nothing else).
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};

// A server whose tenant traffic goes through a pooler, with a direct URL for administration.
const pooled: TenantServerOptions = { url: 'postgres://app@pgbouncer:6432', adminUrl: 'postgres://postgres@10.0.0.3:5432' };

const options: PlatformOptions = {
  mainUrl: 'postgres://postgres@127.0.0.1:5432/saas_platform',
  s3: {
    bucket: 'tenantdb',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    credentials: { accessKeyId: 'key', secretAccessKey: 'secret' },
    prefix: 'app1/',
  },
  tenantServers: { eu: 'postgres://postgres@10.0.0.2:5432', pooled },
  pool: { maxTenantPools: 20, maxConnections: 40 },
  documents: { maxBytes: 10 * 1024 * 1024 },
  tenantSpares: 0,
  logger,
};

// @ts-expect-error mainUrl is a string
createPlatform({ mainUrl: 5432, s3: { bucket: 'tenantdb' } });
// @ts-expect-error s3 is required
createPlatform({ mainUrl: options.mainUrl });

const platform: Platform = createPlatform(options);
expectType<Equal<ReturnType<typeof createPlatform>, Platform>>();

interface NoteRow {
  id: number;
  body: string;
}

async function uploadAndList(ctx: TenantContext): Promise<Page<Document>> {
  const { rows, rowCount } = await ctx.query<NoteRow>('SELECT id, body FROM notes WHERE id = $1', [1]);
  expectType<Equal<typeof rows, NoteRow[]>>();
  const count: number | null = rowCount;
  const bodies: string[] = rows.map((row) => row.body);
  const total = await ctx.transaction(async (tx: Queryable) => {
    const result = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM notes');
    return result.rows[0]?.n ?? 0;
  });
  expectType<Equal<typeof total, number>>();

  const input: UploadInput = { filename: 'notes.txt', body: Buffer.from(`${count ?? 0} ${total} ${bodies.join()}`), mimeType: 'text/plain' };
  const doc: Document = await ctx.documents.upload(input);
  const renamed: Document = await ctx.documents.rename(doc.id, 'renamed.txt');
  const download: DocumentDownload = await ctx.documents.download(renamed.id);
  download.body.resume();
  const url: string = await ctx.documents.url(doc.id, { expiresIn: 60 });
  console.log(url, doc.sizeBytes, doc.deduplicated, doc.createdAt.toISOString());

  const role: Role | undefined = ctx.role;
  const tenant: Tenant = ctx.tenant;
  const scope = currentTenant();
  expectType<Equal<typeof scope, TenantContext | undefined>>();
  console.log(role, tenant.databaseName, scope?.tenant.id);

  const listOptions: ListDocumentsOptions = { limit: 50, cursor: null };
  if (ctx.userId !== undefined) listOptions.userId = ctx.userId;
  return ctx.documents.list(listOptions);
}

async function main(): Promise<void> {
  await platform.init();
  const user: User = await platform.users.create({ firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com', password: 'correct horse' });
  const tenant: Tenant = await platform.tenants.create({ name: 'Acme', createdBy: user.id });
  const listTenants: ListTenantsOptions = { includeInactive: true };
  const tenants: Tenant[] = await platform.tenants.list(listTenants);
  const stats: TenantStats = await platform.tenants.stats(tenant.id);
  const repaired: RepairResult = await platform.tenants.repair();
  const healthOptions: HealthOptions = { timeoutMs: 1000 };
  const health: HealthReport = await platform.health(healthOptions);
  const serverChecks: HealthCheck[] = Object.values(health.checks.servers);
  if (!health.ok) console.log(health.checks.main.error?.code, serverChecks.length, health.checks.s3.latencyMs);
  const users: Page<User> = await platform.users.list({ limit: 10, cursor: null });
  const members: TenantMember[] = await platform.memberships.listMembers(tenant.id);
  const memberships: UserTenant[] = await platform.memberships.listTenants(user.id);
  console.log(tenants.length, stats.storedBytes, repaired.failed.length, users.nextCursor, members[0]?.role, memberships[0]?.tenant.name);

  // The callback's return type flows through withTenant.
  const page = await platform.withTenant(tenant, uploadAndList, { userId: user.id });
  expectType<Equal<typeof page, Page<Document>>>();
  const sum = await platform.withTenant(tenant.id, (ctx) => ctx.documents.list().then((p) => p.items.length));
  expectType<Equal<typeof sum, number>>();
  const firstNames: string[] = page.items.map((d: Document) => d.filename);
  console.log(firstNames, sum);

  const poolStats: PlatformStats = platform.stats();
  console.log(poolStats.pools.open, poolStats.connections.max);

  const onProgress = (event: FleetProgressEvent): void => console.log(`${event.done}/${event.total} ${event.type}`);
  const fleet: FleetMigrateResult = await platform.migrations.tenants.up({ concurrency: 2, onProgress });
  const failures: FleetMigrateFailure[] = fleet.failed;
  console.log(failures.map((f) => f.migration ?? f.error.message));
  const mainApplied: MigrationMeta[] = await platform.migrations.main.up();
  const oneTenant: TenantMigrations = await platform.migrations.tenant(tenant);
  const pending: MigrationMeta[] = await oneTenant.pending();
  console.log(mainApplied.map((m) => m.name), pending.length);

  const swept: SweepResult = await platform.storage.sweep({ olderThanMs: 60_000 });
  console.log(swept.objectsDeleted);

  {
    await using scoped = createPlatform(options);
    await scoped.init();
  }
  await platform.close();
}

function describe(err: unknown): string {
  if (err instanceof TenantDbError) {
    const code: TenantDbErrorCode = err.code;
    const retryable: boolean = err.retryable;
    if (retryable) return `${code}, retry later`;
    // @ts-expect-error the codes are a closed union, not any string
    if (err.code === 'NO_SUCH_CODE') return 'never';
    if (err.code === 'NOT_FOUND') {
      const narrowed: 'NOT_FOUND' = err.code;
      return narrowed;
    }
    return `${code} (HTTP ${HTTP_STATUS[code]})`;
  }
  if (isTenantDbError(err, 'VALIDATION')) return err.message;
  return String(err);
}

const errorOptions: TenantDbErrorOptions = { cause: new Error('lost'), retryable: true };
const ownError = new TenantDbError('UNAVAILABLE', 'try again', errorOptions);
const codes: readonly TenantDbErrorCode[] = ERROR_CODES;
const roles: readonly Role[] = ROLES;
console.log(codes.length, roles.join(), describe(ownError));
main().catch((err: unknown) => {
  console.error(describe(err));
  process.exitCode = 1;
});
