/**
 * Card events as log leaves and identity chains (docs/PROTOCOL.md section 17.5): the leaf layout
 * byte for byte, one leaf per event (random events round-trip, random bytes decode to an event
 * that re-encodes to them or are refused with LOG_EVENT_MALFORMED), chains a service builds with
 * nextCardEvent verify and prove their inclusion in the log, and every way of breaking a chain
 * (dropping, reordering, rewriting, forking, replaying an event) is refused with LOG_CHAIN_INVALID.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import {
  activeCardIds,
  cardEventHash,
  decodeCardEvent,
  emptyChain,
  encodeCardEvent,
  extendChain,
  nextCardEvent,
  type CardEvent,
  type CardEventKind,
  type IdentityChain,
} from '../../shared/log-event.js';
import { MerkleTree, leafHash, verifyInclusion } from '../../shared/merkle.js';
import { runs } from '../support/fast-check.js';
import { errorCodeOf } from '../support/errors.js';


const cardId = (n: number) => createHash('sha256').update(`card ${n}`).digest('hex');
const T0 = 1_767_225_600;

/** Bob registers a laptop and a phone, revokes the laptop, registers a tablet. */
function bobsHistory(): { chain: IdentityChain; events: CardEvent[] } {
  let chain = emptyChain('bob');
  const events: CardEvent[] = [];
  const steps: Array<[CardEventKind, number, number]> = [['registration', 1, T0], ['registration', 2, T0 + 60], ['revocation', 1, T0 + 30], ['registration', 3, T0 + 120]];
  for (const [kind, card, time] of steps) {
    const event = nextCardEvent(chain, kind, cardId(card), time);
    events.push(event);
    chain = extendChain(chain, [event]);
  }
  return { chain, events };
}

describe('the event leaf', () => {
  it('is label, kind, seq, time, previous, card id and identity, byte for byte', () => {
    const event: CardEvent = { kind: 'revocation', identity: 'bøb', seq: 2, time: T0, previous: new Uint8Array(32).fill(7), cardId: cardId(1) };
    const want = Buffer.concat([
      Buffer.from('twilio-e2ee/v1/log-event\n'),
      Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 2]),
      Buffer.from('000000006955b900', 'hex'), // 1767225600
      Buffer.alloc(32, 7),
      Buffer.from(cardId(1), 'hex'),
      Buffer.from('bøb'),
    ]);
    expect(Buffer.from(encodeCardEvent(event)).toString('hex')).toBe(want.toString('hex'));
    expect(decodeCardEvent(new Uint8Array(want))).toEqual(event);
    expect(cardEventHash(event)).toEqual(leafHash(new Uint8Array(want)));
  });

  const eventArb = fc
    .record({
      kind: fc.constantFrom<CardEventKind>('registration', 'revocation'),
      identity: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
      seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      time: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      previous: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      cardId: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
    })
    .map((e) => ({ ...e, previous: e.seq === 0 ? new Uint8Array(32) : e.previous.some((b) => b !== 0) ? e.previous : Uint8Array.of(1, ...e.previous.slice(1)) }));

  it('decodes back to the event it encodes', () => {
    fc.assert(
      fc.property(eventArb, (event) => {
        expect(decodeCardEvent(encodeCardEvent(event))).toEqual(event);
      }),
      { numRuns: runs(300) },
    );
  });

  it('is refused unless canonical, with LOG_EVENT_MALFORMED only', () => {
    fc.assert(
      fc.property(eventArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (event, at, byte) => {
        const leaf = encodeCardEvent(event);
        leaf[at % leaf.length] = byte;
        const code = errorCodeOf(() => expect(encodeCardEvent(decodeCardEvent(leaf))).toEqual(leaf));
        expect(['ok', ErrorCode.LOG_EVENT_MALFORMED]).toContain(code);
      }),
      { numRuns: runs(300) },
    );
    const good: CardEvent = { kind: 'registration', identity: 'bob', seq: 0, time: T0, previous: new Uint8Array(32), cardId: cardId(1) };
    const bad: Array<Partial<CardEvent>> = [
      { kind: 'approval' as CardEventKind },
      { identity: '' },
      { identity: 'x'.repeat(257) },
      { identity: '\ud800' },
      { seq: -1 },
      { seq: 1 }, // zero previous hash after the first event
      { previous: new Uint8Array(32).fill(1) }, // a previous hash on the first event
      { previous: new Uint8Array(31) },
      { time: 2 ** 53 },
      { time: 1.5 },
      { cardId: cardId(1).toUpperCase() },
      { cardId: cardId(1).slice(2) },
    ];
    for (const change of bad) expect(errorCodeOf(() => encodeCardEvent({ ...good, ...change })), JSON.stringify(change)).toBe(ErrorCode.LOG_EVENT_MALFORMED);
    const leaf = encodeCardEvent(good);
    const withKind = (k: number) => Uint8Array.from(leaf, (b, i) => (i === 25 ? k : b));
    for (const broken of [leaf.slice(0, 106), withKind(0), withKind(3), Uint8Array.from(leaf, (b, i) => (i === 0 ? 0x54 : b)), new Uint8Array([...leaf, 0xff])]) {
      expect(errorCodeOf(() => decodeCardEvent(broken))).toBe(ErrorCode.LOG_EVENT_MALFORMED);
    }
    const hugeSeq = leaf.slice();
    hugeSeq.fill(0xff, 26, 34);
    expect(errorCodeOf(() => decodeCardEvent(hugeSeq))).toBe(ErrorCode.LOG_EVENT_MALFORMED);
  });
});

describe('identity chains', () => {
  it('tell every card of an identity and when it was revoked, each event proven in the log', () => {
    const { chain, events } = bobsHistory();
    expect(activeCardIds(chain)).toEqual([cardId(2), cardId(3)]);
    expect(chain.cards).toEqual([
      { cardId: cardId(1), registeredAt: T0, revokedAt: T0 + 60 }, // dated not before the event before it
      { cardId: cardId(2), registeredAt: T0 + 60, revokedAt: null },
      { cardId: cardId(3), registeredAt: T0 + 120, revokedAt: null },
    ]);
    expect(chain.head?.seq).toBe(3);
    // A verifier that holds the chain so far continues from it; one that holds nothing checks all.
    expect(extendChain(extendChain(emptyChain('bob'), events.slice(0, 2)), events.slice(2))).toEqual(chain);

    // Interleaved with alice's events in one log, each of bob's leaves is proven in the tree.
    const alice = nextCardEvent(emptyChain('alice'), 'registration', cardId(9), T0);
    const leaves = [alice, ...events].map(encodeCardEvent);
    const tree = new MerkleTree(leaves.map(leafHash));
    events.forEach((event, i) => {
      verifyInclusion({ index: i + 1, size: tree.size, leafHash: cardEventHash(event), proof: tree.inclusionProof(i + 1), root: tree.root() });
    });
  });

  it('refuse a dropped, reordered, rewritten, forked, replayed or foreign event with LOG_CHAIN_INVALID', () => {
    const { events } = bobsHistory();
    const [e0, e1, e2, e3] = events as [CardEvent, CardEvent, CardEvent, CardEvent];
    const bob = emptyChain('bob');
    const rewritten = { ...e1, cardId: cardId(7) }; // same place, another card: its hash changes, so e2 no longer chains
    const broken: Array<[string, CardEvent[]]> = [
      ['dropped', [e0, e2, e3]],
      ['reordered', [e0, e2, e1, e3]],
      ['rewritten', [e0, rewritten, e2]],
      ['replayed', [e0, e1, e1]],
      ['not from the start', [e1, e2]],
      ['foreign', [e0, { ...e1, identity: 'mallory' }]],
      ['dated backwards', [e0, { ...nextCardEvent(extendChain(bob, [e0]), 'registration', cardId(2), T0), time: T0 - 1 }]],
    ];
    for (const [what, list] of broken) expect(errorCodeOf(() => extendChain(bob, list)), what).toBe(ErrorCode.LOG_CHAIN_INVALID);

    // A fork: two different events both claiming seq 1 after e0; a verifier holding one refuses the other.
    const fork = nextCardEvent(extendChain(bob, [e0]), 'registration', cardId(8), T0 + 5);
    expect(errorCodeOf(() => extendChain(extendChain(bob, [e0, e1]), [fork]))).toBe(ErrorCode.LOG_CHAIN_INVALID);

    const chain = extendChain(bob, events);
    expect(errorCodeOf(() => nextCardEvent(chain, 'registration', cardId(2), T0 + 200))).toBe(ErrorCode.LOG_CHAIN_INVALID); // registered twice
    expect(errorCodeOf(() => nextCardEvent(chain, 'revocation', cardId(1), T0 + 200))).toBe(ErrorCode.LOG_CHAIN_INVALID); // revoked twice
    expect(errorCodeOf(() => nextCardEvent(chain, 'revocation', cardId(5), T0 + 200))).toBe(ErrorCode.LOG_CHAIN_INVALID); // never registered
    const err = (() => {
      try {
        extendChain(bob, [e0, e2]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: ErrorCode.LOG_CHAIN_INVALID, details: { identity: 'bob', seq: 2 } });
  });
});
