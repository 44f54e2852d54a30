import { randomUUID } from 'node:crypto';
import * as crypto from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Platform, TenantDbError, User } from '../../src/index.js';
import { dummyPasswordHash, hashPassword } from '../../src/users/password.js';
import { adminQuery, useTestPlatform } from '../support/env.js';
import { rejectionCode } from '../support/errors.js';

// A pass-through spy, to count how many scrypt hashes a call costs (never to fake one).
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, scrypt: vi.fn(real.scrypt) };
});

const env = useTestPlatform();
let platform: Platform;

beforeAll(async () => {
  platform = await env.initPlatform();
});

async function storedHash(id: string): Promise<string> {
  const { rows } = await adminQuery<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [id], env.mainDb);
  return rows[0]!.password_hash;
}

const PASSWORD = 'correct horse battery staple';

describe('platform.users', () => {
  let ada: User;

  it('create() trims, hashes with scrypt and returns the user without any hash', async () => {
    ada = await platform.users.create({
      firstName: '  Ada ',
      lastName: 'Lovelace',
      email: '  Ada@Example.io ',
      password: PASSWORD,
    });
    expect(Object.keys(ada).sort()).toEqual(
      ['createdAt', 'createdBy', 'email', 'firstName', 'id', 'isActive', 'lastName', 'updatedAt'].sort(),
    );
    expect(ada).toMatchObject({ firstName: 'Ada', lastName: 'Lovelace', email: 'Ada@Example.io', isActive: true, createdBy: null });
    expect(ada.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ada.createdAt).toBeInstanceOf(Date);
    expect(ada.updatedAt).toBeInstanceOf(Date);
    expect(await storedHash(ada.id)).toMatch(/^scrypt\$N=131072,r=8,p=1\$/);
  });

  it('create() records createdBy', async () => {
    const grace = await platform.users.create({
      firstName: 'Grace',
      lastName: 'Hopper',
      email: 'grace@example.io',
      password: PASSWORD,
      createdBy: ada.id,
    });
    expect(grace.createdBy).toBe(ada.id);
  });

  it('create() of an email differing only in case is CONFLICT, also when two race', async () => {
    const input = { firstName: 'A', lastName: 'L', password: PASSWORD };
    expect(await rejectionCode(platform.users.create({ ...input, email: 'ADA@example.IO' }))).toBe('CONFLICT');
    const results = await Promise.allSettled([
      platform.users.create({ ...input, email: 'race@example.io' }),
      platform.users.create({ ...input, email: 'RACE@example.io' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect((rejected.reason as TenantDbError).code).toBe('CONFLICT');
  });

  it('create() refuses bad input with VALIDATION, before hashing anything', async () => {
    const scrypt = vi.mocked(crypto.scrypt);
    scrypt.mockClear();
    const ok = { firstName: 'Val', lastName: 'Idation', email: 'val@example.io', password: PASSWORD };
    for (const bad of [
      { email: 'not-an-email' },
      { email: `${'x'.repeat(250)}@example.io` },
      { firstName: '   ' },
      { lastName: 'x'.repeat(101) },
      { password: 'short' },
      { password: 'x'.repeat(1025) },
      { createdBy: 'someone' },
    ]) {
      expect(await rejectionCode(platform.users.create({ ...ok, ...bad })), JSON.stringify(bad).slice(0, 60)).toBe('VALIDATION');
    }
    expect(await rejectionCode(platform.users.create(null as never))).toBe('VALIDATION');
    expect(scrypt).not.toHaveBeenCalled();
    expect(await platform.users.findByEmail('val@example.io')).toBeNull();
  });

  it('get() finds by id; an unknown or malformed id is NOT_FOUND', async () => {
    expect(await platform.users.get(ada.id)).toEqual(ada);
    expect(await rejectionCode(platform.users.get(randomUUID()))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.users.get('not-a-uuid'))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.users.get("1' OR '1'='1"))).toBe('NOT_FOUND');
  });

  it('findByEmail() ignores case and surrounding spaces; unknown is null', async () => {
    expect(await platform.users.findByEmail(' ada@EXAMPLE.io')).toEqual(ada);
    expect(await platform.users.findByEmail('nobody@example.io')).toBeNull();
    expect(await platform.users.findByEmail('garbage')).toBeNull();
  });

  it('authenticate() returns the user for the right password, whatever the email’s case', async () => {
    expect(await platform.users.authenticate('ADA@example.io ', PASSWORD)).toEqual(ada);
  });

  it('authenticate(): wrong password, unknown email, short password all give INVALID_CREDENTIALS', async () => {
    expect(await rejectionCode(platform.users.authenticate('ada@example.io', 'wrong password!'))).toBe('INVALID_CREDENTIALS');
    expect(await rejectionCode(platform.users.authenticate('nobody@example.io', PASSWORD))).toBe('INVALID_CREDENTIALS');
    expect(await rejectionCode(platform.users.authenticate('not an email', PASSWORD))).toBe('INVALID_CREDENTIALS');
    expect(await rejectionCode(platform.users.authenticate('ada@example.io', 'short'))).toBe('INVALID_CREDENTIALS');
    // Over-long is refused before hashing, as bad input.
    expect(await rejectionCode(platform.users.authenticate('ada@example.io', 'x'.repeat(1025)))).toBe('VALIDATION');
  });

  it('authenticate() of an unknown email still costs one hash', async () => {
    await dummyPasswordHash(); // made once per process; not part of what a refusal costs
    const scrypt = vi.mocked(crypto.scrypt);
    scrypt.mockClear();
    expect(await rejectionCode(platform.users.authenticate('nobody@example.io', PASSWORD))).toBe('INVALID_CREDENTIALS');
    expect(scrypt).toHaveBeenCalledTimes(1);
    scrypt.mockClear();
    expect(await rejectionCode(platform.users.authenticate('ada@example.io', 'wrong password!'))).toBe('INVALID_CREDENTIALS');
    expect(scrypt).toHaveBeenCalledTimes(1);
  });

  it('deactivate() stops authentication with INVALID_CREDENTIALS; activate() restores it', async () => {
    const inactive = await platform.users.deactivate(ada.id);
    expect(inactive.isActive).toBe(false);
    expect(inactive.updatedAt.getTime()).toBeGreaterThanOrEqual(ada.updatedAt.getTime());
    expect(await rejectionCode(platform.users.authenticate('ada@example.io', PASSWORD))).toBe('INVALID_CREDENTIALS');
    expect((await platform.users.get(ada.id)).isActive).toBe(false);
    expect((await platform.users.activate(ada.id)).isActive).toBe(true);
    expect((await platform.users.authenticate('ada@example.io', PASSWORD)).id).toBe(ada.id);
    expect(await rejectionCode(platform.users.deactivate(randomUUID()))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.users.activate('nope'))).toBe('NOT_FOUND');
  });

  it('update() changes only the fields given', async () => {
    const updated = await platform.users.update(ada.id, { firstName: ' Augusta ', email: 'augusta@example.io ' });
    expect(updated).toMatchObject({ id: ada.id, firstName: 'Augusta', lastName: 'Lovelace', email: 'augusta@example.io' });
    expect(updated.updatedAt.getTime()).toBeGreaterThan(ada.updatedAt.getTime());
    expect(updated.createdAt).toEqual(ada.createdAt);
    expect(await platform.users.update(ada.id, {})).toEqual(updated);
    // Changing only the case of one's own email is allowed.
    expect((await platform.users.update(ada.id, { email: 'Augusta@example.io' })).email).toBe('Augusta@example.io');
  });

  it('update() of the password: the new one works, the old one no longer', async () => {
    const before = await storedHash(ada.id);
    await platform.users.update(ada.id, { password: 'a brand new passphrase' });
    expect(await storedHash(ada.id)).not.toBe(before);
    expect((await platform.users.authenticate('augusta@example.io', 'a brand new passphrase')).id).toBe(ada.id);
    expect(await rejectionCode(platform.users.authenticate('augusta@example.io', PASSWORD))).toBe('INVALID_CREDENTIALS');
  });

  it('update(): CONFLICT for another user’s email, VALIDATION for bad fields, NOT_FOUND for no user', async () => {
    expect(await rejectionCode(platform.users.update(ada.id, { email: 'GRACE@example.io' }))).toBe('CONFLICT');
    expect(await rejectionCode(platform.users.update(ada.id, { lastName: '' }))).toBe('VALIDATION');
    expect(await rejectionCode(platform.users.update(ada.id, { email: 'nope' }))).toBe('VALIDATION');
    expect(await rejectionCode(platform.users.update(ada.id, { password: '1234567' }))).toBe('VALIDATION');
    expect(await rejectionCode(platform.users.update(randomUUID(), { firstName: 'X' }))).toBe('NOT_FOUND');
    expect(await rejectionCode(platform.users.update('nope', { firstName: 'X' }))).toBe('NOT_FOUND');
    expect((await platform.users.get(ada.id)).email).toBe('Augusta@example.io');
  });

  it('authenticate() rehashes a hash made with weaker parameters', async () => {
    const id = randomUUID();
    const weak = await hashPassword('legacy passphrase', { N: 1024, r: 8, p: 1 });
    await adminQuery(
      `INSERT INTO users (id, first_name, last_name, email, password_hash, is_active, created_at, updated_at)
       VALUES ($1, 'Old', 'Timer', 'old@example.io', $2, true, now(), now())`,
      [id, weak],
      env.mainDb,
    );
    expect((await platform.users.authenticate('old@example.io', 'legacy passphrase')).id).toBe(id);
    const now = await storedHash(id);
    expect(now).toMatch(/^scrypt\$N=131072,r=8,p=1\$/);
    expect((await platform.users.authenticate('old@example.io', 'legacy passphrase')).id).toBe(id);
    expect(await storedHash(id)).toBe(now);
  });

  it('every call rejects with CLOSED once the platform is closed', async () => {
    const closed = env.platform();
    await closed.close();
    expect(await rejectionCode(closed.users.get(ada.id))).toBe('CLOSED');
    expect(await rejectionCode(closed.users.findByEmail('a@b.io'))).toBe('CLOSED');
    expect(await rejectionCode(closed.users.list())).toBe('CLOSED');
    expect(await rejectionCode(closed.users.authenticate('a@b.io', PASSWORD))).toBe('CLOSED');
    expect(await rejectionCode(closed.users.create({ firstName: 'a', lastName: 'b', email: 'c@d.io', password: PASSWORD }))).toBe('CLOSED');
  });
});
