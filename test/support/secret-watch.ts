import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { expect } from 'vitest';
import type { Logger } from '../../src/index.js';
import { adminQuery } from './env.js';

/**
 * A recognisable secret: `S3cr3t-<tag>-<16 hex>` followed by characters a URL must percent-encode, so that
 * its raw and its encoded forms differ. The leading part survives any of those encodings verbatim.
 */
export function newSecret(tag: string): { secret: string; core: string } {
  const core = `S3cr3t-${tag}-${randomBytes(8).toString('hex')}`;
  return { secret: `${core}/+=@:?# &`, core };
}

/** `base`'s server with `user` and `password` (percent-encoded, as a host app writes them) and `database`, if any. */
export function urlWithPassword(base: string, user: string, password: string, database?: string): string {
  const u = new URL(base);
  const path = database === undefined ? '' : `/${encodeURIComponent(database)}`;
  return `${u.protocol}//${encodeURIComponent(user)}:${encodeURIComponent(password)}@${u.host}${path}${u.search}`;
}

/** `url` with no password in its userinfo and `password` as a parameter instead, which pg also reads. */
export function passwordParam(url: string, password: string): string {
  const u = new URL(url);
  u.password = '';
  u.searchParams.set('password', password);
  return u.toString();
}

/** The SCRAM verifier the test server stores for a role, and its salt and keys: needles too. */
export async function scramParts(role: string): Promise<string[]> {
  const { rows } = await adminQuery<{ v: string }>('SELECT rolpassword AS v FROM pg_authid WHERE rolname = $1', [role]);
  const verifier = rows[0]!.v;
  expect(verifier).toMatch(/^SCRAM-SHA-256\$/);
  return [verifier, ...verifier.split(/[$:]/).slice(2)];
}

/**
 * The forms of a secret to look for: as given, URI-encoded, as WHATWG URL writes it as a password and as a
 * query parameter (`+` for a space).
 */
export function secretForms(secret: string): string[] {
  const u = new URL('postgres://h');
  u.password = secret;
  return [...new Set([secret, encodeURIComponent(secret), u.password, new URLSearchParams({ p: secret }).toString().slice(2)])];
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'undefined';
  } catch (err) {
    return `(JSON.stringify threw ${String(err)})`;
  }
}

function deep(value: unknown): string {
  return inspect(value, { depth: Infinity, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity });
}

/**
 * Everything a test lets out of the library (errors, log lines, returned objects, process output),
 * rendered the ways a host app would print it, and the needles that must appear in none of it.
 */
export class SecretWatch {
  readonly #needles = new Map<string, string>();
  readonly #outputs: Array<{ where: string; text: string }> = [];
  /** Every log line received, by level: tests assert the logger was really fed. */
  readonly logLines: Array<{ level: string; msg: string | undefined; obj: unknown }> = [];

  /** Adds needles, each under a label that says what it is (a label, not the needle, goes in failure messages). */
  needle(label: string, ...values: string[]): this {
    for (const v of values) if (v.length >= 8) this.#needles.set(v, label);
    return this;
  }

  /** Records a text (a CLI's stdout, say). */
  text(where: string, text: string): void {
    this.#outputs.push({ where, text });
  }

  /** Records a value as `util.inspect` (every level) and as JSON. */
  value(where: string, value: unknown): void {
    this.text(`${where} (inspect)`, deep(value));
    this.text(`${where} (JSON)`, jsonOf(value));
  }

  /** Records an error: message, stack, `util.inspect` (the whole `cause` chain) and JSON. */
  error(where: string, err: unknown): void {
    const e = err as { message?: unknown; stack?: unknown } | null;
    this.text(`${where} (message)`, String(e?.message));
    this.text(`${where} (stack)`, String(e?.stack));
    this.value(where, err);
    // The HTTP exchange the AWS SDK hides on its errors (`$response`, non-enumerable): a host that logs
    // hidden fields, or walks the cause, sees it.
    for (let c: unknown = err, depth = 0; c !== null && typeof c === 'object' && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
      const hidden = (c as { $response?: unknown }).$response;
      if (hidden !== undefined) this.text(`${where} (cause's $response)`, inspect(hidden, { depth: 4, showHidden: true, maxStringLength: Infinity }));
    }
  }

  /** `promise`'s rejection, recorded; fails when it resolves. */
  async rejection(where: string, promise: Promise<unknown>): Promise<unknown> {
    const outcome = await promise.then(
      (value) => ({ ok: true as const, value }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    if (outcome.ok) {
      this.value(`${where} (result)`, outcome.value);
      throw new Error(`${where}: expected a rejection`);
    }
    this.error(where, outcome.err);
    return outcome.err;
  }

  /** What `fn` throws, recorded; fails when it returns. */
  thrown(where: string, fn: () => unknown): unknown {
    try {
      fn();
    } catch (err) {
      this.error(where, err);
      return err;
    }
    throw new Error(`${where}: expected a throw`);
  }

  /** A logger that records every call at every level, its object rendered in full. */
  logger(): Logger {
    const at =
      (level: string) =>
      (obj: unknown, msg?: string): void => {
        this.logLines.push({ level, msg, obj });
        this.text(`log ${level} ${msg ?? ''}`, `${msg ?? ''} ${deep(obj)} ${jsonOf(obj)}`);
      };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  }

  /** How many outputs were recorded (a test that recorded none proves nothing). */
  get recorded(): number {
    return this.#outputs.length;
  }

  /** Each output that holds a needle: `where: label`, with a little of the text around it. */
  leaks(): string[] {
    const found: string[] = [];
    for (const { where, text } of this.#outputs) {
      for (const [needle, label] of this.#needles) {
        const at = text.indexOf(needle);
        if (at >= 0) found.push(`${where}: ${label} in …${text.slice(Math.max(0, at - 120), at + needle.length + 40)}…`);
      }
    }
    return found;
  }
}

/** A watch for every value of `needles`, each under its label. */
export function watchFor(needles: ReadonlyArray<readonly [string, readonly string[]]>): SecretWatch {
  const watch = new SecretWatch();
  for (const [label, values] of needles) watch.needle(label, ...values);
  return watch;
}

/** Fails unless `watch` recorded something and found no needle in it. */
export function expectNoLeaks(watch: SecretWatch): void {
  expect(watch.recorded).toBeGreaterThan(0);
  expect(watch.leaks()).toEqual([]);
}
