import { randomUUID } from 'node:crypto';
import { TenantDbError } from '../errors.js';
import type { PlatformContext } from '../core/platform-context.js';
import { isUuid } from '../util/uuid.js';
import { PG, sqlState } from '../util/pg-errors.js';
import { decodeCursor, encodeCursor, keysetTimestampSql, pageLimit } from '../util/cursor.js';
import { dummyPasswordHash, hashPassword, normalizePassword, passwordCandidate, verifyPassword } from './password.js';
import { emailLookupKey, normalizeEmail, normalizeName } from './user-input.js';
import type { CreateUserInput, ListOptions, Page, UpdateUserInput, User, UsersService } from './types.js';

/** A row of `users`, without the password hash. */
export interface UserRow {
  id: string;
  first_name: string;
  last_name: string;
  email: string;
  is_active: boolean | null;
  created_at: Date;
  updated_at: Date;
  created_by: string | null;
}

/** The columns of {@link UserRow}, for `SELECT` and `RETURNING`; never the hash. */
export const USER_COLUMNS = 'id, first_name, last_name, email, is_active, created_at, updated_at, created_by';

/** A `users` row as a {@link User}. */
export function toUser(row: UserRow): User {
  return {
    id: row.id,
    firstName: row.first_name,
    lastName: row.last_name,
    email: row.email,
    // As in SQL's `WHERE is_active`: only true is active.
    isActive: row.is_active === true,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
  };
}

function conflictOnDuplicateEmail(err: unknown): never {
  if (sqlState(err) === PG.UNIQUE_VIOLATION) {
    throw new TenantDbError('CONFLICT', 'a user with this email already exists', { cause: err });
  }
  throw err;
}

function notFound(): never {
  throw new TenantDbError('NOT_FOUND', 'no such user');
}

/**
 * `platform.users`: the platform's user accounts in the main database. Passwords are hashed with
 * scrypt; the hash never leaves this service.
 * @internal
 */
export class UsersServiceImpl implements UsersService {
  readonly #ctx: PlatformContext;

  constructor(ctx: PlatformContext) {
    this.#ctx = ctx;
  }

  async create(input: CreateUserInput): Promise<User> {
    this.#ctx.assertOpen();
    if (typeof input !== 'object' || input === null) throw new TenantDbError('VALIDATION', 'user input is required');
    const firstName = normalizeName(input.firstName, 'firstName');
    const lastName = normalizeName(input.lastName, 'lastName');
    const email = normalizeEmail(input.email);
    const password = normalizePassword(input.password);
    const createdBy = input.createdBy ?? null;
    if (createdBy !== null && !isUuid(createdBy)) throw new TenantDbError('VALIDATION', 'createdBy must be a user id');
    const hash = await hashPassword(password);
    const { rows } = await this.#ctx.main
      .query<UserRow>(
        `INSERT INTO users (id, first_name, last_name, email, password_hash, is_active, created_at, updated_at, created_by)
         VALUES ($1, $2, $3, $4, $5, true, now(), now(), $6) RETURNING ${USER_COLUMNS}`,
        [randomUUID(), firstName, lastName, email, hash, createdBy],
      )
      .catch(conflictOnDuplicateEmail);
    return toUser(rows[0]!);
  }

  async get(id: string): Promise<User> {
    this.#ctx.assertOpen();
    if (!isUuid(id)) notFound();
    const { rows } = await this.#ctx.main.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
    return rows[0] ? toUser(rows[0]) : notFound();
  }

  async findByEmail(email: string): Promise<User | null> {
    this.#ctx.assertOpen();
    if (typeof email !== 'string') throw new TenantDbError('VALIDATION', 'email must be a string');
    const key = emailLookupKey(email);
    if (key === undefined) return null;
    const { rows } = await this.#ctx.main.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE lower(email) = lower($1)`, [key]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async list(options: ListOptions = {}): Promise<Page<User>> {
    this.#ctx.assertOpen();
    const limit = pageLimit(options.limit);
    const after = options.cursor == null ? null : decodeCursor(options.cursor);
    const columns = `${USER_COLUMNS}, ${keysetTimestampSql('created_at')} AS cursor_at`;
    // One row more than asked tells whether there is a next page.
    const { rows } = after
      ? await this.#ctx.main.query<UserRow & { cursor_at: string }>(
          `SELECT ${columns} FROM users WHERE (created_at, id) > ($1::timestamptz, $2::uuid)
           ORDER BY created_at, id LIMIT $3`,
          [after.createdAt, after.id, limit + 1],
        )
      : await this.#ctx.main.query<UserRow & { cursor_at: string }>(
          `SELECT ${columns} FROM users ORDER BY created_at, id LIMIT $1`,
          [limit + 1],
        );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toUser),
      nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.cursor_at, id: last.id }) : null,
    };
  }

  async update(id: string, input: UpdateUserInput): Promise<User> {
    this.#ctx.assertOpen();
    if (typeof input !== 'object' || input === null) throw new TenantDbError('VALIDATION', 'user input is required');
    // Everything is checked before anything is hashed or written.
    const changes: Array<[column: string, value: unknown]> = [];
    if (input.firstName !== undefined) changes.push(['first_name', normalizeName(input.firstName, 'firstName')]);
    if (input.lastName !== undefined) changes.push(['last_name', normalizeName(input.lastName, 'lastName')]);
    if (input.email !== undefined) changes.push(['email', normalizeEmail(input.email)]);
    const password = input.password === undefined ? undefined : normalizePassword(input.password);
    if (!isUuid(id)) notFound();
    if (password !== undefined) changes.push(['password_hash', await hashPassword(password)]);
    if (changes.length === 0) return this.get(id);

    const sets = changes.map(([column], i) => `${column} = $${i + 2}`).join(', ');
    const { rows } = await this.#ctx.main
      .query<UserRow>(`UPDATE users SET ${sets}, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`, [
        id,
        ...changes.map(([, value]) => value),
      ])
      .catch(conflictOnDuplicateEmail);
    return rows[0] ? toUser(rows[0]) : notFound();
  }

  async #setActive(id: string, active: boolean): Promise<User> {
    this.#ctx.assertOpen();
    if (!isUuid(id)) notFound();
    const { rows } = await this.#ctx.main.query<UserRow>(
      `UPDATE users SET is_active = $2, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
      [id, active],
    );
    return rows[0] ? toUser(rows[0]) : notFound();
  }

  deactivate(id: string): Promise<User> {
    return this.#setActive(id, false);
  }

  activate(id: string): Promise<User> {
    return this.#setActive(id, true);
  }

  async authenticate(email: string, password: string): Promise<User> {
    this.#ctx.assertOpen();
    if (typeof email !== 'string') throw new TenantDbError('VALIDATION', 'email must be a string');
    const candidate = passwordCandidate(password);
    const invalid = (): never => {
      throw new TenantDbError('INVALID_CREDENTIALS', 'invalid email or password');
    };

    const key = emailLookupKey(email);
    const { rows } =
      key === undefined
        ? { rows: [] }
        : await this.#ctx.main.query<UserRow & { password_hash: string }>(
            `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)`,
            [key],
          );
    const row = rows[0];
    // An unknown email still costs one hash: no timing oracle for which emails have accounts.
    const check = await verifyPassword(candidate, row ? row.password_hash : await dummyPasswordHash());
    if (!row || !check.ok || row.is_active !== true) return invalid();
    if (check.needsRehash) await this.#rehash(row.id, row.password_hash, candidate);
    return toUser(row);
  }

  /** Upgrades a hash made with weaker parameters, now that the password is known. Best effort. */
  async #rehash(id: string, oldHash: string, password: string): Promise<void> {
    try {
      const hash = await hashPassword(password);
      // Only if the hash is still the one checked: a password changed meanwhile wins.
      await this.#ctx.main.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, oldHash, hash]);
    } catch (err) {
      this.#ctx.logger.warn({ err: (err as Error).message, userId: id }, 'rehashing a password failed');
    }
  }
}
