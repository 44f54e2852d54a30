import { describe, expect, it } from 'vitest';
import { createScrubber } from '../../src/cli/scrubber.js';

describe('the CLI scrubber', () => {
  it('hides the URLs it was given, passwords in any URL, and the S3 secret key', () => {
    const mainUrl = 'postgres://app:pa55word!@db.internal:5432/saas';
    const scrub = createScrubber(
      { mainUrl, tenantServers: { eu1: 'postgres://eu:eu-pass-123@eu.internal:5432' } },
      { AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG' },
    );
    const text = scrub(
      `cannot connect to ${mainUrl}; nor to postgres://eu:eu-pass-123@eu.internal:5432; ` +
        `other://u:zzz@host; key wJalrXUtnFEMI/K7MDENG`,
    );
    for (const secret of ['pa55word!', 'eu-pass-123', 'zzz', 'wJalrXUtnFEMI/K7MDENG', 'db.internal']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('other://u:***@host');
  });

  it('leaves ordinary text alone, also with short secrets configured', () => {
    const scrub = createScrubber({ mainUrl: 'postgres://postgres:postgres@127.0.0.1/x' }, { AWS_SECRET_ACCESS_KEY: 'S3RVER' });
    expect(scrub('mainUrl must be a postgres:// URL; S3RVER')).toBe('mainUrl must be a postgres:// URL; S3RVER');
  });
});
