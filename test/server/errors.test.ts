/**
 * The error contract: every 4xx is `{"error": {"code","message"}}` with a stable code, for
 * malformed JSON, oversized bodies, wrong media types, unknown routes, and rate limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPath } from '../../shared/api.js';
import { errorCode, newDevice, postCard, session, testApp, type ServerApp } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

describeEachStore('errors', (stores) => {
  describe('request errors', () => {
    let t: ServerApp;
    beforeAll(async () => {
      t = await testApp(stores(), { env: { BODY_LIMIT: '4096' } });
    });
    afterAll(() => t.app.close());

    const post = (payload: string, contentType = 'application/json', headers: Record<string, string> = {}) =>
      t.app.inject({ method: 'POST', url: ApiPath.session, payload, headers: { 'content-type': contentType, ...headers } });

    it.each([
      ['malformed JSON', '{"identity": "alice"', 400, 'BAD_REQUEST'],
      ['an empty JSON body', '', 400, 'BAD_REQUEST'],
      ['a JSON prototype poisoning attempt', '{"identity":"alice","__proto__":{"admin":true}}', 400, 'BAD_REQUEST'],
      ['a body over BODY_LIMIT', JSON.stringify({ identity: 'x'.repeat(5000) }), 413, 'PAYLOAD_TOO_LARGE'],
    ])('answers %s with %i %s', async (_name, payload, status, code) => {
      const res = await post(payload);
      expect(res.statusCode).toBe(status);
      expect(errorCode(res)).toBe(code);
    });

    it('answers a non-JSON media type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      const res = await post('identity=alice', 'application/x-www-form-urlencoded');
      expect(res.statusCode).toBe(415);
      expect(errorCode(res)).toBe('UNSUPPORTED_MEDIA_TYPE');
    });

    it('applies the body limit to authenticated routes too (before authentication)', async () => {
      const res = await t.app.inject({ method: 'POST', url: ApiPath.cards, payload: { snapshot: 'A'.repeat(5000), selfSignature: 'A' } });
      expect(res.statusCode).toBe(413);
      expect(errorCode(res)).toBe('PAYLOAD_TOO_LARGE');
    });

    it.each([
      ['GET', '/v1/nothing'],
      ['GET', '/nothing'],
      ['PUT', ApiPath.cards],
      ['POST', ApiPath.appKey],
      ['GET', '/v1'],
    ])('answers unknown route %s %s with 404 NOT_FOUND', async (method, url) => {
      const res = await t.app.inject({ method: method as 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(errorCode(res)).toBe('NOT_FOUND');
    });

    it('leaves the query string out of the 404 message (it may hold a token)', async () => {
      const res = await t.app.inject({ url: '/v1/nothing?token=secret-value' });
      expect(res.json().error.message).not.toContain('secret-value');
    });
  });

  describe('rate limits', () => {
    let t: ServerApp;
    beforeAll(async () => {
      t = await testApp(stores(), { env: { RATE_LIMIT_SESSION: '3', RATE_LIMIT_CARD_REGISTRATION: '2', RATE_LIMIT_LOOKUP: '2' } });
    });
    afterAll(() => t.app.close());

    it('limits sessions per client address (429 RATE_LIMITED with Retry-After)', async () => {
      const ask = (ip: string) => t.app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' }, remoteAddress: ip });
      for (let i = 0; i < 3; i++) expect((await ask('10.0.0.1')).statusCode).toBe(200);
      const limited = await ask('10.0.0.1');
      expect(limited.statusCode).toBe(429);
      expect(errorCode(limited)).toBe('RATE_LIMITED');
      expect(limited.headers['retry-after']).toBeDefined();
      expect((await ask('10.0.0.2')).statusCode).toBe(200);
    });

    it('limits card lookups and registrations per identity, not per address', async () => {
      const alice = await session(t.app, 'alice-limited');
      const bob = await session(t.app, 'bob-limited');
      const look = (user: typeof alice) => t.app.inject({ url: `${ApiPath.cards}?identity=x`, headers: user.headers });
      expect((await look(alice)).statusCode).toBe(200);
      expect((await look(alice)).statusCode).toBe(200);
      const limited = await look(alice);
      expect(limited.statusCode).toBe(429);
      expect(errorCode(limited)).toBe('RATE_LIMITED');
      expect((await look(bob)).statusCode).toBe(200);

      for (let i = 0; i < 2; i++) expect((await postCard(t.app, alice, (await newDevice(alice.identity)).request)).statusCode).toBe(201);
      const third = await postCard(t.app, alice, (await newDevice(alice.identity)).request);
      expect(third.statusCode).toBe(429);
      expect(errorCode(third)).toBe('RATE_LIMITED');
    });
  });
});
