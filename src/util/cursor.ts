import { TenantDbError } from '../errors.js';
import { isUuid } from './uuid.js';

/** Where a keyset page ends: the `(created_at, id)` of its last row. */
export interface KeysetPosition {
  /** `created_at` as PostgreSQL prints it in UTC with microseconds (a JS Date would lose them). */
  createdAt: string;
  id: string;
}

/**
 * The SQL expression that renders `column` as {@link KeysetPosition.createdAt}: UTC, microseconds.
 * Select it next to the row so its cursor compares exactly with the stored value.
 */
export function keysetTimestampSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;

function validTimestamp(value: string): boolean {
  const m = TIMESTAMP.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // PostgreSQL has no year 0 ('0000-01-01'::timestamptz is an error): 0001 is the first.
  if (year < 1) return false;
  // setUTCFullYear, not Date.UTC: that one reads years 0 to 99 as 1900 to 1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

/** An opaque cursor (base64url) for a keyset position. */
export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor from {@link encodeCursor} stands for; anything else is VALIDATION. */
export function decodeCursor(cursor: unknown): KeysetPosition {
  const bad = (): never => {
    throw new TenantDbError('VALIDATION', 'cursor is not one this list returned');
  };
  if (typeof cursor !== 'string' || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) return bad();
  const [createdAt, id] = parsed as unknown[];
  if (typeof createdAt !== 'string' || !validTimestamp(createdAt) || !isUuid(id)) return bad();
  return { createdAt, id };
}

/** A page size: 1 to 1000, default 100; anything else is VALIDATION. */
export function pageLimit(limit: unknown, fallback = 100): number {
  if (limit === undefined) return fallback;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new TenantDbError('VALIDATION', 'limit must be an integer from 1 to 1000');
  }
  return limit;
}
