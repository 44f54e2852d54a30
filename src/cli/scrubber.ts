import type { PlatformOptions } from '../index.js';

/** Replaces secrets in text meant for a terminal or a log. */
export type Scrubber = (text: string) => string;

// Any `scheme://user:password@` in a text, whoever wrote it; also `scheme:/user:password@`, which is what
// `path.resolve` leaves of a URL given where a file path belongs (`--config`).
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/+[^:/@\s]*:)[^@\s]*@/gi;

// Short values would garble ordinary words; real secrets are long.
const MIN_SECRET_LENGTH = 8;

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The forms a connection URL takes in text (as given, as `URL` writes it), and its password wherever it
 * may appear on its own, in the userinfo or as a `password` parameter: as written, decoded and
 * re-encoded. A password that is the user name is left alone: the name is printed anyway.
 */
function urlForms(url: string): string[] {
  const forms = [url];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return forms; // Not a URL: only the string as given.
  }
  forms.push(parsed.toString());
  const user = decoded(parsed.username);
  for (const password of [decoded(parsed.password), ...parsed.searchParams.getAll('password')]) {
    if (password.length < MIN_SECRET_LENGTH || password === user) continue;
    const userinfo = new URL('postgres://h');
    userinfo.password = password;
    const param = new URLSearchParams({ p: password }).toString().slice(2);
    forms.push(password, encodeURIComponent(password), userinfo.password, param);
  }
  return forms;
}

/**
 * A {@link Scrubber} that hides the connection URLs the CLI was given (main database, tenant servers) and
 * their passwords, any password written into a URL, and the S3 secret key and session token. The library
 * already redacts its own messages; this also covers what drivers and config modules put in theirs, and
 * what the person running the CLI typed where a secret does not belong (a URL as a tenant id).
 */
export function createScrubber(options: Partial<PlatformOptions> | undefined, env: Readonly<Record<string, string | undefined>>): Scrubber {
  const secrets = new Set<string>();
  const servers = Object.values(options?.tenantServers ?? {}).flatMap((s) => (typeof s === 'object' && s !== null ? [s.url, s.adminUrl] : [s]));
  const urls = [options?.mainUrl, options?.mainAdminUrl, env.TENANTDB_MAIN_URL, env.TENANTDB_MAIN_ADMIN_URL, ...servers];
  for (const url of urls) if (typeof url === 'string' && url !== '') for (const form of urlForms(url)) secrets.add(form);
  const credentials = options?.s3?.credentials;
  for (const secret of [credentials?.secretAccessKey, credentials?.sessionToken, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN]) {
    if (typeof secret === 'string' && secret.length >= MIN_SECRET_LENGTH) secrets.add(secret);
  }
  const ordered = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of ordered) out = out.split(secret).join('***');
    return out.replace(URL_PASSWORD, '$1***@');
  };
}
