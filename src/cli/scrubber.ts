import type { PlatformOptions } from '../index.js';

/** Replaces secrets in text meant for a terminal or a log. */
export type Scrubber = (text: string) => string;

// Any `scheme://user:password@` in a text, whoever wrote it.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]*@/gi;

function urlForms(url: string): string[] {
  const forms = [url];
  try {
    forms.push(new URL(url).toString());
  } catch {
    // Not a URL: only the string as given.
  }
  return forms;
}

/**
 * A {@link Scrubber} that hides the connection URLs the CLI was given (main database, tenant servers),
 * any password written into a URL, and the S3 secret key. The library already redacts its own messages;
 * this also covers what drivers and config modules put in theirs.
 */
export function createScrubber(options: Partial<PlatformOptions> | undefined, env: Readonly<Record<string, string | undefined>>): Scrubber {
  const secrets = new Set<string>();
  const servers = Object.values(options?.tenantServers ?? {}).flatMap((s) => (typeof s === 'object' && s !== null ? [s.url, s.adminUrl] : [s]));
  const urls = [options?.mainUrl, options?.mainAdminUrl, env.TENANTDB_MAIN_URL, env.TENANTDB_MAIN_ADMIN_URL, ...servers];
  for (const url of urls) if (typeof url === 'string' && url !== '') for (const form of urlForms(url)) secrets.add(form);
  // Short values would garble ordinary words; real secret keys are long.
  for (const secret of [options?.s3?.credentials?.secretAccessKey, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN]) {
    if (typeof secret === 'string' && secret.length >= 8) secrets.add(secret);
  }
  const ordered = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of ordered) out = out.split(secret).join('***');
    return out.replace(URL_PASSWORD, '$1***@');
  };
}
