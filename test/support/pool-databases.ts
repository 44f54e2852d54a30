import { afterAll, afterEach, beforeAll } from 'vitest';
import type { TenantPoolManager } from '../../src/pools/tenant-pool-manager.js';
import { adminQuery, serverUrl, uniqueName } from './env.js';

/** The test server without a database, as tenant servers are configured. */
export function tenantServerUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = '';
  return url.toString().replace(/\/$/, '');
}

/** Connections to the given databases, as the server sees them. */
export async function connectionsTo(databases: string[]): Promise<number> {
  const { rows } = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1)', [databases]);
  return rows[0]!.n;
}

/**
 * Per test file: `count` plain databases named `<tag><i>_<random>` (the pool manager only needs somewhere to
 * connect), created before the file's tests and dropped after them.
 */
export function usePoolDatabases(tag: string, count: number): string[] {
  const databases = Array.from({ length: count }, (_, i) => uniqueName(`${tag}${i}`));
  beforeAll(async () => {
    for (const db of databases) await adminQuery(`CREATE DATABASE "${db}"`);
  });
  afterAll(async () => {
    for (const db of databases) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  });
  return databases;
}

/**
 * Pool managers that are closed after each test, so that one test's idle connections never show in the next
 * one's counts: pass each one made to the function returned.
 */
export function useManagers(): (manager: TenantPoolManager) => TenantPoolManager {
  const managers: TenantPoolManager[] = [];
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.close()));
  });
  return (manager) => {
    managers.push(manager);
    return manager;
  };
}
