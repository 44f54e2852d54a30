// A minimal signed token for the examples: base64url(JSON payload) + "." + HMAC-SHA256 of it.
// Enough to show where the acting user comes from; use your own session or JWT library in an app.
import { createHmac, timingSafeEqual } from 'node:crypto';

const TTL_SECONDS = 3600;

export function signToken(userId: string, secret: string): string {
  const payload = Buffer.from(JSON.stringify({ sub: userId, exp: Math.floor(Date.now() / 1000) + TTL_SECONDS })).toString('base64url');
  const mac = createHmac('sha256', secret).update(payload).digest('base64url');
  return `${payload}.${mac}`;
}

/** The user id of a valid, unexpired token from an `Authorization: Bearer …` header, else undefined. */
export function userFromAuthorization(header: string | undefined, secret: string): string | undefined {
  const token = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
  const [payload, mac] = token?.split('.') ?? [];
  if (!payload || !mac) return undefined;
  const expected = Buffer.from(createHmac('sha256', secret).update(payload).digest('base64url'));
  const given = Buffer.from(mac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const { sub, exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
    return typeof sub === 'string' && typeof exp === 'number' && exp > Date.now() / 1000 ? sub : undefined;
  } catch {
    return undefined;
  }
}
