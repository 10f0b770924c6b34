/**
 * The card directory: POST /v1/cards (every rule of docs/PROTOCOL.md section 4), GET /v1/cards,
 * GET /v1/cards/:id, DELETE /v1/cards/:id, on both stores. Cards are made by the shared core
 * and the registered ones verified by it against the served (and pinned) AppKey.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import { MAX_LOOKUP_IDENTITIES } from '../../shared/limits.js';
import { ApiPath } from '../../shared/api.js';
import { CARD_SELF_LABEL } from '../../shared/constants.js';
import { concatBytes, toB64u, utf8 } from '../../shared/encoding.js';
import { trustAppKeys, verifyCard, type CardRequest, type CardWire, type DeviceKeys } from '../../shared/index.js';
import { sign } from '../../shared/sodium.js';
import { errorCode, newDevice, postCard, revokeCard, session, testApp, type ProvingDevice, type ServerApp, type TestUser } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

const now = () => Math.floor(Date.now() / 1000);

/** A self-signed request over exactly these snapshot bytes (to send what the core would never make). */
function signedRequest(keys: DeviceKeys, snapshot: string): CardRequest {
  const bytes = utf8(snapshot);
  return { snapshot: toB64u(bytes), selfSignature: toB64u(sign(concatBytes(CARD_SELF_LABEL, bytes), keys.signSecretKey)) };
}

function snapshotOf(keys: DeviceKeys, identity: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    v: 1,
    identity,
    deviceId: 'phone',
    deviceName: '',
    signKey: toB64u(keys.signPublicKey),
    boxKey: toB64u(keys.boxPublicKey),
    createdAt: now(),
    ...extra,
  });
}

describeEachStore('cards', (stores) => {
  let t: ServerApp;
  beforeAll(async () => {
    t = await testApp(stores());
  });
  afterAll(() => t.app.close());

  async function register(user: TestUser, fields = {}): Promise<CardWire> {
    return (await registerDevice(user, fields)).card;
  }

  /** A registered card and what its device needs to prove itself (revocations). */
  async function registerDevice(user: TestUser, fields = {}): Promise<{ card: CardWire; device: ProvingDevice }> {
    const device = await newDevice(user.identity, fields);
    const res = await postCard(t.app, user, device.request);
    expect(res.statusCode, res.body).toBe(201);
    const card = res.json<CardWire>();
    return { card, device: { keys: device.keys, cardId: card.id } };
  }

  async function lookup(user: TestUser, identities: string[]) {
    const query = identities.map((i) => `identity=${encodeURIComponent(i)}`).join('&');
    return t.app.inject({ url: `${ApiPath.cards}?${query}`, headers: user.headers });
  }

  it('registers a card made by the core; it verifies against the served AppKey and is served back byte for byte', async () => {
    const alice = await session(t.app);
    const device = await newDevice(alice.identity);
    const res = await postCard(t.app, alice, device.request);
    expect(res.statusCode).toBe(201);
    const card = res.json<CardWire>();
    expect(card.snapshot).toBe(device.request.snapshot);
    expect(card.revokedAt).toBeNull();

    const appKey = (await t.app.inject({ url: ApiPath.appKey })).json<{ publicKey: string; appKeyId: string }>();
    const verified = verifyCard(card, { trustedAppKeys: trustAppKeys([appKey.publicKey]), identity: alice.identity });
    expect(verified.appKeyId).toBe(appKey.appKeyId);
    expect(verified.signPublicKey).toEqual(device.keys.signPublicKey);

    const fetched = await t.app.inject({ url: ApiPath.card(card.id), headers: alice.headers });
    expect(fetched.json()).toEqual(card);
    const listed = await lookup(alice, [alice.identity]);
    expect(listed.json().cards).toEqual({ [alice.identity]: [card] });
  });

  it('refuses a card for another identity (403) and the reserved org: prefix (403)', async () => {
    const alice = await session(t.app);
    const mallory = await session(t.app);
    const device = await newDevice(alice.identity);
    const res = await postCard(t.app, mallory, device.request);
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('FORBIDDEN');

    const orgUser = { identity: 'org:default', token: '', headers: { authorization: `Bearer ${t.app.e2ee.signSession!('org:default')}` } };
    const org = await postCard(t.app, orgUser, (await newDevice('org:default')).request);
    expect(org.statusCode).toBe(403);
    expect(errorCode(org)).toBe('FORBIDDEN');
  });

  it('requires authentication', async () => {
    const device = await newDevice('alice');
    const res = await t.app.inject({ method: 'POST', url: ApiPath.cards, payload: device.request });
    expect(res.statusCode).toBe(401);
    expect(errorCode(res)).toBe('UNAUTHORIZED');
  });

  it('refuses a bad self-signature', async () => {
    const alice = await session(t.app);
    const { request } = await newDevice(alice.identity);
    const other = await newDevice(alice.identity);
    const res = await postCard(t.app, alice, { snapshot: request.snapshot, selfSignature: other.request.selfSignature });
    expect(res.statusCode).toBe(400);
    expect(errorCode(res)).toBe('CARD_SELF_SIGNATURE_INVALID');
  });

  it.each([
    ['an unknown member', { extra: true }, 'CARD_MALFORMED'],
    ['a bad deviceId', { deviceId: 'phone 1' }, 'CARD_MALFORMED'],
    ['a long deviceName', { deviceName: 'x'.repeat(129) }, 'CARD_MALFORMED'],
    ['version 2', { v: 2 }, 'CARD_MALFORMED'],
    ['a fractional createdAt', { createdAt: 1.5 }, 'CARD_MALFORMED'],
    ['a short signKey', { signKey: 'AAAA' }, 'ENCODING_INVALID'],
    ['a low-order box key', { boxKey: toB64u(new Uint8Array(32)) }, 'CARD_WEAK_KEY'],
    ['a bad previousCardId', { previousCardId: 'ABC' }, 'CARD_MALFORMED'],
  ])('refuses a snapshot with %s', async (_name, extra, code) => {
    const alice = await session(t.app);
    const { keys } = await newDevice(alice.identity);
    const res = await postCard(t.app, alice, signedRequest(keys, snapshotOf(keys, alice.identity, extra)));
    expect(res.statusCode).toBe(400);
    expect(errorCode(res)).toBe(code);
  });

  it('refuses a snapshot missing a member, over 2048 bytes, or not base64url', async () => {
    const alice = await session(t.app);
    const { keys } = await newDevice(alice.identity);
    const { createdAt: _, ...withoutCreatedAt } = JSON.parse(snapshotOf(keys, alice.identity)) as Record<string, unknown>;
    const missing = await postCard(t.app, alice, signedRequest(keys, JSON.stringify(withoutCreatedAt)));
    expect(errorCode(missing)).toBe('CARD_MALFORMED');

    const large = await postCard(t.app, alice, signedRequest(keys, snapshotOf(keys, alice.identity, { deviceName: 'x'.repeat(2100) })));
    expect(large.statusCode).toBe(400);
    expect(errorCode(large)).toBe('CARD_TOO_LARGE');

    const padded = await postCard(t.app, alice, { snapshot: 'eyJ2Ijox=', selfSignature: 'AA' });
    expect(padded.statusCode).toBe(400);
    expect(errorCode(padded)).toBe('ENCODING_INVALID');
  });

  it('validates the body shape', async () => {
    const alice = await session(t.app);
    const { request } = await newDevice(alice.identity);
    for (const payload of [{ snapshot: request.snapshot }, { ...request, extra: 1 }, { snapshot: 5, selfSignature: request.selfSignature }, [request]]) {
      const res = await t.app.inject({ method: 'POST', url: ApiPath.cards, headers: alice.headers, payload });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
    }
  });

  it('accepts createdAt within 10 minutes of the server clock, refuses beyond (CARD_STALE)', async () => {
    const alice = await session(t.app);
    for (const offset of [-590, 590]) {
      const res = await postCard(t.app, alice, (await newDevice(alice.identity, { createdAt: now() + offset })).request);
      expect(res.statusCode, `offset ${offset}`).toBe(201);
    }
    for (const offset of [-610, 610]) {
      const res = await postCard(t.app, alice, (await newDevice(alice.identity, { createdAt: now() + offset })).request);
      expect(res.statusCode, `offset ${offset}`).toBe(400);
      expect(errorCode(res)).toBe('CARD_STALE');
    }
  });

  it('refuses a card registered twice (CARD_EXISTS) and reused sign or box keys, also across identities (KEY_IN_USE)', async () => {
    const alice = await session(t.app);
    const bob = await session(t.app);
    const device = await newDevice(alice.identity);
    expect((await postCard(t.app, alice, device.request)).statusCode).toBe(201);

    const again = await postCard(t.app, alice, device.request);
    expect(again.statusCode).toBe(409);
    expect(errorCode(again)).toBe('CARD_EXISTS');

    const { keys: fresh } = await newDevice(bob.identity);
    const sameSignKey = { ...fresh, signPublicKey: device.keys.signPublicKey, signSecretKey: device.keys.signSecretKey };
    const sameBoxKey = { ...fresh, boxPublicKey: device.keys.boxPublicKey };
    for (const [user, keys] of [[alice, sameSignKey], [bob, sameSignKey], [bob, sameBoxKey]] as const) {
      const res = await postCard(t.app, user, signedRequest(keys, snapshotOf(keys, user.identity)));
      expect(res.statusCode).toBe(409);
      expect(errorCode(res)).toBe('KEY_IN_USE');
    }
  });

  it(`allows ${MAX_ACTIVE_CARDS_PER_IDENTITY} active cards per identity (TOO_MANY_CARDS beyond), and one more after a revocation`, async () => {
    const alice = await session(t.app);
    const { card: first, device } = await registerDevice(alice);
    for (let i = 1; i < MAX_ACTIVE_CARDS_PER_IDENTITY; i++) await register(alice);
    const over = await postCard(t.app, alice, (await newDevice(alice.identity)).request);
    expect(over.statusCode).toBe(409);
    expect(errorCode(over)).toBe('TOO_MANY_CARDS');

    expect((await revokeCard(t.app, alice, first.id, device)).statusCode).toBe(200);
    await register(alice);
  });

  it('a card naming an active card of the same identity as previousCardId supersedes (revokes) it', async () => {
    const alice = await session(t.app);
    const old = await register(alice);
    const replacement = await register(alice, { previousCardId: old.id });
    const listed = (await lookup(alice, [alice.identity])).json<{ cards: Record<string, CardWire[]> }>();
    expect(listed.cards[alice.identity]).toEqual([replacement]);
    const revoked = (await t.app.inject({ url: ApiPath.card(old.id), headers: alice.headers })).json<CardWire>();
    expect(revoked.revokedAt).toBeTypeOf('number');
  });

  it("previousCardId naming another identity's card does not touch that card", async () => {
    const alice = await session(t.app);
    const bob = await session(t.app);
    const bobs = await register(bob);
    await register(alice, { previousCardId: bobs.id });
    const listed = (await lookup(bob, [bob.identity])).json<{ cards: Record<string, CardWire[]> }>();
    expect(listed.cards[bob.identity]).toEqual([bobs]);
  });

  it('looks up active cards of several identities: unknown ones are empty, duplicates collapse, odd names are plain keys', async () => {
    const alice = await session(t.app);
    const bob = await session(t.app);
    const { card: a1, device } = await registerDevice(alice);
    const a2 = await register(alice);
    const b1 = await register(bob);
    expect((await revokeCard(t.app, alice, a2.id, device)).statusCode).toBe(200);
    const res = await lookup(alice, [alice.identity, bob.identity, 'nobody', alice.identity, '__proto__']);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ cards: Record<string, CardWire[]> }>();
    expect(Object.keys(body.cards).sort()).toEqual([alice.identity, bob.identity, 'nobody', '__proto__'].sort());
    expect(body.cards[alice.identity]).toEqual([a1]);
    expect(body.cards[bob.identity]).toEqual([b1]);
    expect(body.cards.nobody).toEqual([]);
  });

  it(`looks up at most ${MAX_LOOKUP_IDENTITIES} identities, at least one, and needs authentication`, async () => {
    const alice = await session(t.app);
    const many = Array.from({ length: MAX_LOOKUP_IDENTITIES + 1 }, (_, i) => `user-${i}`);
    expect((await lookup(alice, many.slice(0, MAX_LOOKUP_IDENTITIES))).statusCode).toBe(200);
    const over = await lookup(alice, many);
    expect(over.statusCode).toBe(400);
    expect(errorCode(over)).toBe('BAD_REQUEST');
    for (const url of [ApiPath.cards, `${ApiPath.cards}?identity=`, `${ApiPath.cards}?identity=a&other=b`]) {
      const res = await t.app.inject({ url, headers: alice.headers });
      expect(res.statusCode, url).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
    }
    const anonymous = await t.app.inject({ url: `${ApiPath.cards}?identity=a` });
    expect(anonymous.statusCode).toBe(401);
  });

  it('serves one card by id, revoked too; 404 for an unknown id, 400 for a malformed one', async () => {
    const alice = await session(t.app);
    const bob = await session(t.app);
    const { card, device } = await registerDevice(alice);
    expect((await revokeCard(t.app, alice, card.id, device)).statusCode).toBe(200);
    const res = await t.app.inject({ url: ApiPath.card(card.id), headers: bob.headers });
    expect(res.statusCode).toBe(200);
    const revoked = res.json<CardWire>();
    expect(revoked.revokedAt).toBeTypeOf('number');
    // Still verifiable, for messages sent before the revocation.
    const appKey = (await t.app.inject({ url: ApiPath.appKey })).json<{ publicKey: string }>();
    expect(verifyCard(revoked, { trustedAppKeys: trustAppKeys([appKey.publicKey]), allowRevoked: true }).id).toBe(card.id);

    const unknown = await t.app.inject({ url: ApiPath.card('0'.repeat(64)), headers: bob.headers });
    expect(unknown.statusCode).toBe(404);
    expect(errorCode(unknown)).toBe('NOT_FOUND');
    const malformed = await t.app.inject({ url: ApiPath.card('XYZ'), headers: bob.headers });
    expect(malformed.statusCode).toBe(400);
    expect(errorCode(malformed)).toBe('BAD_REQUEST');
    expect((await t.app.inject({ url: ApiPath.card(card.id) })).statusCode).toBe(401);
  });

  it('revokes only for the owner (403 otherwise); revoking again keeps the first time; 404 for unknown', async () => {
    const alice = await session(t.app);
    const bob = await session(t.app);
    const { card } = await registerDevice(alice);
    const { device: laptop } = await registerDevice(alice);
    const { device: bobsPhone } = await registerDevice(bob);
    const byBob = await revokeCard(t.app, bob, card.id, bobsPhone);
    expect(byBob.statusCode).toBe(403);
    expect(errorCode(byBob)).toBe('FORBIDDEN');
    expect((await t.app.inject({ method: 'DELETE', url: ApiPath.card(card.id) })).statusCode).toBe(401);

    const first = await revokeCard(t.app, alice, card.id, laptop);
    expect(first.statusCode).toBe(200);
    const revokedAt = first.json<CardWire>().revokedAt;
    expect(revokedAt).toBeTypeOf('number');
    const second = await revokeCard(t.app, alice, card.id, laptop);
    expect(second.json<CardWire>().revokedAt).toBe(revokedAt);

    const unknown = await revokeCard(t.app, alice, 'f'.repeat(64), laptop);
    expect(unknown.statusCode).toBe(404);
  });
});
