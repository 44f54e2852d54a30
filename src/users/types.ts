/** A user of the platform. Never carries a password hash. */
export interface User {
  id: string;
  firstName: string;
  lastName: string;
  /** Trimmed; unique whatever its case. */
  email: string;
  isActive: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** The id of the user who created this one, if any. */
  createdBy: string | null;
}

/** Input of `users.create`. */
export interface CreateUserInput {
  /** 1 to 100 characters. */
  firstName: string;
  /** 1 to 100 characters. */
  lastName: string;
  /** Trimmed and validated; a second spelling differing only in case is CONFLICT. */
  email: string;
  /** 8 to 1024 characters (after NFKC normalisation). */
  password: string;
  createdBy?: string;
}

/** Input of `users.update`: only the fields given change. */
export interface UpdateUserInput {
  firstName?: string;
  lastName?: string;
  email?: string;
  password?: string;
}

/** Keyset pagination: pass `nextCursor` of one page as `cursor` of the next. */
export interface ListOptions {
  /** Items per page, 1 to 1000. Default: 100. */
  limit?: number;
  /** An opaque cursor from a previous page. */
  cursor?: string | null;
}

/** One page of a list. `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** `platform.users`. */
export interface UsersService {
  create(input: CreateUserInput): Promise<User>;
  /** NOT_FOUND when there is no such user. */
  get(id: string): Promise<User>;
  findByEmail(email: string): Promise<User | null>;
  list(options?: ListOptions): Promise<Page<User>>;
  update(id: string, input: UpdateUserInput): Promise<User>;
  deactivate(id: string): Promise<User>;
  activate(id: string): Promise<User>;
  /** Unknown email, wrong password and inactive user all give INVALID_CREDENTIALS. */
  authenticate(email: string, password: string): Promise<User>;
}
