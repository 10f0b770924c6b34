/**
 * The LogStore contract: every card change appends its event in the same transaction (and a
 * refused or failed one appends nothing), each identity's events chain, the stored nodes are
 * the tree of the stored leaves, checkpoints one per size, cosignatures. The log is shared by
 * every test on the store, so each test checks its own identities' events and the log's growth.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { decodeCardEvent, emptyChain, extendChain, activeCardIds } from '../../shared/log-event.js';
import { toHex } from '../../shared/encoding.js';
import { leafHash, MerkleTree, rangeNodes } from '../../shared/merkle.js';
import type { LogCheckpointRecord, Store } from '../../server/store/types.js';
import { makeCard, NOW, range, registerOptions, uid } from './store.fixtures.js';

/** Every event of the log, in order, checked against the stored nodes: the tree they make. */
async function wholeLog(store: Store): Promise<{ tree: MerkleTree; leaves: Uint8Array[] }> {
  const size = await store.logSize();
  const leaves: Uint8Array[] = [];
  for (const index of range(0, size)) {
    const event = await store.logEvent(index);
    expect(event?.index).toBe(index);
    leaves.push(event!.leaf);
  }
  const tree = new MerkleTree(leaves.map(leafHash));
  if (size > 0) {
    const nodes = rangeNodes({ start: 0, end: size });
    expect((await store.logNodes(nodes)).map(toHex)).toEqual(nodes.map(tree.node).map(toHex));
  }
  return { tree, leaves };
}

/** The identity's events from the store, checked as a chain from its start. */
async function chainOf(store: Store, identity: string) {
  const events = await store.identityEvents(identity, 0, Number.MAX_SAFE_INTEGER, 1000);
  return { events, chain: extendChain(emptyChain(identity), events.map((e) => decodeCardEvent(e.leaf))) };
}

const checkpoint = (size: number, createdAtMs: number): LogCheckpointRecord => ({
  size,
  rootHash: new Uint8Array(32).fill(size % 256),
  note: `note of ${size}\n`,
  createdAtMs,
});

/** Registered inside storeContract (test/server/store.contract.ts), which opens and closes `current()` around each test. */
export function logContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  describe('log events with every card change', () => {
    it('a registration appends the identity\'s first event: seq 0, no previous, the card and its registration time', async () => {
      const before = await store.logSize();
      const card = makeCard(uid('alice'), { registeredAt: NOW + 5 });
      await store.registerCard(card, registerOptions());
      expect(await store.logSize()).toBe(before + 1);
      const stored = (await store.cardEvents([card.id])).get(card.id)!;
      expect(stored).toMatchObject({ index: before, identity: card.identity, seq: 0, cardId: card.id, kind: 'registration' });
      expect(decodeCardEvent(stored.leaf)).toEqual({
        kind: 'registration', identity: card.identity, seq: 0, time: NOW + 5, previous: new Uint8Array(32), cardId: card.id,
      });
    });

    it('a supersede appends the revocation and the registration, a revocation once; the chain tells the active cards', async () => {
      const alice = uid('alice');
      const [first, second, third] = [makeCard(alice), makeCard(alice), makeCard(alice)];
      await store.registerCard(first, registerOptions());
      await store.registerCard(second, registerOptions({ supersedes: first.id, now: NOW + 70 }));
      await store.registerCard(third, registerOptions());
      await store.revokeCard(third.id, NOW + 80);
      const size = await store.logSize();
      expect((await store.revokeCard(third.id, NOW + 90))?.revokedAt).toBe(NOW + 80);
      expect(await store.logSize()).toBe(size); // revoked already: no second event

      const { events, chain } = await chainOf(store, alice);
      expect(events.map((e) => [e.kind, e.cardId])).toEqual([
        ['registration', first.id], ['revocation', first.id], ['registration', second.id], ['registration', third.id], ['revocation', third.id],
      ]);
      expect(events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
      expect(chain.cards.find((c) => c.cardId === first.id)?.revokedAt).toBe(NOW + 70);
      expect(activeCardIds(chain)).toEqual([second.id]);
      expect((await store.activeCards([alice])).get(alice)?.map((c) => c.id)).toEqual(activeCardIds(chain));
    });

    it('a refused registration appends nothing', async () => {
      const alice = uid('alice');
      const card = makeCard(alice);
      await store.registerCard(card, registerOptions({ maxActivePerIdentity: 1 }));
      const size = await store.logSize();
      expect((await store.registerCard({ ...card }, registerOptions())).ok).toBe(false); // CARD_EXISTS
      expect((await store.registerCard(makeCard(uid('bob'), { signKey: card.signKey }), registerOptions())).ok).toBe(false); // KEY_IN_USE
      expect((await store.registerCard(makeCard(alice), registerOptions({ maxActivePerIdentity: 1 }))).ok).toBe(false); // TOO_MANY_CARDS
      expect(await store.revokeCard('f'.repeat(64), NOW)).toBeNull();
      expect(await store.logSize()).toBe(size);
    });

    it('a registration whose event cannot be logged fails whole: neither the card nor the supersede is stored', async () => {
      const alice = uid('alice');
      const previous = makeCard(alice);
      await store.registerCard(previous, registerOptions());
      const size = await store.logSize();
      // A card id no event can name (not 64 hex): the append throws inside the transaction.
      const unloggable = makeCard(alice, { id: uid('not-hex') });
      await expect(store.registerCard(unloggable, registerOptions({ supersedes: previous.id }))).rejects.toMatchObject({ code: 'LOG_EVENT_MALFORMED' });
      expect(await store.getCard(unloggable.id)).toBeNull();
      expect((await store.getCard(previous.id))?.revokedAt).toBeNull();
      expect(await store.logSize()).toBe(size);
      expect((await chainOf(store, alice)).events).toHaveLength(1);
    });

    it('concurrent registrations and revocations of many identities make one log: contiguous indexes, every chain intact, nodes the tree of the leaves', async () => {
      const identities = range(0, 6).map(() => uid('user'));
      const cards = identities.flatMap((identity) => range(0, 4).map(() => makeCard(identity)));
      await Promise.all(cards.map((card) => store.registerCard(card, registerOptions({ maxActivePerIdentity: 10 }))));
      await Promise.all(cards.filter((_, i) => i % 3 === 0).map((card) => store.revokeCard(card.id, NOW + 100)));
      for (const identity of identities) {
        const { events, chain } = await chainOf(store, identity);
        expect(events).toHaveLength(4 + cards.filter((c, i) => c.identity === identity && i % 3 === 0).length);
        expect(activeCardIds(chain).sort()).toEqual((await store.activeCards([identity])).get(identity)!.map((c) => c.id).sort());
      }
      const { tree } = await wholeLog(store);
      expect(tree.size).toBe(await store.logSize());
    });
  });

  describe('log reads', () => {
    it('cardEvents gives registration events only, for the ids that have one; identityEvents pages by seq below a size', async () => {
      const alice = uid('alice');
      const cards = range(0, 3).map(() => makeCard(alice));
      for (const card of cards) await store.registerCard(card, registerOptions());
      await store.revokeCard(cards[0]!.id, NOW + 1);
      const found = await store.cardEvents([...cards.map((c) => c.id), 'f'.repeat(64)]);
      expect([...found.keys()].sort()).toEqual(cards.map((c) => c.id).sort());
      expect([...found.values()].every((e) => e.kind === 'registration')).toBe(true);
      expect(await store.cardEvents([])).toEqual(new Map());

      const all = await store.identityEvents(alice, 0, Number.MAX_SAFE_INTEGER, 100);
      expect(all.map((e) => e.seq)).toEqual([0, 1, 2, 3]);
      expect((await store.identityEvents(alice, 1, Number.MAX_SAFE_INTEGER, 2)).map((e) => e.seq)).toEqual([1, 2]);
      expect((await store.identityEvents(alice, 0, all[2]!.index, 100)).map((e) => e.seq)).toEqual([0, 1]);
      expect(await store.logEvent(Number.MAX_SAFE_INTEGER)).toBeNull();
    });

    it('logNodes rejects a node that is not stored', async () => {
      await expect(store.logNodes([{ level: 40, index: 0 }])).rejects.toThrow(/not stored/);
    });
  });

  describe('checkpoints and cosignatures', () => {
    // The log's checkpoints are shared by the whole suite: sizes far above any test's log.
    const base = 1e12 + Math.floor(Math.random() * 1e9) * 100;

    it('stores one per size, never a smaller size after a larger, and none sooner than the interval', async () => {
      const first = checkpoint(base, 1_000);
      expect(await store.putCheckpoint(first, 500)).toEqual(first);
      expect(await store.latestCheckpoint()).toEqual(first);
      expect(await store.logCheckpoint(base)).toEqual(first);
      expect((await store.putCheckpoint(checkpoint(base, 5_000), 500)).size).toBe(base); // same size
      expect((await store.putCheckpoint(checkpoint(base - 1, 5_000), 500)).size).toBe(base); // smaller
      expect((await store.putCheckpoint(checkpoint(base + 1, 1_400), 500)).size).toBe(base); // too soon
      expect((await store.putCheckpoint(checkpoint(base + 1, 1_500), 500)).size).toBe(base + 1);
      expect(await store.logCheckpoint(base - 1)).toBeNull();
    });

    it('of concurrent publishers of one size, one is stored', async () => {
      const results = await Promise.all(range(0, 5).map((i) => store.putCheckpoint({ ...checkpoint(base + 10, 10_000), note: `writer ${i}\n` }, 0)));
      const stored = (await store.logCheckpoint(base + 10))!.note;
      expect(results.map((r) => r.note)).toEqual(results.map(() => stored));
    });

    it('keeps one line per witness key and size, for stored checkpoints only', async () => {
      await store.putCheckpoint(checkpoint(base + 20, 20_000), 0);
      const line = (n: number) => `\u2014 witness.example/w1 AAAA${n}\n`;
      expect(await store.putLogCosignature(base + 20, { name: 'witness.example/w1', keyId: 7, line: line(1) })).toBe(true);
      expect(await store.putLogCosignature(base + 20, { name: 'witness.example/w1', keyId: 7, line: line(2) })).toBe(true);
      expect(await store.putLogCosignature(base + 20, { name: 'a.example/w2', keyId: 9, line: line(3) })).toBe(true);
      expect(await store.logCosignatures(base + 20)).toEqual([
        { name: 'a.example/w2', keyId: 9, line: line(3) },
        { name: 'witness.example/w1', keyId: 7, line: line(2) },
      ]);
      expect(await store.putLogCosignature(base + 21, { name: 'witness.example/w1', keyId: 7, line: line(4) })).toBe(false);
      expect(await store.logCosignatures(base + 21)).toEqual([]);
    });
  });
}
