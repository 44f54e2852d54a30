import { describe, expect, it } from 'vitest';
import { majorOf } from '../../src/tenants/pg-dump.js';

describe('the major version of pg_dump and pg_restore', () => {
  it('reads it from their --version line, packaged or not', () => {
    expect(majorOf('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n')).toBe(15);
    expect(majorOf('pg_restore (PostgreSQL) 18.1\n')).toBe(18);
    expect(majorOf('pg_dump (PostgreSQL) 9.6.24\n')).toBe(9);
    expect(majorOf('pg_dump (PostgreSQL) 17beta2\n')).toBe(17);
    expect(majorOf('something else')).toBeUndefined();
  });
});
