import type pg from 'pg';
import { asTenantDbError, isTenantDbError, TenantDbError } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import type { ListTenantsOptions, Tenant } from '../tenants/types.js';
import { isUuid } from '../util/uuid.js';
import { parseFileObjectKey, tenantPrefix, tenantsPrefix } from './object-keys.js';
import type { ObjectStore } from './object-store.js';
import type { PoolKey } from '../pools/types.js';

/** Options of `platform.storage.sweep`. */
export interface SweepOptions {
  /** Only this tenant. Default: every tenant, and objects of tenants no longer registered. */
  tenantId?: string;
  /** Grace period: only objects (and multipart uploads) older than this go. Default: one hour. */
  olderThanMs?: number;
}

/** What a sweep removed. */
export interface SweepResult {
  /** Objects no file row references, and the objects of the drops it finished. */
  objectsDeleted: number;
  uploadsAborted: number;
  /** Tenants whose `drop` had stopped half way (status `dropping`), whose drop the sweep finished. */
  tenantsDropped: number;
}


/** What the sweep needs of the rest of the platform. */
export interface SweepDeps {
  ctx: PlatformContext;
  tenants: {
    list(options?: ListTenantsOptions): Promise<Tenant[]>;
    get(id: string): Promise<Tenant>;
    /** Finishes a tenant's drop: its database, objects and row; returns how many objects it deleted. */
    finishDrop(tenant: Tenant): Promise<number>;
    poolKey(tenant: Pick<Tenant, 'id' | 'server' | 'databaseName'>): PoolKey;
  };
  pools: { query<R extends pg.QueryResultRow>(key: PoolKey, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> };
  store: () => ObjectStore;
}

const BATCH = 500;

/**
 * Removes objects that no file row references (an upload that crashed before its row committed, the
 * fresh copy of a deduplicated upload whose delete failed, the objects of a tenant whose drop stopped
 * half way) once older than the grace period, and aborts stale multipart uploads.
 * @internal
 */
export async function sweepStorage(deps: SweepDeps, options: SweepOptions = {}): Promise<SweepResult> {
  const { ctx } = deps;
  ctx.assertOpen();
  const olderThanMs = options.olderThanMs ?? 3_600_000;
  if (typeof olderThanMs !== 'number' || !Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new TenantDbError('VALIDATION', 'olderThanMs must be a non-negative number');
  }
  if (options.tenantId !== undefined && !isUuid(options.tenantId)) throw new TenantDbError('NOT_FOUND', 'no such tenant');
  const cutoff = new Date(Date.now() - olderThanMs);
  const base = ctx.options.s3.prefix;
  const store = deps.store();

  const tenants = options.tenantId
    ? [await deps.tenants.get(options.tenantId)]
    : await deps.tenants.list({ includeInactive: true });
  const byId = new Map(tenants.map((t) => [t.id, t]));
  let objectsDeleted = 0;
  let tenantsDropped = 0;
  // A drop that stopped half way: finished here. One that fails again is left for a later pass, and its
  // objects are left alone below (its status is not ready).
  for (const tenant of tenants) {
    if (tenant.status !== 'dropping') continue;
    try {
      objectsDeleted += await deps.tenants.finishDrop(tenant);
      tenantsDropped++;
      byId.delete(tenant.id);
    } catch (err) {
      ctx.logger.warn({ tenantId: tenant.id, err: asTenantDbError(err).message }, 'could not finish the drop of a tenant');
    }
  }
  const scanPrefix = options.tenantId ? tenantPrefix(base, options.tenantId) : tenantsPrefix(base);

  const pending = new Map<string, Array<{ key: string; fileId: string }>>();
  const flush = async (tenantId: string): Promise<void> => {
    const batch = pending.get(tenantId) ?? [];
    pending.delete(tenantId);
    if (batch.length === 0) return;
    const tenant = byId.get(tenantId);
    let known = new Set<string>();
    if (tenant) {
      // A tenant still being provisioned has no files table yet, and nothing of it is swept.
      if (tenant.status !== 'ready') return;
      try {
        const { rows } = await deps.pools.query<{ id: string }>(
          deps.tenants.poolKey(tenant),
          'SELECT id FROM files WHERE id = ANY($1::uuid[])',
          [batch.map((b) => b.fileId)],
        );
        known = new Set(rows.map((r) => r.id));
      } catch (err) {
        // NOT_FOUND: the tenant's database is gone. A deactivated tenant is a drop that stopped after
        // dropping it (drop deactivates first): nothing references its objects any more. An active one
        // is an anomaly to look into, not a reason to delete its bytes, nor to stop sweeping the others.
        if (!isTenantDbError(err, 'NOT_FOUND')) throw err;
        if (tenant.isActive) {
          ctx.logger.warn({ tenantId }, 'the database of an active tenant is missing: its objects are left alone');
          return;
        }
      }
    }
    for (const { key, fileId } of batch) {
      if (known.has(fileId)) continue;
      await store.delete(key);
      objectsDeleted++;
    }
  };

  for await (const object of store.list(scanPrefix)) {
    if (!object.lastModified || object.lastModified > cutoff) continue; // too young (or unknown): maybe in flight
    const parsed = parseFileObjectKey(base, object.key);
    if (!parsed) continue; // not a key of ours: left alone
    const list = pending.get(parsed.tenantId) ?? [];
    list.push({ key: object.key, fileId: parsed.fileId });
    pending.set(parsed.tenantId, list);
    if (list.length >= BATCH) await flush(parsed.tenantId);
  }
  for (const tenantId of [...pending.keys()]) await flush(tenantId);

  const uploadsAborted = await store.abortStaleUploads(scanPrefix, cutoff);
  ctx.logger.info({ objectsDeleted, uploadsAborted, tenantsDropped, tenantId: options.tenantId }, 'storage sweep finished');
  return { objectsDeleted, uploadsAborted, tenantsDropped };
}
