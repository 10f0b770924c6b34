/** The HistoryStore contract: one record per message, replaced only by a newer version, and its pages. */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../server/store/types.js';
import { count, indexes, makeHistory, NOW_MS, range, uid } from './store.fixtures.js';

/** Registered inside storeContract (test/server/store.contract.ts), which opens and closes `current()` around each test. */
export function historyContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  describe('history', () => {
    it('is idempotent on (conversationSid, messageSid) for one version: created, then exists, first record kept', async () => {
      const conversationSid = uid('CH');
      const record = makeHistory(conversationSid, 0);
      expect(await store.putHistory(record)).toBe('created');
      expect(await store.putHistory(record)).toBe('exists');
      expect(await store.putHistory({ ...record, envelope: 'other', storedAtMs: NOW_MS + 1 })).toBe('exists');
      expect(await store.history(conversationSid, -1, 10)).toEqual([record]);
      expect(await store.getHistory(conversationSid, record.messageSid)).toEqual(record);

      // The same message sid in another conversation is another record.
      const elsewhere = { ...record, conversationSid: uid('CH') };
      expect(await store.getHistory(elsewhere.conversationSid, record.messageSid)).toBeNull();
      expect(await store.putHistory(elsewhere)).toBe('created');
    });

    it('replaces a record with a newer version of the message (a higher editN) only', async () => {
      const conversationSid = uid('CH');
      const original = makeHistory(conversationSid, 4);
      const edit = (editN: number) => ({ ...original, envelope: `edit ${editN}`, orgWrap: `wrap ${editN}`, senderCardId: `card-${editN}`, storedAtMs: NOW_MS + editN, editN });
      expect(await store.putHistory(original)).toBe('created');
      expect(await store.putHistory(edit(2))).toBe('replaced');
      expect(await store.history(conversationSid, -1, 10)).toEqual([edit(2)]);

      // An older or equal version never rolls it back, whatever else it carries.
      expect(await store.putHistory(edit(1))).toBe('exists');
      expect(await store.putHistory({ ...edit(2), envelope: 'another edit 2' })).toBe('exists');
      expect(await store.putHistory(original)).toBe('exists');
      expect(await store.getHistory(conversationSid, original.messageSid)).toEqual(edit(2));

      expect(await store.putHistory(edit(3))).toBe('replaced');
      expect(await store.history(conversationSid, -1, 10)).toEqual([edit(3)]);
      // A removal deletes whatever version is stored; then any version is new again.
      expect(await store.deleteHistory(conversationSid, original.messageSid)).toBe(true);
      expect(await store.putHistory(edit(1))).toBe('created');
    });

    it('keeps an edit counter up to 2^53 - 1', async () => {
      const record = makeHistory(uid('CH'), 0, { editN: Number.MAX_SAFE_INTEGER });
      expect(await store.putHistory(record)).toBe('created');
      expect(await store.getHistory(record.conversationSid, record.messageSid)).toEqual(record);
      expect(await store.putHistory({ ...record, editN: Number.MAX_SAFE_INTEGER - 1, envelope: 'older' })).toBe('exists');
    });

    // [outcome of version 1, outcome of version 2]: version 1 lands only when it comes first, version 2 always.
    const landings = {
      'no copy yet': [['created', 'replaced'], ['exists', 'created']],
      'the original stored': [['replaced', 'replaced'], ['exists', 'replaced']],
    };
    describe.each(Object.entries(landings))('with %s', (start, possible) => {
      it.each([[[1, 2]], [[2, 1]]])('ends with version 2 stored when versions %j are put concurrently', async (order) => {
        const original = makeHistory(uid('CH'), 0);
        if (start === 'the original stored') await store.putHistory(original);
        const version = (editN: number) => ({ ...original, envelope: `version ${editN}`, editN });
        const outcomes = await Promise.all(order.map((n) => store.putHistory(version(n))));
        expect(possible).toContainEqual([outcomes[order.indexOf(1)], outcomes[order.indexOf(2)]]);
        expect(await store.history(original.conversationSid, -1, 10)).toEqual([version(2)]);
      });
    });

    it('ends with the highest of 20 versions put concurrently, whatever the order', async () => {
      const original = makeHistory(uid('CH'), 0);
      await store.putHistory(original);
      const versions = range(1, 21).sort(() => Math.random() - 0.5);
      const outcomes = await Promise.all(versions.map((editN) => store.putHistory({ ...original, envelope: `version ${editN}`, editN })));
      expect(outcomes).not.toContain('created');
      expect(outcomes[versions.indexOf(20)]).toBe('replaced');
      expect(await store.getHistory(original.conversationSid, original.messageSid)).toEqual({ ...original, envelope: 'version 20', editN: 20 });
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

    it("deletes one message's record and no other", async () => {
      const conversationSid = uid('CH');
      const [a, b] = [makeHistory(conversationSid, 0), makeHistory(conversationSid, 1)];
      await store.putHistory(a);
      await store.putHistory(b);
      expect(await store.deleteHistory(conversationSid, a.messageSid)).toBe(true);
      expect(await store.deleteHistory(conversationSid, a.messageSid)).toBe(false);
      expect(await store.deleteHistory(uid('CH'), b.messageSid)).toBe(false);
      expect(await store.history(conversationSid, -1, 10)).toEqual([b]);
    });
  });
}
