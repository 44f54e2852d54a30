import { serverUrl } from './env.js';

/** The harness server as `tenantServers` takes it, with an `application_name` so that each name is told apart. */
export function harnessServer(name: string): string {
  const u = new URL(serverUrl());
  u.pathname = '';
  u.searchParams.set('application_name', `tenantdb_${name}`);
  return u.toString();
}

/** The harness server's URL with a port nothing listens on. */
export function refusedServer(): string {
  const u = new URL(serverUrl());
  u.port = '1';
  u.pathname = '';
  return u.toString().replace(/\/$/, '');
}
