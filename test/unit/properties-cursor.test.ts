import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TenantDbError } from '../../src/errors.js';
import { decodeCursor, encodeCursor, type KeysetPosition } from '../../src/util/cursor.js';
import { anyCaseUuid, hostileString, notAString } from '../support/hostile-arbitraries.js';

const RUNS = { numRuns: 1000 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `created_at` as PostgreSQL prints it for a cursor (see keysetTimestampSql): UTC, microseconds. */
function printed(date: Date, micros: number): string {
  return `${date.toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
}

// Every instant PostgreSQL prints with four year digits: 0001-01-01 to 9999-12-31.
const createdAt = fc
  .tuple(
    fc.date({ min: new Date('0001-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
    fc.integer({ min: 0, max: 999_999 }),
  )
  .map(([date, micros]) => printed(date, micros));
const positions: fc.Arbitrary<KeysetPosition> = fc.record({ createdAt, id: anyCaseUuid });

/** The position, or the code of the TenantDbError decoding threw (anything else fails the test). */
function decoded(cursor: unknown): KeysetPosition | { code: string } {
  try {
    return decodeCursor(cursor);
  } catch (err) {
    expect(err).toBeInstanceOf(TenantDbError);
    return { code: (err as TenantDbError).code };
  }
}

/** A position decoding gave: a real instant of years 0001 to 9999 and a UUID, which re-encodes to itself. */
function expectValid(position: KeysetPosition): void {
  expect(position.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  // PostgreSQL has no year 0 (1 BC comes before 1 AD): '0000-…'::timestamptz is an error.
  expect(position.createdAt.startsWith('0000')).toBe(false);
  const instant = new Date(`${position.createdAt.slice(0, 23)}Z`);
  expect(Number.isNaN(instant.getTime())).toBe(false);
  expect(printed(instant, Number(position.createdAt.slice(20, 26)))).toBe(position.createdAt);
  expect(position.id).toMatch(UUID);
  expect(decodeCursor(encodeCursor(position))).toEqual(position);
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

describe('cursor codec (properties)', () => {
  it('decodes what it encodes, for every instant of years 0001 to 9999 and any UUID', () => {
    fc.assert(
      fc.property(positions, (position) => {
        const cursor = encodeCursor(position);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]{1,200}$/);
        expect(decodeCursor(cursor)).toEqual(position);
      }),
      RUNS,
    );
  });

  it('refuses garbage with VALIDATION, or decodes it to a valid position, never anything else', () => {
    const garbage = fc.oneof(
      hostileString({ maxLength: 250 }),
      fc.base64String({ maxLength: 250 }),
      fc.stringMatching(/^[A-Za-z0-9_-]{1,260}$/),
      // Base64url of garbage, of any JSON, and of near-miss positions.
      hostileString({ maxLength: 150 }).map(b64),
      fc.jsonValue().map((v) => b64(JSON.stringify(v))),
      fc.tuple(fc.oneof(createdAt, hostileString({ maxLength: 40 }), fc.integer(), fc.double()), fc.oneof(anyCaseUuid, hostileString({ maxLength: 40 }), fc.integer())).map((t) => b64(JSON.stringify(t))),
      // Out-of-range dates and times: huge, negative, year 0, month 13, 31 February, 24:00, leap seconds, no microseconds.
      fc
        .tuple(
          fc.constantFrom('+275760-09-13', '-000001-01-01', '0000-01-01', '2024-13-01', '2023-02-29', '2024-02-30', '99999-01-01', '2024-00-10', '2024-1-01'),
          fc.constantFrom('T00:00:00.000000Z', 'T24:00:00.000000Z', 'T23:59:60.000000Z', 'T12:00:00Z', 'T12:00:00.000000+01:00', 'T12:00:00.0000000Z'),
          fc.uuid(),
        )
        .map(([day, time, id]) => b64(JSON.stringify([day + time, id]))),
      fc.uuid().map((id) => b64(JSON.stringify(['2024-01-01T00:00:00.000000Z', `${id}\u0000`]))),
      fc.uuid().map((id) => b64(JSON.stringify(['2024-01-01T00:00:00.000000Z', id, 'extra']))),
      fc.uuid().map((id) => b64(JSON.stringify({ createdAt: '2024-01-01T00:00:00.000000Z', id, offset: -1 }))),
    );
    fc.assert(
      fc.property(garbage, (cursor) => {
        const result = decoded(cursor);
        if ('code' in result) expect(result.code).toBe('VALIDATION');
        else expectValid(result);
      }),
      RUNS,
    );
  });

  it('refuses every truncation of a valid cursor with VALIDATION', () => {
    fc.assert(
      fc.property(
        positions.chain((p) => {
          const cursor = encodeCursor(p);
          return fc.integer({ min: 0, max: cursor.length - 1 }).map((n) => cursor.slice(0, n));
        }),
        (truncated) => {
          expect(decoded(truncated)).toEqual({ code: 'VALIDATION' });
        },
      ),
      RUNS,
    );
  });

  it('decodes a valid cursor with one character changed to VALIDATION or to another valid position', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. \u0000é';
    fc.assert(
      fc.property(positions, fc.nat(), fc.constantFrom(...alphabet), (position, at, replacement) => {
        const cursor = encodeCursor(position);
        const i = at % cursor.length;
        const result = decoded(cursor.slice(0, i) + replacement + cursor.slice(i + 1));
        if ('code' in result) expect(result.code).toBe('VALIDATION');
        else expectValid(result);
      }),
      RUNS,
    );
  });

  it('refuses whatever is not a string with VALIDATION', () => {
    fc.assert(
      fc.property(
        notAString,
        (value) => {
          expect(decoded(value)).toEqual({ code: 'VALIDATION' });
        },
      ),
      RUNS,
    );
  });
});
