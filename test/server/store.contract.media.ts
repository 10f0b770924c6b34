/** The MediaStore contract, and media attached to messages (appendMediaMessage, removeMessage). */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { NewRelayMedia, Store } from '../../server/store/types.js';
import { makeConversation, makeMessage, NOW_MS, uid } from './store.fixtures.js';

const mediaSid = (): string => `ME${randomBytes(16).toString('hex')}`;

/** The bytes in uneven pieces, as a socket hands them over. */
async function* pieces(bytes: Buffer, size = 100_003): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function readAll(content: AsyncIterable<Uint8Array> | null): Promise<Buffer | null> {
  if (content === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Registered inside storeContract (test/server/store.contract.ts). */
export function mediaContract(current: () => Store): void {
  let store: Store;
  let conversationSid: string;
  const upload = (overrides: Partial<NewRelayMedia> = {}): NewRelayMedia => ({
    sid: mediaSid(),
    conversationSid,
    uploader: 'alice',
    filename: `${'0'.repeat(32)}.bin`,
    contentType: 'application/octet-stream',
    dateCreatedMs: NOW_MS,
    ...overrides,
  });

  beforeEach(async () => {
    store = current();
    conversationSid = (await store.createConversation(makeConversation()))!.sid;
  });

  describe('media', () => {
    it('stores a blob streamed in pieces and gives back the same bytes (several MB, empty)', async () => {
      const bytes = randomBytes(2_500_000);
      const record = upload({ filename: null, contentType: 'image/png' });
      const stored = await store.putMedia(record, pieces(bytes));
      expect(stored).toEqual({ ...record, size: bytes.length, messageSid: null });
      expect(await store.getMedia(record.sid)).toEqual(stored);
      expect(await readAll(await store.readMedia(record.sid))).toEqual(bytes);

      const empty = upload();
      expect((await store.putMedia(empty, pieces(Buffer.alloc(0)))).size).toBe(0);
      expect(await readAll(await store.readMedia(empty.sid))).toEqual(Buffer.alloc(0));
      expect(await store.getMedia(mediaSid())).toBeNull();
      expect(await store.readMedia(mediaSid())).toBeNull();
      expect(await store.readMedia('../twilio-e2ee.sqlite')).toBeNull();
    });

    it('keeps nothing of an upload whose content fails, and counts unattached bytes per uploader', async () => {
      const uploader = uid('uploader');
      await store.putMedia(upload({ uploader }), pieces(randomBytes(1000)));
      const failing = upload({ uploader });
      async function* broken(): AsyncIterable<Uint8Array> {
        yield randomBytes(1_500_000);
        throw new Error('the client went away');
      }
      await expect(store.putMedia(failing, broken())).rejects.toThrow('the client went away');
      expect(await store.getMedia(failing.sid)).toBeNull();
      expect(await store.readMedia(failing.sid)).toBeNull();
      expect(await store.unattachedMediaBytes(uploader)).toBe(1000);
      expect(await store.unattachedMediaBytes(uid('nobody'))).toBe(0);
    });

    it('attaches the uploader\'s own unattached blobs to a message, in order, once', async () => {
      const a = await store.putMedia(upload(), pieces(randomBytes(10)));
      const b = await store.putMedia(upload({ filename: 'b.bin' }), pieces(randomBytes(20)));
      const message = await store.appendMediaMessage(makeMessage(conversationSid), [b.sid, a.sid]);
      expect(message!.media).toEqual([b, a].map(({ sid, filename, contentType, size }) => ({ sid, filename, contentType, size })));
      expect(await store.getMessage(conversationSid, message!.sid)).toEqual(message);
      expect((await store.getMedia(a.sid))!.messageSid).toBe(message!.sid);

      // Attached already, someone else's, another conversation's, unknown: nothing is appended.
      const other = (await store.createConversation(makeConversation()))!.sid;
      const bobs = await store.putMedia(upload({ uploader: 'bob' }), pieces(randomBytes(5)));
      const elsewhere = await store.putMedia(upload({ conversationSid: other }), pieces(randomBytes(5)));
      const fresh = await store.putMedia(upload(), pieces(randomBytes(5)));
      for (const sids of [[fresh.sid, a.sid], [bobs.sid], [elsewhere.sid], [mediaSid()], [fresh.sid, fresh.sid]]) {
        expect(await store.appendMediaMessage(makeMessage(conversationSid), sids)).toBeNull();
      }
      expect(await store.countMessagesAfter(conversationSid, -1)).toBe(1);
      expect((await store.getMedia(fresh.sid))!.messageSid).toBeNull();
      // A message without media lists none.
      expect((await store.appendMediaMessage(makeMessage(conversationSid), []))!.media).toBeUndefined();
    });

    it('removing a message removes its blobs', async () => {
      const a = await store.putMedia(upload(), pieces(randomBytes(300)));
      const message = await store.appendMediaMessage(makeMessage(conversationSid), [a.sid]);
      await store.removeMessage(conversationSid, message!.sid);
      expect(await store.getMedia(a.sid)).toBeNull();
      expect(await store.readMedia(a.sid)).toBeNull();
    });

    it('sweeps blobs never attached from before the cutoff, not attached or newer ones', async () => {
      const old = await store.putMedia(upload({ dateCreatedMs: NOW_MS - 10 }), pieces(randomBytes(10)));
      const oldAttached = await store.putMedia(upload({ dateCreatedMs: NOW_MS - 10 }), pieces(randomBytes(10)));
      await store.appendMediaMessage(makeMessage(conversationSid), [oldAttached.sid]);
      const recent = await store.putMedia(upload({ dateCreatedMs: NOW_MS }), pieces(randomBytes(10)));
      expect(await store.sweepMedia(NOW_MS)).toBeGreaterThanOrEqual(1);
      expect(await store.getMedia(old.sid)).toBeNull();
      expect(await store.readMedia(old.sid)).toBeNull();
      expect(await store.getMedia(oldAttached.sid)).not.toBeNull();
      expect(await readAll(await store.readMedia(recent.sid))).toHaveLength(10);
    });
  });
}
