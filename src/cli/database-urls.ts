// The CLI uses only the public API; these few URL helpers are its own for that reason.

/** The database a PostgreSQL URL names. */
export function mainDatabaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** The same server's URL on another database (by default its `postgres` maintenance database). */
export function databaseUrl(url: string, database = 'postgres'): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** An identifier quoted the PostgreSQL way. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
