/**
 * GET /v1/twilio-token: a Twilio AccessToken with a ChatGrant in Twilio mode (decoded and checked
 * here, with the network to Twilio shut: issuing one needs none), a relay token and URL in local
 * mode. The identity is always the authenticated one.
 */
import { createHmac } from 'node:crypto';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyRelayToken } from '../../server/relay-token.js';
import { ApiPath, type TwilioTokenResponse } from '../../shared/api.js';
import { errorCode, session, testApp, type ServerApp } from '../support/app.js';
import { jwtClaims, jwtHeader } from '../support/jwt.js';
import { describeEachStore } from '../support/stores.js';
import { TWILIO_CREDENTIALS_ENV as TWILIO } from '../support/twilio.js';

describeEachStore('twilio token', (stores) => {
  describe('Twilio mode', () => {
    let t: ServerApp;
    beforeAll(async () => {
      // Only local connections (the test database) are allowed: no request may reach Twilio.
      nock.disableNetConnect();
      nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);
      t = await testApp(stores(), { env: { ...TWILIO, TWILIO_TOKEN_TTL: '7200' } });
    });
    afterAll(async () => {
      await t.app.close();
      nock.enableNetConnect();
    });

    it('issues an AccessToken with a ChatGrant for the service, the caller as identity, and the configured ttl', async () => {
      const user = await session(t.app);
      const res = await t.app.inject({ url: `${ApiPath.twilioToken}?identity=mallory`, headers: user.headers });
      expect(res.statusCode).toBe(200);
      const body = res.json<TwilioTokenResponse>();
      expect(body).toMatchObject({ mode: 'twilio', identity: user.identity, ttl: 7200 });
      expect(body).not.toHaveProperty('relayUrl');

      const { token } = body;
      expect(jwtHeader(token)).toMatchObject({ alg: 'HS256', cty: 'twilio-fpa;v=1' });
      const claims = jwtClaims(token);
      expect(claims.iss).toBe(TWILIO.TWILIO_API_KEY);
      expect(claims.sub).toBe(TWILIO.TWILIO_ACCOUNT_SID);
      expect((claims.exp as number) - (claims.iat as number)).toBe(7200);
      expect(claims.grants).toEqual({ identity: user.identity, chat: { service_sid: TWILIO.TWILIO_CONVERSATIONS_SERVICE_SID } });
      // Signed with the API key secret, as Twilio verifies it.
      const [head, payload, signature] = token.split('.');
      expect(createHmac('sha256', TWILIO.TWILIO_API_SECRET).update(`${head}.${payload}`).digest('base64url')).toBe(signature);
    });

    it('needs authentication', async () => {
      const res = await t.app.inject({ url: ApiPath.twilioToken });
      expect(res.statusCode).toBe(401);
      expect(errorCode(res)).toBe('UNAUTHORIZED');
    });
  });

  describe('local mode', () => {
    let t: ServerApp;
    beforeAll(async () => {
      t = await testApp(stores());
    });
    afterAll(() => t.app.close());

    it('issues a relay token any instance with the same AppKey verifies, and the relay URL of this host', async () => {
      const user = await session(t.app);
      const res = await t.app.inject({ url: ApiPath.twilioToken, headers: { ...user.headers, host: 'chat.test:8080' } });
      expect(res.statusCode).toBe(200);
      const body = res.json<TwilioTokenResponse>();
      expect(body).toMatchObject({ mode: 'local', identity: user.identity, ttl: 3600, relayUrl: `ws://chat.test:8080${ApiPath.relay}` });

      const other = await testApp(stores());
      try {
        const verified = verifyRelayToken(other.app.e2ee.relayTokenSecret, body.token);
        expect(verified.identity).toBe(user.identity);
        expect(Math.round(verified.expiresAtMs / 1000 - Date.now() / 1000)).toBeGreaterThan(3590);
      } finally {
        await other.app.close();
      }
    });

    it('uses PUBLIC_URL for the relay URL (wss for https)', async () => {
      // On this suite's store the log's origin is already set (LOG_ORIGIN is kept once set, PUBLIC_URL may change).
      const pub = await testApp(stores(), { env: { PUBLIC_URL: 'https://chat.example.com/e2ee/', LOG_ORIGIN: t.config.log.origin } });
      try {
        const user = await session(pub.app);
        const body = (await pub.app.inject({ url: ApiPath.twilioToken, headers: user.headers })).json<TwilioTokenResponse>();
        expect(body.mode === 'local' && body.relayUrl).toBe(`wss://chat.example.com/e2ee${ApiPath.relay}`);
      } finally {
        await pub.app.close();
      }
    });
  });
});
