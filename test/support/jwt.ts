/**
 * Signs JWTs the way a team's identity provider would (node:crypto, independent of the server's
 * @fastify/jwt), including wrong ones: expired, unsigned, signed with the wrong key or algorithm.
 */
import { createHmac, sign, type KeyObject } from 'node:crypto';

const b64u = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export type TestAlgorithm = 'HS256' | 'RS256' | 'ES256' | 'EdDSA' | 'none';

/** A JWT with `payload` (exp one hour ahead unless given) signed with `alg` and `key`. */
export function signJwt(payload: Record<string, unknown>, alg: TestAlgorithm, key: string | KeyObject): string {
  const body = { iat: nowSeconds(), exp: nowSeconds() + 3600, ...payload };
  const input = `${b64u({ alg, typ: 'JWT' })}.${b64u(body)}`;
  if (alg === 'none') return `${input}.`;
  let signature: Buffer;
  if (alg === 'HS256') signature = createHmac('sha256', key as string).update(input).digest();
  else if (alg === 'RS256') signature = sign('sha256', Buffer.from(input), key as KeyObject);
  else if (alg === 'ES256') signature = sign('sha256', Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else signature = sign(null, Buffer.from(input), key as KeyObject);
  return `${input}.${signature.toString('base64url')}`;
}

/** The claims of a JWT, unverified (to inspect tokens the server issued). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function jwtHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
