/**
 * Tokens for the local conversations relay (local mode, no Twilio account): an HS256 JWT with
 * its own audience, signed with a secret derived from the AppKey seed, so any instance holding
 * the same APP_KEY verifies a token another instance issued. The relay reads it from the
 * client's first frame (never from a URL, where it would end up in access logs).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AppKey } from '../shared/index.js';
import { ApiPath } from '../shared/api.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { RELAY_TOKEN_SECRET_LABEL, deriveAppSecret } from './secrets.js';

export const RELAY_TOKEN_AUDIENCE = 'twilio-e2ee-relay';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** The relay token key of this AppKey (32 bytes). */
export function relayTokenSecret(appKey: AppKey): Uint8Array {
  return deriveAppSecret(appKey, RELAY_TOKEN_SECRET_LABEL);
}

function mac(secret: Uint8Array, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest();
}

/** Signs a relay token for `identity`, valid `ttl` seconds from `now` (unix seconds). */
export function signRelayToken(secret: Uint8Array, identity: string, ttl: number, now = Math.floor(Date.now() / 1000)): string {
  const payload = Buffer.from(JSON.stringify({ sub: identity, aud: RELAY_TOKEN_AUDIENCE, iat: now, exp: now + ttl })).toString('base64url');
  const signingInput = `${HEADER}.${payload}`;
  return `${signingInput}.${mac(secret, signingInput).toString('base64url')}`;
}

/** A refused relay token: UNAUTHORIZED, or TOKEN_EXPIRED for one that was valid until `exp`. */
function refused(message: string, code: ErrorCode = ErrorCode.UNAUTHORIZED): E2EEError {
  return new E2EEError(code, message);
}

/**
 * Verifies a relay token: exactly our header (so no algorithm is ever taken from the token),
 * the MAC in constant time, then audience, expiry and subject.
 * @returns the identity and the expiry in unix ms (the relay's RelayTokenVerifier shape).
 * @throws E2EEError UNAUTHORIZED, or TOKEN_EXPIRED
 */
export function verifyRelayToken(secret: Uint8Array, token: string, now = Math.floor(Date.now() / 1000)): { identity: string; expiresAtMs: number } {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3 || parts[0] !== HEADER) throw refused('malformed relay token');
  const given = Buffer.from(parts[2]!, 'base64url');
  const expected = mac(secret, `${parts[0]}.${parts[1]}`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refused('relay token signature is invalid');
  let claims: { sub?: unknown; aud?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as typeof claims;
  } catch {
    throw refused('malformed relay token');
  }
  if (claims.aud !== RELAY_TOKEN_AUDIENCE) throw refused('relay token has the wrong audience');
  if (typeof claims.exp !== 'number' || claims.exp <= now) throw refused('relay token expired', ErrorCode.TOKEN_EXPIRED);
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw refused('relay token has no subject');
  return { identity: claims.sub, expiresAtMs: claims.exp * 1000 };
}

/**
 * The relay's WebSocket URL: PUBLIC_URL when configured (behind a proxy the request's own
 * host may be internal), else the request's protocol and host, with ws/wss for http/https;
 * then the path the plugin is mounted under (`prefix`) and the relay's path.
 */
export function relayUrl(publicUrl: string | null, request: { protocol: string; host: string }, prefix = ''): string {
  const base = publicUrl ?? `${request.protocol}://${request.host}`;
  return base.replace(/^http/, 'ws') + prefix + ApiPath.relay;
}
