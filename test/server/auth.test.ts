/**
 * Authentication: demo-mode sessions (POST /v1/session), and app tokens from a team's identity
 * provider (HS256 secret; RS256, ES256, EdDSA public keys). Every bad token is a 401 with
 * UNAUTHORIZED; the route that checks them here is GET /v1/twilio-token.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRelayToken } from '../../server/relay-token.js';
import { ApiPath } from '../../shared/api.js';
import { bearer, errorCode, session, testApp, uid, type ServerApp } from '../support/app.js';
import { jwtClaims, nowSeconds, signJwt } from '../support/jwt.js';
import { describeEachStore } from '../support/stores.js';

const SECRET = 'test-secret-of-the-identity-provider-0123456789';

describeEachStore('auth', (stores) => {
  describe('demo mode sessions', () => {
    let t: ServerApp;
    beforeAll(async () => {
      t = await testApp(stores());
    });
    afterAll(() => t.app.close());

    const whoAmI = async (token: string) => t.app.inject({ url: ApiPath.twilioToken, headers: bearer(token) });

    it('issues an app token whose sub is the identity and that the API accepts', async () => {
      const user = await session(t.app, 'alice@example.com');
      const claims = jwtClaims(user.token);
      expect(claims.sub).toBe('alice@example.com');
      expect((claims.exp as number) - (claims.iat as number)).toBe(t.config.sessionTtl);
      const res = await whoAmI(user.token);
      expect(res.statusCode).toBe(200);
      expect(res.json().identity).toBe('alice@example.com');
    });

    it.each([
      ['no identity', {}],
      ['an empty identity', { identity: '' }],
      ['an identity over 256 characters', { identity: 'x'.repeat(257) }],
      ['a number', { identity: 42 }],
      ['an extra member', { identity: 'alice', admin: true }],
      ['a reserved org: identity', { identity: 'org:default' }],
    ])('refuses %s (400)', async (_name, payload) => {
      const res = await t.app.inject({ method: 'POST', url: ApiPath.session, payload });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
    });

    it('rejects missing, malformed, tampered, foreign-key, relay and expired tokens with 401', async () => {
      const user = await session(t.app);
      const [head, body] = user.token.split('.');
      const forged = Buffer.from(JSON.stringify({ ...jwtClaims(user.token), sub: 'mallory' })).toString('base64url');
      const cases: Record<string, Record<string, string>> = {
        'no header': {},
        'not bearer': { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        'empty bearer': { authorization: 'Bearer ' },
        garbage: bearer('not-a-jwt'),
        'changed payload': bearer(`${head}.${forged}.${user.token.split('.')[2]}`),
        'no signature': bearer(`${head}.${body}.`),
        'signed by someone else': bearer(signJwt({ sub: user.identity }, 'HS256', 'another-secret-another-secret-another')),
        'alg none': bearer(signJwt({ sub: user.identity }, 'none', '')),
        'a relay token': bearer(signRelayToken(t.app.e2ee.relayTokenSecret, user.identity, 600)),
      };
      for (const [name, headers] of Object.entries(cases)) {
        const res = await t.app.inject({ url: ApiPath.twilioToken, headers });
        expect(res.statusCode, name).toBe(401);
        expect(errorCode(res), name).toBe('UNAUTHORIZED');
      }
    });
  });

  describe('identity provider with an HS256 secret', () => {
    let t: ServerApp;
    beforeAll(async () => {
      t = await testApp(stores(), { env: { AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: 'https://idp.example', AUTH_JWT_AUDIENCE: 'chat' } });
    });
    afterAll(() => t.app.close());

    const call = (token: string) => t.app.inject({ url: ApiPath.twilioToken, headers: bearer(token) });
    const good = { iss: 'https://idp.example', aud: 'chat' };

    it('is not demo mode: POST /v1/session does not exist', async () => {
      expect(t.config.demoMode).toBe(false);
      const res = await t.app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } });
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('NOT_FOUND');
    });

    it("accepts the provider's token and takes the identity from sub", async () => {
      const identity = uid('alice');
      const res = await call(signJwt({ sub: identity, ...good }, 'HS256', SECRET));
      expect(res.statusCode).toBe(200);
      expect(res.json().identity).toBe(identity);
    });

    it.each([
      ['expired', { sub: 'alice', ...good, exp: nowSeconds() - 120 }],
      ['without exp', { sub: 'alice', ...good, exp: undefined }],
      ['without sub', { ...good }],
      ['with a non-string sub', { sub: 42, ...good }],
      ['with an empty sub', { sub: '', ...good }],
      ['with a sub over 256 characters', { sub: 'x'.repeat(257), ...good }],
      ['from another issuer', { sub: 'alice', ...good, iss: 'https://evil.example' }],
      ['for another audience', { sub: 'alice', ...good, aud: 'other' }],
      ['not yet valid', { sub: 'alice', ...good, nbf: nowSeconds() + 600 }],
    ])('rejects a token %s (401)', async (_name, claims) => {
      const res = await call(signJwt(claims, 'HS256', SECRET));
      expect(res.statusCode).toBe(401);
      expect(errorCode(res)).toBe('UNAUTHORIZED');
    });

    it('rejects a demo session token of another server (401)', async () => {
      const other = await testApp(stores());
      try {
        const user = await session(other.app);
        expect((await call(user.token)).statusCode).toBe(401);
      } finally {
        await other.app.close();
      }
    });
  });

  describe.each([
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', () => generateKeyPairSync('ed25519')],
  ] as const)('identity provider with an %s public key', (alg, makeKeys) => {
    let t: ServerApp;
    let keys: { publicKey: KeyObject; privateKey: KeyObject };
    let pem: string;
    beforeAll(async () => {
      keys = makeKeys();
      pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      t = await testApp(stores(), { env: { AUTH_JWT_PUBLIC_KEY: pem } });
    });
    afterAll(() => t.app.close());

    it('infers the algorithm and accepts tokens signed with the private key', async () => {
      expect(t.config.auth.algorithm).toBe(alg);
      const res = await t.app.inject({ url: ApiPath.twilioToken, headers: bearer(signJwt({ sub: 'alice' }, alg, keys.privateKey)) });
      expect(res.statusCode).toBe(200);
      expect(res.json().identity).toBe('alice');
    });

    it('rejects an HS256 token keyed with the public key (algorithm confusion), another key, and expiry', async () => {
      const other = makeKeys();
      for (const token of [
        signJwt({ sub: 'alice' }, 'HS256', pem),
        signJwt({ sub: 'alice' }, alg, other.privateKey),
        signJwt({ sub: 'alice', exp: nowSeconds() - 120 }, alg, keys.privateKey),
      ]) {
        const res = await t.app.inject({ url: ApiPath.twilioToken, headers: bearer(token) });
        expect(res.statusCode).toBe(401);
        expect(errorCode(res)).toBe('UNAUTHORIZED');
      }
    });
  });
});
