/**
 * A connection string with its password (and any `password=` parameter) replaced by `***`, safe for
 * logs and error messages.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/** The database name of a PostgreSQL connection string (`postgres` when it names none). */
export function databaseOf(url: string): string {
  const path = new URL(url).pathname.replace(/^\//, '');
  return decodeURIComponent(path) || 'postgres';
}

/** The same connection string pointing at another database on the same server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}
