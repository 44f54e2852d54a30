/** An error as the CLI's JSON documents show it. */
export interface ErrorJson {
  /** The `TenantDbError` code, a driver's code (a SQLSTATE, `ECONNREFUSED`), or `ERROR`. */
  code: string;
  message: string;
  /** The message of the underlying error (`cause`), when there is one: what a migration's SQL said, say. */
  cause?: string;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An error as `{ code, message, cause? }`, the shape every JSON document of the CLI uses; secrets scrubbed. */
export function errorJson(error: unknown, scrub: (text: string) => string): ErrorJson {
  const code = (error as { code?: unknown } | null)?.code;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return {
    code: typeof code === 'string' ? code : 'ERROR',
    message: scrub(messageOf(error)),
    ...(cause !== undefined && cause !== null && { cause: scrub(messageOf(cause)) }),
  };
}

/** `CODE message: cause` on one line. */
export function errorLine(error: unknown, scrub: (text: string) => string): string {
  const e = errorJson(error, scrub);
  return `${e.code} ${e.message}${e.cause !== undefined && !e.message.includes(e.cause) ? `: ${e.cause}` : ''}`;
}

/**
 * Plain-text columns: each column as wide as its widest cell, two spaces apart.
 *
 * @example
 * ```ts
 * formatTable(['id', 'name'], [['1', 'Acme']]); // ['id  name', '1   Acme']
 * ```
 */
export function formatTable(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** A `Date` as an ISO string without milliseconds, for tables. */
export function shortDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `n thing` or `n things`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
