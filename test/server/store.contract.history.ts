/** The HistoryStore contract: idempotent backups and their pages. */
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
