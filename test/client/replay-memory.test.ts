/**
 * The replay memory's version record (docs/PROTOCOL.md 5.5 check 17): versions ordered by their
 * edit counter, then their signed sentAt; edits bound to the original and signed by its author;
 * the memory written by earlier releases (a bare sentAt per message) still read; and its window:
 * the latest REPLAY_WINDOW_MESSAGES messages per conversation, kept across reloads.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKeyStore } from '../../client/index.js';
import { ReplayMemory, type Sighting } from '../../client/replay-memory.js';
import { REPLAY_WINDOW_MESSAGES } from '../../shared/limits.js';

const ORIGINAL = 'a'.repeat(32);
const id = (n: number) => n.toString(16).padStart(32, '0');
const sighting = (over: Partial<Sighting>): Sighting => ({ messageId: ORIGINAL, messageSid: 'IM1', index: 0, sentAt: 1000, original: ORIGINAL, edit: 0, signer: 'alice', bound: true, ...over });

describe('ReplayMemory versions', () => {
  it('orders versions by counter first, then sentAt', async () => {
    const memory = new ReplayMemory(new MemoryKeyStore(), 'bob');
    expect(await memory.admit('CH1', sighting({}))).toBeNull();
    expect(await memory.admit('CH1', sighting({ messageId: id(1), edit: 1, sentAt: 5000 }))).toBeNull();
    expect(await memory.admit('CH1', sighting({ messageId: id(2), edit: 2, sentAt: 4000 }))).toBeNull(); // a slower clock, a newer edit
    expect(await memory.admit('CH1', sighting({ messageId: id(1), edit: 1, sentAt: 5000 }))).toBe('ENVELOPE_ROLLBACK');
    expect(await memory.admit('CH1', sighting({ messageId: id(3), edit: 2, sentAt: 3999 }))).toBe('ENVELOPE_ROLLBACK');
    expect(await memory.admit('CH1', sighting({ messageId: id(2), edit: 2, sentAt: 4000 }))).toBeNull(); // the same version again
  });

  it('refuses an edit bound to another original, or signed by another identity', async () => {
    const memory = new ReplayMemory(new MemoryKeyStore(), 'bob');
    await memory.admit('CH1', sighting({}));
    expect(await memory.admit('CH1', sighting({ messageId: id(1), edit: 1, original: 'b'.repeat(32) }))).toBe('ENVELOPE_EDIT_MISMATCH');
    expect(await memory.admit('CH1', sighting({ messageId: id(1), edit: 1, signer: 'mallory' }))).toBe('ENVELOPE_SENDER_NOT_AUTHOR');
    expect(await memory.admit('CH1', sighting({ messageId: id(1), edit: 1 }))).toBeNull();
  });

  it('reads the memory of earlier releases: a bare sentAt per message sid', async () => {
    const store = new MemoryKeyStore();
    await store.setState('seen-messages:bob:CH1', JSON.stringify({ ids: { [ORIGINAL]: ['IM1', 0] }, versions: { IM1: 2000 } }));
    const memory = new ReplayMemory(store, 'bob');
    expect(await memory.admit('CH1', sighting({ messageId: id(1), sentAt: 1500, original: id(1), bound: false }))).toBe('ENVELOPE_ROLLBACK');
    expect(await memory.admit('CH1', sighting({ messageId: id(2), sentAt: 2500, original: id(2), bound: false }))).toBeNull();
    expect(await memory.admit('CH1', sighting({ messageId: id(3), edit: 1, sentAt: 2600, original: id(2) }))).toBeNull(); // bound to the version shown
  });
});

describe('ReplayMemory window', () => {
  it(`keeps the latest ${REPLAY_WINDOW_MESSAGES} messages of each conversation across a reload, forgetting the oldest first`, async () => {
    const store = new MemoryKeyStore();
    const first = new ReplayMemory(store, 'bob');
    const message = (n: number) => sighting({ messageId: id(n), original: id(n), messageSid: `IM${n}`, index: n, sentAt: 1000 + n });
    for (let n = 0; n <= REPLAY_WINDOW_MESSAGES; n++) expect(await first.admit('CH1', message(n))).toBeNull();
    await first.admit('CH2', message(0));
    await first.flushed();
    const saved = JSON.parse((await store.getState('seen-messages:bob:CH1'))!) as { ids: object; versions: object };
    expect([Object.keys(saved.ids).length, Object.keys(saved.versions).length]).toEqual([REPLAY_WINDOW_MESSAGES, REPLAY_WINDOW_MESSAGES]);

    // After a reload: a copy of message 1 (the oldest remembered) at a later index is a replay,
    // and an older version of it a rollback; message 0 is forgotten in CH1, not in CH2.
    const reloaded = new ReplayMemory(store, 'bob');
    const last = REPLAY_WINDOW_MESSAGES + 1;
    expect(await reloaded.admit('CH1', { ...message(1), messageSid: 'IMcopy1', index: last })).toBe('ENVELOPE_REPLAY');
    expect(await reloaded.admit('CH1', { ...message(1), sentAt: 0 })).toBe('ENVELOPE_ROLLBACK');
    expect(await reloaded.admit('CH2', { ...message(0), messageSid: 'IMcopy0', index: 1 })).toBe('ENVELOPE_REPLAY');
    expect(await reloaded.admit('CH1', { ...message(0), messageSid: 'IMcopy0', index: last + 1 })).toBeNull();
  });
});
