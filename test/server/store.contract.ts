/**
 * The one contract every Store implementation passes (server/store/types.ts), a file per concern
 * (store.contract.cards.ts, .relay.ts, .media.ts, .history.ts, .log.ts, .authorizations.ts; settings and the values that must round-trip
 * here). Each test makes its own ids, identities and conversations (store.fixtures.ts), so it
 * also holds on a store that already has data (the PostgreSQL suite shares one schema across the file).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../server/store/types.js';
import { authorizationContract } from './store.contract.authorizations.js';
import { cardContract } from './store.contract.cards.js';
import { historyContract } from './store.contract.history.js';
import { logContract } from './store.contract.log.js';
import { mediaContract } from './store.contract.media.js';
import { relayContract } from './store.contract.relay.js';
import { makeCard, makeConversation, makeHistory, makeMessage, makeParticipant, range, registerOptions, uid } from './store.fixtures.js';

export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

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

    cardContract(() => store);
    relayContract(() => store);
    mediaContract(() => store);
    historyContract(() => store);
    logContract(() => store);
    authorizationContract(() => store);

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
        const updated = await store.updateMessage(conversation.sid, ascii.sid, { body: big(`${awkward}!`) }, maxMs);
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
