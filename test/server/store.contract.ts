/**
 * The one contract every Store implementation passes (server/store/types.ts). Each test makes its
 * own ids, identities and conversations, so it also holds on a store that already has data (the
 * PostgreSQL suite shares one schema across the file).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  HistoryRecord,
  PendingDeviceRecord,
  RegisterCardOptions,
  RelayConversation,
  RelayMessage,
  RelayParticipant,
  Store,
  StoredCard,
} from '../../server/store/types.js';

const NOW = 1_700_000_000; // unix seconds
const NOW_MS = NOW * 1000;

export const uid = (prefix: string): string => `${prefix}-${randomUUID()}`;
const key = (): string => randomBytes(32).toString('base64url');

export function makeCard(identity: string, overrides: Partial<StoredCard> = {}): StoredCard {
  return {
    id: uid('card'),
    identity,
    deviceId: uid('device'),
    signKey: key(),
    boxKey: key(),
    snapshot: `snapshot.${key()}`,
    selfSignature: key(),
    appSignature: key(),
    appKeyId: 'app-key-1',
    createdAt: NOW,
    registeredAt: NOW,
    revokedAt: null,
    ...overrides,
  };
}

export const registerOptions = (overrides: Partial<RegisterCardOptions> = {}): RegisterCardOptions => ({
  maxActivePerIdentity: 5,
  now: NOW + 60,
  ...overrides,
});

export function makeConversation(overrides: Partial<RelayConversation> = {}): RelayConversation {
  return {
    sid: uid('CH'),
    uniqueName: uid('room'),
    friendlyName: 'Support',
    attributes: '{"topic":"billing"}',
    createdBy: 'alice',
    dateCreatedMs: NOW_MS,
    ...overrides,
  };
}

export function makeMessage(conversationSid: string, overrides: Partial<RelayMessage> = {}) {
  return { sid: uid('IM'), conversationSid, author: 'alice', body: 'hello', attributes: '{}', dateCreatedMs: NOW_MS, ...overrides };
}

function makeParticipant(conversationSid: string, identity: string, overrides: Partial<RelayParticipant> = {}) {
  return { sid: uid('MB'), conversationSid, identity, attributes: '{}', dateCreatedMs: NOW_MS, ...overrides };
}

function makeHistory(conversationSid: string, index: number, overrides: Partial<HistoryRecord> = {}): HistoryRecord {
  return {
    conversationSid,
    messageSid: uid('IM'),
    index,
    author: 'alice',
    senderCardId: uid('card'),
    envelope: `envelope.${key()}`,
    orgWrap: `wrap.${key()}`,
    storedAtMs: NOW_MS,
    ...overrides,
  };
}

const indexes = (messages: readonly { index: number }[]): number[] => messages.map((m) => m.index);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const count = <T>(values: readonly T[], value: T): number => values.filter((v) => v === value).length;

export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    async function newConversation(): Promise<RelayConversation> {
      const conversation = await store.createConversation(makeConversation());
      if (!conversation) throw new Error('conversation not created');
      return conversation;
    }

    async function conversationWithMessages(n: number): Promise<string> {
      const { sid } = await newConversation();
      for (let i = 0; i < n; i++) await store.appendMessage(makeMessage(sid, { body: `m${i}` }));
      return sid;
    }

    describe('ping and close', () => {
      it('pings, closes twice without error, and rejects calls after close', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        expect(['sqlite', 'postgres']).toContain(store.kind);
        await store.close();
        await store.close();
        await expect(store.ping()).rejects.toThrow();
        await expect(store.getSetting('x')).rejects.toThrow();
      });
    });

    describe('settings', () => {
      it('returns null for an unknown key', async () => {
        expect(await store.getSetting(uid('setting'))).toBeNull();
      });

      it('keeps the first value written (first writer wins)', async () => {
        const k = uid('setting');
        expect(await store.putSettingIfAbsent(k, 'first')).toBe('first');
        expect(await store.putSettingIfAbsent(k, 'second')).toBe('first');
        expect(await store.getSetting(k)).toBe('first');
      });

      it('gives every concurrent writer the one stored value', async () => {
        const k = uid('setting');
        const results = await Promise.all(range(0, 20).map((i) => store.putSettingIfAbsent(k, `value-${i}`)));
        const stored = await store.getSetting(k);
        expect(stored).toMatch(/^value-\d+$/);
        expect(results).toEqual(results.map(() => stored));
      });
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

        const id = uid('card');
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

    describe('conversations', () => {
      it('creates and finds a conversation by sid and by uniqueName', async () => {
        const conversation = makeConversation();
        expect(await store.createConversation(conversation)).toEqual(conversation);
        expect(await store.getConversation(conversation.sid)).toEqual(conversation);
        expect(await store.getConversation(conversation.uniqueName!)).toEqual(conversation);
        expect(await store.getConversation(uid('CH'))).toBeNull();
      });

      it('stores null uniqueName and friendlyName, for several conversations', async () => {
        const a = makeConversation({ uniqueName: null, friendlyName: null });
        const b = makeConversation({ uniqueName: null, friendlyName: null });
        expect(await store.createConversation(a)).toEqual(a);
        expect(await store.createConversation(b)).toEqual(b);
        expect(await store.getConversation(b.sid)).toEqual(b);
      });

      it('returns null for a taken sid or uniqueName and keeps the first', async () => {
        const conversation = makeConversation();
        await store.createConversation(conversation);
        expect(await store.createConversation(makeConversation({ sid: conversation.sid }))).toBeNull();
        expect(await store.createConversation(makeConversation({ uniqueName: conversation.uniqueName }))).toBeNull();
        expect(await store.getConversation(conversation.sid)).toEqual(conversation);
      });

      it('prefers a sid over another conversation whose uniqueName equals it', async () => {
        const target = makeConversation();
        const impostor = makeConversation({ uniqueName: target.sid });
        await store.createConversation(impostor);
        await store.createConversation(target);
        expect(await store.getConversation(target.sid)).toEqual(target);
      });

      it('lists the conversations an identity takes part in, oldest first', async () => {
        const alice = uid('alice');
        const later = makeConversation({ dateCreatedMs: NOW_MS + 10 });
        const earlier = makeConversation({ dateCreatedMs: NOW_MS });
        const left = makeConversation();
        const others = makeConversation();
        for (const c of [later, earlier, left, others]) await store.createConversation(c);
        for (const c of [later, earlier, left]) await store.addParticipant(makeParticipant(c.sid, alice));
        await store.addParticipant(makeParticipant(others.sid, uid('bob')));
        await store.removeParticipant(left.sid, alice);

        expect(await store.conversationsOf(alice)).toEqual([earlier, later]);
        expect(await store.conversationsOf(uid('nobody'))).toEqual([]);
      });
    });

    describe('participants', () => {
      it('adds once (created), then returns the existing participant', async () => {
        const { sid } = await newConversation();
        const first = makeParticipant(sid, 'alice');
        expect(await store.addParticipant(first)).toEqual({ participant: first, created: true });
        const again = makeParticipant(sid, 'alice', { dateCreatedMs: NOW_MS + 5 });
        expect(await store.addParticipant(again)).toEqual({ participant: first, created: false });
        expect(await store.participants(sid)).toEqual([first]);
      });

      it('lists, checks and removes participants', async () => {
        const { sid } = await newConversation();
        const alice = makeParticipant(sid, 'alice');
        const bob = makeParticipant(sid, 'bob', { dateCreatedMs: NOW_MS + 1 });
        const carol = makeParticipant(sid, 'carol', { dateCreatedMs: NOW_MS + 1 }); // same ms: order added
        for (const p of [alice, bob, carol]) await store.addParticipant(p);

        expect(await store.participants(sid)).toEqual([alice, bob, carol]);
        expect(await store.isParticipant(sid, 'bob')).toBe(true);
        expect(await store.isParticipant(sid, 'dave')).toBe(false);
        expect(await store.isParticipant(uid('CH'), 'bob')).toBe(false);

        expect(await store.removeParticipant(sid, 'bob')).toEqual(bob);
        expect(await store.removeParticipant(sid, 'bob')).toBeNull();
        expect(await store.isParticipant(sid, 'bob')).toBe(false);
        expect(await store.participants(sid)).toEqual([alice, carol]);
        expect(await store.participants(uid('CH'))).toEqual([]);

        const back = makeParticipant(sid, 'bob', { dateCreatedMs: NOW_MS + 9 });
        expect(await store.addParticipant(back)).toEqual({ participant: back, created: true });
      });

      it('creates exactly one participant under concurrent adds of the same identity', async () => {
        const { sid } = await newConversation();
        const results = await Promise.all(range(0, 10).map(() => store.addParticipant(makeParticipant(sid, 'alice'))));
        expect(count(results.map((r) => r.created), true)).toBe(1);
        expect(new Set(results.map((r) => r.participant.sid)).size).toBe(1);
      });

      it('rejects a participant of an unknown conversation', async () => {
        await expect(store.addParticipant(makeParticipant(uid('CH'), 'alice'))).rejects.toThrow();
      });

      it('stores attributes as given, and replaces only that participant\'s', async () => {
        const { sid } = await newConversation();
        const alice = makeParticipant(sid, 'alice', { attributes: '{"status":"away"}' });
        const bob = makeParticipant(sid, 'bob');
        for (const p of [alice, bob]) await store.addParticipant(p);
        expect(await store.updateParticipantAttributes(sid, 'alice', '{"revoked":["c1"]}')).toEqual({ ...alice, attributes: '{"revoked":["c1"]}' });
        expect(await store.participants(sid)).toEqual([{ ...alice, attributes: '{"revoked":["c1"]}' }, bob]);
        expect(await store.updateParticipantAttributes(sid, 'dave', '{}')).toBeNull();
        expect(await store.updateParticipantAttributes(uid('CH'), 'alice', '{}')).toBeNull();
      });
    });

    describe('messages', () => {
      it('appends with indexes 0, 1, 2 per conversation and reads them back', async () => {
        const { sid } = await newConversation();
        const { sid: otherSid } = await newConversation();
        const input = makeMessage(sid, { body: 'first', attributes: '{"a":1}', dateCreatedMs: NOW_MS + 3 });
        const first = await store.appendMessage(input);
        expect(first).toEqual({ ...input, index: 0, dateUpdatedMs: null });
        expect((await store.appendMessage(makeMessage(sid))).index).toBe(1);
        expect((await store.appendMessage(makeMessage(otherSid))).index).toBe(0);
        expect((await store.appendMessage(makeMessage(sid))).index).toBe(2);

        expect(await store.getMessage(sid, input.sid)).toEqual(first);
        expect(await store.getMessage(otherSid, input.sid)).toBeNull();
        expect(await store.getMessage(sid, uid('IM'))).toBeNull();
      });

      it('assigns gap-free indexes under 50 concurrent appends', async () => {
        const { sid } = await newConversation();
        const appended = await Promise.all(range(0, 50).map((i) => store.appendMessage(makeMessage(sid, { body: `m${i}` }))));
        expect(indexes(appended).sort((a, b) => a - b)).toEqual(range(0, 50));
        const stored = await store.messages(sid, { direction: 'forward', limit: 100 });
        expect(indexes(stored)).toEqual(range(0, 50));
        expect(stored).toEqual([...appended].sort((a, b) => a.index - b.index));
      });

      it('rejects an append to an unknown conversation', async () => {
        await expect(store.appendMessage(makeMessage(uid('CH')))).rejects.toThrow();
      });

      it('pages forward and backwards, with and without an anchor, always ascending', async () => {
        const sid = await conversationWithMessages(10);
        const page = async (direction: 'forward' | 'backwards', limit: number, anchor?: number) =>
          indexes(await store.messages(sid, anchor === undefined ? { direction, limit } : { direction, limit, anchor }));

        expect(await page('forward', 3)).toEqual([0, 1, 2]);
        expect(await page('forward', 3, 4)).toEqual([4, 5, 6]);
        expect(await page('forward', 5, 8)).toEqual([8, 9]);
        expect(await page('forward', 5, 10)).toEqual([]);
        expect(await page('backwards', 3)).toEqual([7, 8, 9]);
        expect(await page('backwards', 3, 4)).toEqual([2, 3, 4]);
        expect(await page('backwards', 5, 1)).toEqual([0, 1]);
        expect(await page('backwards', 2, 100)).toEqual([8, 9]);
        expect(await page('forward', 100)).toEqual(range(0, 10));
        expect(await page('backwards', 100)).toEqual(range(0, 10));
        expect(await page('forward', 0)).toEqual([]);
        expect(await page('backwards', 0, 5)).toEqual([]);
        expect(await store.messages(uid('CH'), { direction: 'backwards', limit: 10 })).toEqual([]);
      });

      it('walks a conversation backwards page by page, as a client loading older messages does', async () => {
        const sid = await conversationWithMessages(10);
        const seen: number[] = [];
        let anchor: number | undefined;
        for (;;) {
          const query = { direction: 'backwards' as const, limit: 3 };
          const pageMessages = await store.messages(sid, anchor === undefined ? query : { ...query, anchor });
          if (pageMessages.length === 0) break;
          seen.unshift(...indexes(pageMessages));
          anchor = pageMessages[0]!.index - 1;
          if (anchor < 0) break;
        }
        expect(seen).toEqual(range(0, 10));
      });

      it('updates a body, sets dateUpdatedMs and keeps the index', async () => {
        const { sid } = await newConversation();
        await store.appendMessage(makeMessage(sid));
        const message = await store.appendMessage(makeMessage(sid, { body: 'before' }));
        const updated = await store.updateMessageBody(sid, message.sid, 'after', NOW_MS + 500);
        expect(updated).toEqual({ ...message, body: 'after', dateUpdatedMs: NOW_MS + 500 });
        expect(await store.getMessage(sid, message.sid)).toEqual(updated);
        expect(await store.updateMessageBody(sid, uid('IM'), 'x', NOW_MS)).toBeNull();
        expect(await store.updateMessageBody(uid('CH'), message.sid, 'x', NOW_MS)).toBeNull();
      });
    });

    describe('history', () => {
      it('is idempotent on (conversationSid, messageSid): created, then exists, first record kept', async () => {
        const conversationSid = uid('CH');
        const record = makeHistory(conversationSid, 0);
        expect(await store.putHistory(record)).toBe('created');
        expect(await store.putHistory(record)).toBe('exists');
        expect(await store.putHistory({ ...record, envelope: 'other', storedAtMs: NOW_MS + 1 })).toBe('exists');
        expect(await store.history(conversationSid, -1, 10)).toEqual([record]);

        // The same message sid in another conversation is another record.
        const elsewhere = { ...record, conversationSid: uid('CH') };
        expect(await store.putHistory(elsewhere)).toBe('created');
      });

      it('gives exactly one created among 20 concurrent duplicate puts', async () => {
        const record = makeHistory(uid('CH'), 3);
        const results = await Promise.all(range(0, 20).map(() => store.putHistory({ ...record })));
        expect(count(results, 'created')).toBe(1);
        expect(count(results, 'exists')).toBe(19);
        expect(await store.history(record.conversationSid, -1, 100)).toEqual([record]);
      });

      it('reads records after an index, ascending, at most limit', async () => {
        const conversationSid = uid('CH');
        const records = [5, 1, 3, 2, 4, 0].map((i) => makeHistory(conversationSid, i));
        for (const record of records) await store.putHistory(record);
        await store.putHistory(makeHistory(uid('CH'), 2)); // another conversation

        const byIndex = [...records].sort((a, b) => a.index - b.index);
        expect(await store.history(conversationSid, -1, 100)).toEqual(byIndex);
        expect(indexes(await store.history(conversationSid, 2, 2))).toEqual([3, 4]);
        expect(indexes(await store.history(conversationSid, 4, 10))).toEqual([5]);
        expect(await store.history(conversationSid, 5, 10)).toEqual([]);
        expect(await store.history(conversationSid, -1, 0)).toEqual([]);
        expect(await store.history(uid('CH'), -1, 10)).toEqual([]);

        const walked: number[] = [];
        for (let after = -1; ; ) {
          const page = await store.history(conversationSid, after, 4);
          if (page.length === 0) break;
          walked.push(...indexes(page));
          after = page[page.length - 1]!.index;
        }
        expect(walked).toEqual(range(0, 6));
      });
    });

    describe('values round-trip exactly', () => {
      const awkward = `héllo wörld ✓ 你好 مرحبا 🔐👩🏽‍💻 e\u0301 "quotes" 'single' \\back\\ \n\t\r ; DROP TABLE cards; --`;
      const big = (seed: string): string => seed.repeat(Math.ceil(65_536 / seed.length)).slice(0, 65_536);

      it('in settings and cards', async () => {
        const k = uid(awkward);
        expect(await store.putSettingIfAbsent(k, big(awkward))).toBe(big(awkward));
        expect(await store.getSetting(k)).toBe(big(awkward));

        const card = makeCard(uid(awkward), {
          deviceId: awkward,
          snapshot: big('eyJ2IjoxfQ'),
          appKeyId: awkward,
          createdAt: 4_102_444_800, // year 2100: beyond 32-bit seconds
          registeredAt: 4_102_444_801,
        });
        await store.registerCard(card, registerOptions({ now: 4_102_444_900 }));
        expect(await store.getCard(card.id)).toEqual(card);
        expect((await store.activeCards([card.identity])).get(card.identity)).toEqual([card]);
        expect(await store.revokeCard(card.id, 4_102_444_900)).toEqual({ ...card, revokedAt: 4_102_444_900 });
      });

      it('in conversations, participants and 64 KB message bodies', async () => {
        const maxMs = 8_640_000_000_000_000; // the largest JS Date, still a safe integer
        const conversation = makeConversation({
          uniqueName: uid(awkward),
          friendlyName: awkward,
          attributes: JSON.stringify({ note: awkward }),
          createdBy: awkward,
          dateCreatedMs: maxMs,
        });
        expect(await store.createConversation(conversation)).toEqual(conversation);
        expect(await store.getConversation(conversation.uniqueName!)).toEqual(conversation);

        const participant = makeParticipant(conversation.sid, awkward, { dateCreatedMs: maxMs });
        await store.addParticipant(participant);
        expect(await store.participants(conversation.sid)).toEqual([participant]);
        expect(await store.isParticipant(conversation.sid, awkward)).toBe(true);
        expect(await store.conversationsOf(awkward)).toContainEqual(conversation);

        const ascii = makeMessage(conversation.sid, { body: big('x'), author: awkward, dateCreatedMs: maxMs });
        const unicode = makeMessage(conversation.sid, { body: big(awkward), attributes: JSON.stringify({ a: awkward }) });
        for (const input of [ascii, unicode]) {
          const stored = await store.appendMessage(input);
          expect(stored.body).toHaveLength(65_536);
          expect(await store.getMessage(conversation.sid, input.sid)).toEqual({ ...input, index: stored.index, dateUpdatedMs: null });
        }
        const updated = await store.updateMessageBody(conversation.sid, ascii.sid, big(`${awkward}!`), maxMs);
        expect(updated?.body).toBe(big(`${awkward}!`));
        expect(updated?.dateUpdatedMs).toBe(maxMs);
      });

      it('in history records', async () => {
        const record = makeHistory(uid('CH'), 2_147_483_648, {
          author: awkward,
          envelope: big(awkward),
          orgWrap: big('wrap'),
          storedAtMs: Date.now(),
        });
        await store.putHistory(record);
        expect(await store.history(record.conversationSid, 2_147_483_647, 1)).toEqual([record]);
      });
    });
  });
}

