/** The CardStore contract: registration rules, lookup and revocation, devices waiting for approval. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { PendingDeviceRecord, Store } from '../../server/store/types.js';
import { cardId, count, key, makeCard, NOW, range, registerOptions, uid } from './store.fixtures.js';

/** Registered inside storeContract (test/server/store.contract.ts), which opens and closes `current()` around each test. */
export function cardContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  describe('registerCard', () => {
    it('stores the card exactly and reports no supersede', async () => {
      const card = makeCard(uid('alice'));
      expect(await store.registerCard(card, registerOptions())).toEqual({ ok: true, superseded: null });
      expect(await store.getCard(card.id)).toEqual(card);
    });

    it('refuses the same id with CARD_EXISTS (before checking keys) and keeps the first card', async () => {
      const card = makeCard(uid('alice'));
      await store.registerCard(card, registerOptions());
      const sameId = makeCard(uid('bob'), { id: card.id });
      expect(await store.registerCard(sameId, registerOptions())).toEqual({ ok: false, reason: 'CARD_EXISTS' });
      expect(await store.registerCard({ ...card }, registerOptions())).toEqual({ ok: false, reason: 'CARD_EXISTS' });
      expect(await store.getCard(card.id)).toEqual(card);
    });

    it('refuses a sign key or box key of any card with KEY_IN_USE, revoked cards included', async () => {
      const alice = uid('alice');
      const active = makeCard(alice);
      const revoked = makeCard(alice);
      await store.registerCard(active, registerOptions());
      await store.registerCard(revoked, registerOptions());
      await store.revokeCard(revoked.id, NOW + 1);

      const bob = uid('bob');
      const attempts = [
        makeCard(bob, { signKey: active.signKey }),
        makeCard(bob, { boxKey: active.boxKey }),
        makeCard(bob, { signKey: revoked.signKey }),
        makeCard(bob, { boxKey: revoked.boxKey }),
        makeCard(alice, { signKey: active.signKey, boxKey: active.boxKey }),
      ];
      for (const card of attempts) {
        expect(await store.registerCard(card, registerOptions())).toEqual({ ok: false, reason: 'KEY_IN_USE' });
        expect(await store.getCard(card.id)).toBeNull();
      }
    });

    it('refuses past the active-card limit with TOO_MANY_CARDS; revoked cards do not count', async () => {
      const alice = uid('alice');
      const options = registerOptions({ maxActivePerIdentity: 2 });
      const [first, second, third] = [makeCard(alice), makeCard(alice), makeCard(alice)];
      expect((await store.registerCard(first, options)).ok).toBe(true);
      expect((await store.registerCard(second, options)).ok).toBe(true);
      expect(await store.registerCard(third, options)).toEqual({ ok: false, reason: 'TOO_MANY_CARDS' });
      expect(await store.getCard(third.id)).toBeNull();

      // Another identity has its own count.
      expect((await store.registerCard(makeCard(uid('bob')), options)).ok).toBe(true);

      await store.revokeCard(first.id, NOW + 1);
      expect(await store.registerCard(third, options)).toEqual({ ok: true, superseded: null });
    });

    it('supersedes the previous active card of the same identity in the same call', async () => {
      const alice = uid('alice');
      const previous = makeCard(alice);
      await store.registerCard(previous, registerOptions());
      const next = makeCard(alice);
      const result = await store.registerCard(next, registerOptions({ supersedes: previous.id, now: NOW + 99 }));
      expect(result).toEqual({ ok: true, superseded: previous.id });
      expect((await store.getCard(previous.id))?.revokedAt).toBe(NOW + 99);
      expect((await store.activeCards([alice])).get(alice)).toEqual([next]);
    });

    it('counts the limit after the supersede, so a device can replace its card at the limit', async () => {
      const alice = uid('alice');
      const options = registerOptions({ maxActivePerIdentity: 1 });
      const previous = makeCard(alice);
      await store.registerCard(previous, options);
      const next = makeCard(alice);
      expect(await store.registerCard(next, { ...options, supersedes: previous.id })).toEqual({
        ok: true,
        superseded: previous.id,
      });
    });

    it('does not supersede a card of another identity, a revoked card or an unknown id', async () => {
      const alice = uid('alice');
      const bob = uid('bob');
      const bobs = makeCard(bob);
      const revoked = makeCard(alice);
      await store.registerCard(bobs, registerOptions());
      await store.registerCard(revoked, registerOptions());
      await store.revokeCard(revoked.id, NOW + 1);

      for (const supersedes of [bobs.id, revoked.id, uid('card')]) {
        const card = makeCard(alice);
        expect(await store.registerCard(card, registerOptions({ supersedes }))).toEqual({ ok: true, superseded: null });
      }
      expect(await store.getCard(bobs.id)).toEqual(bobs);
      expect((await store.getCard(revoked.id))?.revokedAt).toBe(NOW + 1);
    });

    it('leaves the superseded card active when the registration is refused', async () => {
      const alice = uid('alice');
      const cards = [makeCard(alice), makeCard(alice), makeCard(alice)];
      for (const card of cards) await store.registerCard(card, registerOptions());
      const supersedes = cards[0]!.id;

      const tooMany = makeCard(alice);
      expect(await store.registerCard(tooMany, registerOptions({ maxActivePerIdentity: 2, supersedes }))).toEqual({
        ok: false,
        reason: 'TOO_MANY_CARDS',
      });
      const keyInUse = makeCard(alice, { boxKey: cards[1]!.boxKey });
      expect(await store.registerCard(keyInUse, registerOptions({ supersedes }))).toEqual({ ok: false, reason: 'KEY_IN_USE' });
      expect((await store.getCard(supersedes))?.revokedAt).toBeNull();
      expect((await store.activeCards([alice])).get(alice)).toHaveLength(3);
    });

    it('holds the active-card limit under concurrent registrations', async () => {
      const alice = uid('alice');
      const results = await Promise.all(
        range(0, 10).map(() => store.registerCard(makeCard(alice), registerOptions({ maxActivePerIdentity: 3 }))),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(3);
      expect(results.filter((r) => !r.ok && r.reason === 'TOO_MANY_CARDS')).toHaveLength(7);
      expect((await store.activeCards([alice])).get(alice)).toHaveLength(3);
    });

    it('lets exactly one concurrent registration take a key or an id, across identities', async () => {
      const signKey = key();
      const byKey = await Promise.all(
        range(0, 8).map(() => store.registerCard(makeCard(uid('user'), { signKey }), registerOptions())),
      );
      expect(byKey.filter((r) => r.ok)).toHaveLength(1);
      expect(byKey.filter((r) => !r.ok && r.reason === 'KEY_IN_USE')).toHaveLength(7);

      const id = cardId();
      const byId = await Promise.all(
        range(0, 8).map(() => store.registerCard(makeCard(uid('user'), { id }), registerOptions())),
      );
      expect(byId.filter((r) => r.ok)).toHaveLength(1);
      expect(byId.filter((r) => !r.ok && r.reason === 'CARD_EXISTS')).toHaveLength(7);
    });

    it('lets exactly one of two concurrent replacements supersede the same card', async () => {
      const alice = uid('alice');
      const previous = makeCard(alice);
      const options = registerOptions({ maxActivePerIdentity: 1 });
      await store.registerCard(previous, options);
      const results = await Promise.all(
        [makeCard(alice), makeCard(alice)].map((card) => store.registerCard(card, { ...options, supersedes: previous.id })),
      );
      expect(results).toContainEqual({ ok: true, superseded: previous.id });
      expect(results).toContainEqual({ ok: false, reason: 'TOO_MANY_CARDS' });
      expect((await store.activeCards([alice])).get(alice)).toHaveLength(1);
    });
  });

  describe('card lookup and revocation', () => {
    it('lists active cards of several identities, oldest first, with a key for every asked identity', async () => {
      const alice = uid('alice');
      const bob = uid('bob');
      const unknown = uid('nobody');
      const aliceLater = makeCard(alice, { registeredAt: NOW + 10 });
      const aliceEarlier = makeCard(alice, { registeredAt: NOW + 5 });
      const aliceRevoked = makeCard(alice, { registeredAt: NOW });
      const bobFirst = makeCard(bob, { registeredAt: NOW });
      const bobSecond = makeCard(bob, { registeredAt: NOW }); // same second: registration order
      for (const card of [aliceLater, aliceEarlier, aliceRevoked, bobFirst, bobSecond]) {
        expect((await store.registerCard(card, registerOptions())).ok).toBe(true);
      }
      await store.revokeCard(aliceRevoked.id, NOW + 20);

      const active = await store.activeCards([alice, unknown, bob, alice]);
      expect([...active.keys()].sort()).toEqual([alice, bob, unknown].sort());
      expect(active.get(alice)).toEqual([aliceEarlier, aliceLater]);
      expect(active.get(bob)).toEqual([bobFirst, bobSecond]);
      expect(active.get(unknown)).toEqual([]);
      expect((await store.activeCards([])).size).toBe(0);
    });

    it('getCard returns revoked cards and null for unknown ids', async () => {
      const card = makeCard(uid('alice'));
      await store.registerCard(card, registerOptions());
      await store.revokeCard(card.id, NOW + 7);
      expect(await store.getCard(card.id)).toEqual({ ...card, revokedAt: NOW + 7 });
      expect(await store.getCard(uid('card'))).toBeNull();
    });

    it('revokeCard keeps the first revokedAt and returns null for unknown ids', async () => {
      const card = makeCard(uid('alice'));
      await store.registerCard(card, registerOptions());
      expect(await store.revokeCard(card.id, NOW + 7)).toEqual({ ...card, revokedAt: NOW + 7 });
      expect(await store.revokeCard(card.id, NOW + 50)).toEqual({ ...card, revokedAt: NOW + 7 });
      expect(await store.revokeCard(card.id, NOW + 1)).toEqual({ ...card, revokedAt: NOW + 7 });
      expect(await store.revokeCard(uid('card'), NOW)).toBeNull();
    });
  });

  describe('pending devices', () => {
    const pendingOf = (identity: string, overrides: Partial<PendingDeviceRecord> = {}): PendingDeviceRecord => ({
      cardId: uid('card'),
      identity,
      deviceName: 'tablet',
      signKey: key(),
      snapshot: `snapshot.${key()}`,
      selfSignature: key(),
      requestedAt: NOW,
      expiresAt: NOW + 900,
      status: 'pending',
      ...overrides,
    });
    const add = (record: PendingDeviceRecord, now = NOW, maxPerIdentity = 3) => store.addPendingDevice(record, { maxPerIdentity, now });

    it('registerCard with firstOnly refuses HAS_ACTIVE_CARDS once the identity has an active card, not after a revocation', async () => {
      const alice = uid('alice');
      const first = makeCard(alice);
      expect(await store.registerCard(first, registerOptions({ firstOnly: true }))).toEqual({ ok: true, superseded: null });
      expect(await store.registerCard(makeCard(alice), registerOptions({ firstOnly: true }))).toEqual({ ok: false, reason: 'HAS_ACTIVE_CARDS' });
      await store.revokeCard(first.id, NOW + 1);
      expect((await store.registerCard(makeCard(alice), registerOptions({ firstOnly: true }))).ok).toBe(true);
    });

    it('lets exactly one of concurrent firstOnly registrations of one identity through', async () => {
      const alice = uid('alice');
      const results = await Promise.all(range(0, 10).map(() => store.registerCard(makeCard(alice), registerOptions({ firstOnly: true }))));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });

    it('stores, gets and lists requests exactly; an added card id again returns the stored one', async () => {
      const alice = uid('alice');
      const a = pendingOf(alice, { deviceName: 'tablet \u{1F4F1} "x"' });
      const b = pendingOf(alice, { requestedAt: NOW + 1 });
      expect(await add(a)).toEqual(a);
      expect(await add(b)).toEqual(b);
      expect(await add({ ...a, requestedAt: NOW + 5 })).toEqual(a);
      expect(await store.getPendingDevice(a.cardId, NOW)).toEqual(a);
      expect(await store.pendingDevices(alice, NOW)).toEqual([a, b]);
      expect(await store.pendingDevices(uid('bob'), NOW)).toEqual([]);
      expect(await store.getPendingDevice(uid('card'), NOW)).toBeNull();
    });

    it('never returns expired requests, and drops them when the identity adds another', async () => {
      const alice = uid('alice');
      const old = pendingOf(alice, { expiresAt: NOW + 10 });
      await add(old);
      expect(await store.getPendingDevice(old.cardId, NOW + 10)).toBeNull();
      expect(await store.pendingDevices(alice, NOW + 10)).toEqual([]);
      expect(await store.takePendingDevice(old.cardId, alice, NOW + 10)).toBeNull();
      expect(await store.rejectPendingDevice(old.cardId, alice, NOW + 10)).toBeNull();
      for (let i = 0; i < 3; i++) expect(await add(pendingOf(alice), NOW + 10)).not.toBe('TOO_MANY_PENDING');
    });

    it('refuses past maxPerIdentity pending requests (TOO_MANY_PENDING); the same sign key replaces its earlier request', async () => {
      const alice = uid('alice');
      const first = pendingOf(alice);
      for (const record of [first, pendingOf(alice), pendingOf(alice)]) await add(record);
      expect(await add(pendingOf(alice))).toBe('TOO_MANY_PENDING');
      expect(await add(pendingOf(uid('bob')))).not.toBe('TOO_MANY_PENDING');
      const again = pendingOf(alice, { signKey: first.signKey });
      expect(await add(again)).toEqual(again);
      expect(await store.getPendingDevice(first.cardId, NOW)).toBeNull();
      expect(await store.pendingDevices(alice, NOW)).toHaveLength(3);
    });

    it('takes (removes) or rejects a pending request of its identity only, once', async () => {
      const alice = uid('alice');
      const taken = pendingOf(alice);
      const rejected = pendingOf(alice);
      await add(taken);
      await add(rejected);
      expect(await store.takePendingDevice(taken.cardId, uid('bob'), NOW)).toBeNull();
      expect(await store.rejectPendingDevice(rejected.cardId, uid('bob'), NOW)).toBeNull();
      expect(await store.takePendingDevice(taken.cardId, alice, NOW)).toEqual(taken);
      expect(await store.takePendingDevice(taken.cardId, alice, NOW)).toBeNull();
      expect(await store.getPendingDevice(taken.cardId, NOW)).toBeNull();
      expect(await store.rejectPendingDevice(rejected.cardId, alice, NOW)).toEqual({ ...rejected, status: 'rejected' });
      expect(await store.rejectPendingDevice(rejected.cardId, alice, NOW)).toBeNull();
      expect(await store.takePendingDevice(rejected.cardId, alice, NOW)).toBeNull();
      expect(await store.getPendingDevice(rejected.cardId, NOW)).toEqual({ ...rejected, status: 'rejected' });
      expect(await store.pendingDevices(alice, NOW)).toEqual([]);
    });

    it('lets exactly one of concurrent takes have the request', async () => {
      const alice = uid('alice');
      const record = pendingOf(alice);
      await add(record);
      const results = await Promise.all(range(0, 10).map(() => store.takePendingDevice(record.cardId, alice, NOW)));
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });
  });
}
