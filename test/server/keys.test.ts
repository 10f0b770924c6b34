/**
 * The public routes: GET /v1/app-key, GET /v1/org-card (one OrgCard for all instances), health
 * and readiness, and the OpenAPI document at /docs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiPath, type AppKeyResponse } from '../../shared/api.js';
import { toB64u, trustAppKeys, verifyCard, type CardWire } from '../../shared/index.js';
import { errorCode, testApp, type ServerApp } from '../support/app.js';
import { TEST_APP_KEY } from '../support/env.js';
import { describeEachStore } from '../support/stores.js';

describeEachStore('keys, health and docs', (stores) => {
  let t: ServerApp;
  beforeAll(async () => {
    t = await testApp(stores());
  });
  afterAll(() => t.app.close());

  it('serves the AppKey public key and id', async () => {
    const res = await t.app.inject({ url: ApiPath.appKey });
    expect(res.statusCode).toBe(200);
    const body = res.json<AppKeyResponse>();
    expect(body).toEqual({ publicKey: toB64u(t.config.appKey.publicKey), appKeyId: t.config.appKey.appKeyId });
    expect(trustAppKeys([body.publicKey])[0]!.appKeyId).toBe(body.appKeyId);
  });

  it('serves the OrgCard: countersigned, identity org:<name>, the OrgKey box key', async () => {
    const res = await t.app.inject({ url: ApiPath.orgCard });
    expect(res.statusCode).toBe(200);
    const card = verifyCard(res.json(), { trustedAppKeys: trustAppKeys([toB64u(t.config.appKey.publicKey)]), identity: 'org:default' });
    expect(card.fields.deviceId).toBe('org');
    expect(card.boxPublicKey).toEqual(t.config.orgKey!.keys.boxPublicKey);
  });

  it('serves the same OrgCard bytes from every instance, even when they start together', async () => {
    const [a, b] = await Promise.all([testApp(stores(), { env: { ORG_NAME: 'acme' } }), testApp(stores(), { env: { ORG_NAME: 'acme' } })]);
    try {
      const [ca, cb] = await Promise.all([a.app.inject({ url: ApiPath.orgCard }), b.app.inject({ url: ApiPath.orgCard })]);
      expect(ca.body).toBe(cb.body);
      expect(verifyCard(ca.json(), { trustedAppKeys: trustAppKeys([toB64u(a.config.appKey.publicKey)]), identity: 'org:acme' }).id).toBe(
        ca.json<CardWire>().id,
      );
      // A restart serves it again, unchanged.
      const c = await testApp(stores(), { env: { ORG_NAME: 'acme' } });
      expect((await c.app.inject({ url: ApiPath.orgCard })).body).toBe(ca.body);
      await c.app.close();
    } finally {
      await Promise.all([a.app.close(), b.app.close()]);
    }
  });

  it('answers 503 HISTORY_DISABLED for the OrgCard when there is no ORG_KEY, as the history routes do', async () => {
    const noOrg = await testApp(stores(), { env: { ORG_KEY: undefined, AUTH_JWT_SECRET: 'x'.repeat(40), APP_KEY: TEST_APP_KEY } });
    try {
      expect(noOrg.config.orgKey).toBeNull();
      const res = await noOrg.app.inject({ url: ApiPath.orgCard });
      expect(res.statusCode).toBe(503);
      expect(errorCode(res)).toBe('HISTORY_DISABLED');
    } finally {
      await noOrg.app.close();
    }
  });

  it('answers /healthz and /readyz (naming the store)', async () => {
    expect((await t.app.inject({ url: ApiPath.healthz })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: ApiPath.readyz })).json()).toEqual({ status: 'ready', store: stores().kind });
  });

  it('echoes a request id: a well-formed X-Request-Id from a proxy, else a fresh UUID', async () => {
    expect((await t.app.inject({ url: ApiPath.healthz, headers: { 'x-request-id': 'lb-42.a' } })).headers['x-request-id']).toBe('lb-42.a');
    for (const given of [undefined, 'bad id with spaces', 'x'.repeat(200)]) {
      const id = (await t.app.inject({ url: ApiPath.healthz, headers: given ? { 'x-request-id': given } : {} })).headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    }
  });

  it('answers /readyz 503 STORE_UNAVAILABLE, and other routes 500 INTERNAL without internals, when the store is gone', async () => {
    const broken = await testApp(stores());
    try {
      await broken.store.close();
      const ready = await broken.app.inject({ url: ApiPath.readyz });
      expect(ready.statusCode).toBe(503);
      expect(errorCode(ready)).toBe('STORE_UNAVAILABLE');
      expect((await broken.app.inject({ url: ApiPath.healthz })).statusCode).toBe(200);

      const token = broken.app.e2ee.signSession!('alice');
      const res = await broken.app.inject({ url: ApiPath.card('a'.repeat(64)), headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    } finally {
      await broken.app.close();
    }
  });

  it('serves the OpenAPI document generated from the route schemas, and its UI, at /docs', async () => {
    const res = await t.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { security?: unknown; requestBody?: unknown }>> }>();
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [ApiPath.session, ApiPath.twilioToken, ApiPath.cards, '/v1/cards/{id}', ApiPath.appKey, ApiPath.orgCard, ApiPath.healthz, ApiPath.readyz]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    expect(doc.paths[ApiPath.cards]!.post!.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths[ApiPath.cards]!.post!.requestBody).toBeDefined();
    const ui = await t.app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
  });
});
