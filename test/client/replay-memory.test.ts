/**
 * The replay memory's version record (docs/PROTOCOL.md 5.5 check 17): versions ordered by their
 * edit counter, then their signed sentAt; edits bound to the original and signed by its author;
 * and the memory written by earlier releases (a bare sentAt per message) still read.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKeyStore } from '../../client/index.js';
import { ReplayMemory, type Sighting } from '../../client/replay-memory.js';

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
