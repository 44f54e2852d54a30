import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Platform, User } from '../../src/index.js';
import { encodeCursor } from '../../src/util/cursor.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

const env = useTestPlatform();
let platform: Platform;
let expected: string[];

async function all(limit: number): Promise<{ pages: User[][]; ids: string[] }> {
  const pages: User[][] = [];
  let cursor: string | null = null;
  do {
    const page: { items: User[]; nextCursor: string | null } = await platform.users.list({ limit, cursor });
    pages.push(page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { pages, ids: pages.flat().map((u) => u.id) };
}

beforeAll(async () => {
  platform = await env.initPlatform();
  // Rows written straight to the table (the list does not care how they came): several share one
  // created_at, others differ only in microseconds, which a JS Date cannot tell apart.
  const base = '2024-05-01 12:00:00.123';
  const stamps = [`${base}000`, `${base}000`, `${base}000`, `${base}001`, `${base}999`, `${base}500`, '2024-05-01 12:00:01', '2024-04-30 08:00:00'];
  const rows = stamps.map((at, i) => ({ id: randomUUID(), at, email: `list${i}@example.io` }));
  for (const r of rows) {
    await adminQuery(
      `INSERT INTO users (id, first_name, last_name, email, password_hash, is_active, created_at, updated_at)
       VALUES ($1, 'List', 'User', $2, 'not-a-hash', true, $3::timestamptz, $3::timestamptz)`,
      [r.id, r.email, `${r.at}+00`],
      env.mainDb,
    );
  }
  const { rows: ordered } = await adminQuery<{ id: string }>('SELECT id FROM users ORDER BY created_at, id', [], env.mainDb);
  expected = ordered.map((r) => r.id);
});

describe('platform.users.list()', () => {
  it('returns every user once, in (created_at, id) order, whatever the page size', async () => {
    for (const limit of [1, 2, 3, 7, 8, 100]) {
      const { pages, ids } = await all(limit);
      expect(ids, `limit ${limit}`).toEqual(expected);
      expect(pages.every((p) => p.length <= limit)).toBe(true);
    }
  });

  it('gives nextCursor null on the last page, and an opaque cursor otherwise', async () => {
    const first = await platform.users.list({ limit: 3 });
    expect(first.items).toHaveLength(3);
    expect(first.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const whole = await platform.users.list();
    expect(whole.items.map((u) => u.id)).toEqual(expected);
    expect(whole.nextCursor).toBeNull();
    expect(await platform.users.list({ limit: 8 })).toMatchObject({ nextCursor: null });
    expect(whole.items[0]).not.toHaveProperty('passwordHash');
  });

  it('starts after the cursor’s position even when that user is gone', async () => {
    const page = await platform.users.list({ limit: 2 });
    await adminQuery('DELETE FROM users WHERE id = $1', [page.items[1]!.id], env.mainDb);
    expected = expected.filter((id) => id !== page.items[1]!.id);
    const next = await platform.users.list({ limit: 100, cursor: page.nextCursor });
    expect(next.items.map((u) => u.id)).toEqual(expected.slice(1));
  });

  it('a cursor it did not make, or a bad limit, is VALIDATION', async () => {
    for (const cursor of ['garbage!', 'eyJ4IjoxfQ', Buffer.from('[1,2]').toString('base64url')]) {
      expect(await rejectionCode(platform.users.list({ cursor })), cursor).toBe('VALIDATION');
    }
    expect(
      await rejectionCode(platform.users.list({ cursor: encodeCursor({ createdAt: '2024-02-30T00:00:00.000000Z', id: randomUUID() }) })),
    ).toBe('VALIDATION');
    for (const limit of [0, -1, 1001, 1.5, Number.NaN]) {
      expect(await rejectionCode(platform.users.list({ limit })), String(limit)).toBe('VALIDATION');
    }
  });
});
