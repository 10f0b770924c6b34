/** The RelayStore contract: conversations, participants, messages and their indexes. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { RelayConversation, Store } from '../../server/store/types.js';
import { count, indexes, makeConversation, makeMessage, makeParticipant, NOW_MS, range, uid } from './store.fixtures.js';

/** Registered inside storeContract (test/server/store.contract.ts), which opens and closes `current()` around each test. */
export function relayContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
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

    it('updates a body or attributes, sets dateUpdatedMs and keeps the index and the other field', async () => {
      const { sid } = await newConversation();
      await store.appendMessage(makeMessage(sid));
      const message = await store.appendMessage(makeMessage(sid, { body: 'before', attributes: '{"a":1}' }));
      const updated = await store.updateMessage(sid, message.sid, { body: 'after' }, NOW_MS + 500);
      expect(updated).toEqual({ ...message, body: 'after', dateUpdatedMs: NOW_MS + 500 });
      expect(await store.getMessage(sid, message.sid)).toEqual(updated);
      const retagged = await store.updateMessage(sid, message.sid, { attributes: '{"b":2}' }, NOW_MS + 600);
      expect(retagged).toEqual({ ...message, body: 'after', attributes: '{"b":2}', dateUpdatedMs: NOW_MS + 600 });
      expect(await store.updateMessage(sid, uid('IM'), { body: 'x' }, NOW_MS)).toBeNull();
      expect(await store.updateMessage(uid('CH'), message.sid, { body: 'x' }, NOW_MS)).toBeNull();
    });

    it('removes a message: gone from pages and counts, its index not reused', async () => {
      const sid = await conversationWithMessages(3);
      const [, middle] = await store.messages(sid, { direction: 'forward', limit: 10 });
      expect(await store.removeMessage(sid, middle!.sid)).toEqual(middle);
      expect(await store.removeMessage(sid, middle!.sid)).toBeNull();
      expect(await store.removeMessage(uid('CH'), middle!.sid)).toBeNull();
      expect(await store.getMessage(sid, middle!.sid)).toBeNull();
      expect(indexes(await store.messages(sid, { direction: 'forward', limit: 10 }))).toEqual([0, 2]);
      expect((await store.appendMessage(makeMessage(sid))).index).toBe(3);
      expect(await store.countMessagesAfter(sid, -1)).toBe(3);
      expect(await store.countMessagesAfter(sid, 0)).toBe(2);
      expect(await store.countMessagesAfter(sid, 3)).toBe(0);
      expect(await store.countMessagesAfter(uid('CH'), -1)).toBe(0);
    });
  });

  describe('conversation updates and read horizons', () => {
    it('updates friendlyName and attributes, each alone, friendlyName to null too', async () => {
      const conversation = await newConversation();
      const renamed = await store.updateConversation(conversation.sid, { friendlyName: 'renamed' });
      expect(renamed).toEqual({ ...conversation, friendlyName: 'renamed' });
      const tagged = await store.updateConversation(conversation.sid, { attributes: '{"topic":"x"}' });
      expect(tagged).toEqual({ ...conversation, friendlyName: 'renamed', attributes: '{"topic":"x"}' });
      expect(await store.updateConversation(conversation.sid, { friendlyName: null })).toEqual({ ...tagged, friendlyName: null });
      expect(await store.getConversation(conversation.sid)).toEqual({ ...tagged, friendlyName: null });
      expect(await store.updateConversation(uid('CH'), { friendlyName: 'x' })).toBeNull();
    });

    it("sets and clears a participant's read horizon, for that participant only", async () => {
      const { sid } = await newConversation();
      const alice = makeParticipant(sid, uid('alice'));
      const bob = makeParticipant(sid, uid('bob'));
      await store.addParticipant(alice);
      await store.addParticipant(bob);
      expect(await store.setLastReadMessageIndex(sid, alice.identity, 7)).toEqual({ ...alice, lastReadMessageIndex: 7 });
      expect(await store.participants(sid)).toEqual([{ ...alice, lastReadMessageIndex: 7 }, bob]);
      expect(await store.getParticipant(sid, alice.identity)).toEqual({ ...alice, lastReadMessageIndex: 7 });
      expect(await store.getParticipant(sid, uid('nobody'))).toBeNull();
      expect(await store.setLastReadMessageIndex(sid, alice.identity, null)).toEqual(alice);
      expect(await store.setLastReadMessageIndex(sid, uid('nobody'), 1)).toBeNull();
    });
  });
}
