/**
 * Card events as log leaves, and each identity's chain of them (docs/PROTOCOL.md section 17.5).
 * Every registration and revocation of a card is one leaf of the transparency log; it names its
 * place in its identity's history (a sequence number) and the leaf hash of the identity's
 * previous event, so the events of one identity form a hash chain and "these are all of bob's
 * devices" is a claim a client can check (extendChain) instead of a search it must trust.
 *
 *   leaf = LOG_EVENT_LABEL || kind (1) || seq (u64) || time (u64) || previous (32) || card id (32) || identity (UTF-8)
 */
import { LOG_EVENT_LABEL, MERKLE_HASH_BYTES } from './constants.js';
import { concatBytes, equalBytes, fromHex, fromUtf8, toHex, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { MAX_IDENTITY_CHARS } from './limits.js';
import { leafHash } from './merkle.js';

export type CardEventKind = 'registration' | 'revocation';

/** One card event, as the log holds it. */
export interface CardEvent {
  kind: CardEventKind;
  /** The card's identity (its snapshot's `identity`). */
  identity: string;
  /** The event's place in the identity's history: 0 for its first event, then 1, 2, ... */
  seq: number;
  /** Unix seconds: when the service registered the card, or the card's `revokedAt`. */
  time: number;
  /** The leaf hash of the identity's previous event (32 bytes); 32 zero bytes for seq 0. */
  previous: Uint8Array;
  /** The card id (64 lowercase hex: BLAKE2b-256 of the snapshot, which commits to identity, device and keys). */
  cardId: string;
}

const KINDS: readonly CardEventKind[] = ['registration', 'revocation']; // encoded as 1 and 2
const CARD_ID = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const FIXED_BYTES = LOG_EVENT_LABEL.length + 1 + 8 + 8 + MERKLE_HASH_BYTES + 32;
const NO_PREVIOUS = new Uint8Array(MERKLE_HASH_BYTES);

function malformed(message: string): E2EEError {
  return new E2EEError(ErrorCode.LOG_EVENT_MALFORMED, message);
}

function checkEvent(e: CardEvent): void {
  if (!KINDS.includes(e.kind)) throw malformed(`an event is a registration or a revocation, not ${String(e.kind)}`);
  if (typeof e.identity !== 'string' || LONE_SURROGATE.test(e.identity) || e.identity.length === 0 || [...e.identity].length > MAX_IDENTITY_CHARS) {
    throw malformed(`an event's identity is 1..${MAX_IDENTITY_CHARS} characters`);
  }
  if (!Number.isSafeInteger(e.seq) || e.seq < 0) throw malformed('an event\'s seq is an integer from 0 to 2^53 - 1');
  if (!Number.isSafeInteger(e.time) || e.time < 0) throw malformed('an event\'s time is an integer from 0 to 2^53 - 1');
  if (!(e.previous instanceof Uint8Array) || e.previous.length !== MERKLE_HASH_BYTES) throw malformed('an event\'s previous hash is 32 bytes');
  if ((e.seq === 0) !== equalBytes(e.previous, NO_PREVIOUS)) throw malformed('an identity\'s first event, and only it, has 32 zero bytes as previous hash');
  if (typeof e.cardId !== 'string' || !CARD_ID.test(e.cardId)) throw malformed('an event\'s card id is 64 lowercase hex characters');
}

/** The event's leaf bytes. Throws LOG_EVENT_MALFORMED for an event decodeCardEvent would refuse. */
export function encodeCardEvent(event: CardEvent): Uint8Array {
  checkEvent(event);
  const numbers = new DataView(new ArrayBuffer(17));
  numbers.setUint8(0, KINDS.indexOf(event.kind) + 1);
  numbers.setBigUint64(1, BigInt(event.seq));
  numbers.setBigUint64(9, BigInt(event.time));
  return concatBytes(LOG_EVENT_LABEL, new Uint8Array(numbers.buffer), event.previous, fromHex(event.cardId), utf8(event.identity));
}

/** The event a leaf holds; strict, so that every event has one leaf (LOG_EVENT_MALFORMED). */
export function decodeCardEvent(leaf: Uint8Array): CardEvent {
  if (!(leaf instanceof Uint8Array) || leaf.length <= FIXED_BYTES) throw malformed('a card event leaf is too short');
  if (!equalBytes(leaf.subarray(0, LOG_EVENT_LABEL.length), LOG_EVENT_LABEL)) throw malformed('a card event leaf starts with its label');
  const view = new DataView(leaf.buffer, leaf.byteOffset + LOG_EVENT_LABEL.length, 17);
  const [kind, seq, time] = [view.getUint8(0), view.getBigUint64(1), view.getBigUint64(9)];
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || time > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('an event\'s seq and time are below 2^53');
  let offset = LOG_EVENT_LABEL.length + 17;
  const previous = leaf.slice(offset, (offset += MERKLE_HASH_BYTES));
  const cardId = toHex(leaf.subarray(offset, (offset += 32)));
  let identity: string;
  try {
    identity = fromUtf8(leaf.subarray(offset));
  } catch {
    throw malformed('an event\'s identity is UTF-8');
  }
  const event: CardEvent = { kind: KINDS[kind - 1]!, identity, seq: Number(seq), time: Number(time), previous, cardId };
  checkEvent(event);
  return event;
}

/** The event's leaf hash: what the next event of its identity names as previous, and what inclusion proofs prove. */
export function cardEventHash(event: CardEvent): Uint8Array {
  return leafHash(encodeCardEvent(event));
}

/** What a verifier knows of an identity's history after checking its chain. */
export interface IdentityChain {
  identity: string;
  /** The last event checked: its seq, leaf hash and time. Null before the first. */
  head: { seq: number; hash: Uint8Array; time: number } | null;
  /** Every card the chain registered, in order, with its revocation time (null while active). */
  cards: ReadonlyArray<{ cardId: string; registeredAt: number; revokedAt: number | null }>;
}

/** An identity with no event yet. */
export function emptyChain(identity: string): IdentityChain {
  return { identity, head: null, cards: [] };
}

/** The identity's active card ids: registered and not revoked. */
export function activeCardIds(chain: IdentityChain): string[] {
  return chain.cards.filter((c) => c.revokedAt === null).map((c) => c.cardId);
}

/**
 * The identity's next event after `chain` (the service's side of extendChain): seq and previous
 * from the head, and the time never before the head's, so that clocks that disagree by a little
 * (several instances) cannot break the chain.
 */
export function nextCardEvent(chain: IdentityChain, kind: CardEventKind, cardId: string, time: number): CardEvent {
  const { head } = chain;
  const event: CardEvent = { kind, identity: chain.identity, seq: head ? head.seq + 1 : 0, time: Math.max(time, head?.time ?? 0), previous: head ? head.hash : NO_PREVIOUS, cardId };
  extendChain(chain, [event]); // refuses here already what a verifier would: a card registered twice, an unknown one revoked
  return event;
}

function broken(identity: string, seq: number, message: string): E2EEError {
  return new E2EEError(ErrorCode.LOG_CHAIN_INVALID, `${identity}'s event ${seq}: ${message}`, { details: { identity, seq } });
}

/**
 * Checks that `events` continue the identity's chain, in order: the same identity, seq one past
 * the head, previous the head's leaf hash, time not before the head's, a card registered once
 * and revoked once after it. Returns the extended chain (the given one is not changed); throws
 * LOG_CHAIN_INVALID at the first event that does not chain, LOG_EVENT_MALFORMED for a malformed one.
 */
export function extendChain(chain: IdentityChain, events: readonly CardEvent[]): IdentityChain {
  let { head } = chain;
  const cards = chain.cards.map((c) => ({ ...c }));
  for (const event of events) {
    const hash = cardEventHash(event);
    const { identity, seq, time, previous, cardId } = event;
    const where = (message: string) => broken(chain.identity, seq, message);
    if (identity !== chain.identity) throw where(`it belongs to another identity (${identity})`);
    if (seq !== (head ? head.seq + 1 : 0)) throw where(`expected event ${head ? head.seq + 1 : 0}: an event is missing, repeated or out of order`);
    if (!equalBytes(previous, head ? head.hash : NO_PREVIOUS)) throw where('it does not name the previous event');
    if (head && time < head.time) throw where('it is dated before the previous event');
    const card = cards.find((c) => c.cardId === cardId);
    if (event.kind === 'registration') {
      if (card) throw where(`card ${cardId} is registered twice`);
      cards.push({ cardId, registeredAt: time, revokedAt: null });
    } else {
      if (!card) throw where(`card ${cardId} is revoked but was never registered`);
      if (card.revokedAt !== null) throw where(`card ${cardId} is revoked twice`);
      card.revokedAt = time;
    }
    head = { seq, hash, time };
  }
  return { identity: chain.identity, head, cards };
}
