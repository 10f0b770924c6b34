/**
 * Several server instances on one database behave as one service: two apps, each with its own
 * store connection (pool), share sessions, cards, revocations and limits, also under races.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import { ApiPath } from '../../shared/api.js';
import type { CardWire } from '../../shared/index.js';
import { errorCode, newDevice, postCard, revokeCard, session, testApp, type ServerApp } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

describeEachStore('two instances, one database', (stores) => {
  let a: ServerApp;
  let b: ServerApp;
  beforeAll(async () => {
    [a, b] = await Promise.all([testApp(stores()), testApp(stores())]);
    expect(a.store).not.toBe(b.store);
  });
  afterAll(() => Promise.all([a.app.close(), b.app.close()]));

  it('a session from one instance is accepted by the other; cards and revocations are seen by both', async () => {
    const alice = await session(a.app);
    const device = await newDevice(alice.identity);
    const created = await postCard(b.app, alice, device.request);
    expect(created.statusCode).toBe(201);
    const card = created.json<CardWire>();

    const viaA = await a.app.inject({ url: `${ApiPath.cards}?identity=${alice.identity}`, headers: alice.headers });
    expect(viaA.json().cards).toEqual({ [alice.identity]: [card] });
    expect((await revokeCard(a.app, alice, card.id, { keys: device.keys, cardId: card.id })).statusCode).toBe(200);
    const viaB = await b.app.inject({ url: ApiPath.card(card.id), headers: alice.headers });
    expect(viaB.json<CardWire>().revokedAt).toBeTypeOf('number');

    // The same card and its keys cannot be registered again through the other instance.
    const again = await postCard(a.app, alice, device.request);
    expect(errorCode(again)).toBe('CARD_EXISTS');
  });

  it('one registration wins when the same card races on both instances', async () => {
    const alice = await session(a.app);
    const { request } = await newDevice(alice.identity);
    const results = await Promise.all([postCard(a.app, alice, request), postCard(b.app, alice, request)]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409]);
  });

  it(`the ${MAX_ACTIVE_CARDS_PER_IDENTITY}-card limit holds under concurrent registrations across instances`, async () => {
    const alice = await session(a.app);
    const devices = await Promise.all(Array.from({ length: MAX_ACTIVE_CARDS_PER_IDENTITY + 5 }, () => newDevice(alice.identity)));
    const results = await Promise.all(devices.map((d, i) => postCard(i % 2 ? a.app : b.app, alice, d.request)));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(MAX_ACTIVE_CARDS_PER_IDENTITY);
    expect(results.filter((r) => r.statusCode === 409).map(errorCode)).toEqual(Array(5).fill('TOO_MANY_CARDS'));
    const listed = await b.app.inject({ url: `${ApiPath.cards}?identity=${alice.identity}`, headers: alice.headers });
    expect(listed.json<{ cards: Record<string, CardWire[]> }>().cards[alice.identity]).toHaveLength(MAX_ACTIVE_CARDS_PER_IDENTITY);
  });

  it('a card registered on one instance is superseded through the other', async () => {
    const alice = await session(b.app);
    const old = (await postCard(a.app, alice, (await newDevice(alice.identity)).request)).json<CardWire>();
    const next = await postCard(b.app, alice, (await newDevice(alice.identity, { previousCardId: old.id })).request);
    expect(next.statusCode).toBe(201);
    const listed = await a.app.inject({ url: `${ApiPath.cards}?identity=${alice.identity}`, headers: alice.headers });
    expect(listed.json<{ cards: Record<string, CardWire[]> }>().cards[alice.identity]).toEqual([next.json()]);
  });

  it('both instances serve the same OrgCard and AppKey', async () => {
    for (const url of [ApiPath.orgCard, ApiPath.appKey]) {
      expect((await a.app.inject({ url })).body).toBe((await b.app.inject({ url })).body);
    }
  });
});
