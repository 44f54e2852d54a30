import type { Platform, User } from '../../src/index.js';

/**
 * Creates a user `firstName lastName` with the email `<firstname, lower-case>@example.com` and the password
 * `correct horse`, for tests that need a user but do not test users.
 */
export function createTestUser(platform: Platform, firstName: string, lastName = 'Test'): Promise<User> {
  return platform.users.create({ firstName, lastName, email: `${firstName.toLowerCase()}@example.com`, password: 'correct horse' });
}
