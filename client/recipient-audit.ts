/**
 * The recipient-set audit (docs/PROTOCOL.md 17.9): every message this device opens from its own
 * slot shows the whole list of devices it was sealed for, and Twilio, which delivers that list,
 * is not the card service, which chose it. Each slot's key id must belong to a device that
 * explains it: one of my own devices as I know them, or a logged card of someone who is (or was)
 * in the conversation. Anything else is a directory alert: a device of mine I never added
 * ('rogue-device'), a card of an outsider ('unexpected-recipient'), a card revoked well before
 * the message ('suppressed-revocation'), or a slot no card explains ('unattributed-slot').
 *
 * Cost: slots are matched against cards the client already holds (the participants' active cards,
 * cached by the card directory); only key ids that match none trigger one batched refresh, the
 * card histories and, with the log, the identities' chains. Results are cached per key id.
 */
import { KEY_ID_BYTES, RECIPIENTS_OFFSET, RECIPIENT_SLOT_BYTES } from '../shared/constants.js';
import type { ParsedEnvelope } from '../shared/envelope-layout.js';
import { DEFAULT_CARD_CACHE_TTL_MS, MAX_SENT_AT_SKEW_MS } from '../shared/limits.js';
import type { IdentityChain } from '../shared/log-event.js';
import type { BaseParticipant } from './conversations.js';
import type { DirectoryAlertKind, NewDirectoryAlert } from './directory-alert.js';
import type { KeyStore } from './key-store.js';

/** What the audit found in one message (also marked on the message: `message.e2ee.alerts`). */
export interface AuditFinding {
  kind: DirectoryAlertKind;
  /** Who the card belongs to, when known. */
  identity?: string;
  cardId?: string;
  /** The slot's key id (16 hex), for a slot no card explains. */
  keyId?: string;
  /** What happened and what to do, for people. */
  message: string;
}

/** Where the audit learns cards (the card directory, the log view, this device); see E2EEClient. */
export interface AuditSources {
  me: string;
  /** Card ids of my identity that this device knows as its own devices (its card included). */
  ownCards(): Promise<ReadonlySet<string>>;
  /** The verified active cards the client holds for each identity, however old (no request). */
  cachedCards(identities: readonly string[]): Map<string, readonly { id: string }[]>;
  /** Verified active cards (logged) of each identity, looked up afresh in one request. */
  activeCards(identities: readonly string[]): Promise<Map<string, readonly { id: string }[]>>;
  /** Card ids this client has seen for the identity, revoked ones included (no request). */
  seenCards(identity: string): Promise<readonly string[]>;
  /** The identity's chain, verified against the log (absent without the log). */
  chains?(identities: readonly string[]): Promise<Map<string, IdentityChain>>;
}

/** What one message's audit needs. */
export interface AuditInput {
  conversation: { sid: string; getParticipants?(): Promise<BaseParticipant[]> };
  envelope: ParsedEnvelope;
  /** The signed sentAt (ms). */
  sentAt: number;
  /** The sender's identity (verified). */
  sender: string;
}

/**
 * A card revoked this long before a message may still get a slot from an honest sender: its card
 * cache (5 s by default) and the clock skew the sentAt check allows. Longer: the sender's
 * directory still serves the card as active.
 */
export const REVOCATION_GRACE_MS = MAX_SENT_AT_SKEW_MS;
/** Key ids remembered (attributions), oldest forgotten first. */
const MAX_KEY_IDS = 20_000;

/** Who is or was in a conversation, as this device saw it (persisted); `listed`: it could list the participants once. */
interface Members {
  identities: Set<string>;
  listed: boolean;
}

interface Attribution {
  identity: string;
  cardId: string;
  /** Unix seconds; null while active; undefined when not known (a card history without the log). */
  revokedAt?: number | null;
  /** Whose word: 1 a card history, 2 the directory's active set, 3 the log's chain (the last word). */
  rank: 1 | 2 | 3;
}

/**
 * Key ids as 8-character strings of their bytes (char codes 0..255): cheaper to make per slot than
 * hex, and only compared with each other; hex for people (`keyIdHex`).
 */
export function slotKeys(envelope: ParsedEnvelope): string[] {
  const keys = new Set<string>();
  const b = envelope.binary;
  for (let i = 0, o = RECIPIENTS_OFFSET; i < envelope.recipientCount; i++, o += RECIPIENT_SLOT_BYTES) {
    keys.add(String.fromCharCode(b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!, b[o + 4]!, b[o + 5]!, b[o + 6]!, b[o + 7]!));
  }
  return [...keys];
}

/** The key of a card id (its first 8 bytes, 4.2), as slotKeys makes them. */
function keyOf(cardId: string): string {
  let key = '';
  for (let i = 0; i < 2 * KEY_ID_BYTES; i += 2) key += String.fromCharCode(parseInt(cardId.slice(i, i + 2), 16));
  return key;
}

const keyIdHex = (key: string): string => [...key].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');

/** The key ids of the slots, in order, side by side (8 bytes each). */
function keyIdBytes(envelope: ParsedEnvelope): Uint8Array {
  const out = new Uint8Array(envelope.recipientCount * KEY_ID_BYTES);
  for (let i = 0; i < envelope.recipientCount; i++) {
    const o = RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES;
    for (let j = 0; j < KEY_ID_BYTES; j++) out[i * KEY_ID_BYTES + j] = envelope.binary[o + j]!;
  }
  return out;
}

/** True when the envelope's slots have exactly these key ids, in this order. */
function sameKeyIds(envelope: ParsedEnvelope, ids: Uint8Array | undefined): boolean {
  if (!ids || ids.length !== envelope.recipientCount * KEY_ID_BYTES) return false;
  const bytes = envelope.binary;
  for (let i = 0; i < envelope.recipientCount; i++) {
    const o = RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES;
    for (let j = 0; j < KEY_ID_BYTES; j++) if (bytes[o + j] !== ids[i * KEY_ID_BYTES + j]) return false;
  }
  return true;
}

export class RecipientAudit {
  /** Key id -> the card it names. */
  private readonly byKeyId = new Map<string, Attribution>();
  /** Card lists already indexed (the directory hands out the same array while its cache holds). */
  private readonly indexed = new WeakSet<object>();
  /** Key ids no card explained, until when (ms): one slow lookup per TTL, not one per message. */
  private readonly unexplained = new Map<string, number>();
  /** Per conversation: current participants (cached for the TTL) and everyone seen in it (persisted). */
  private readonly current = new Map<string, { identities: string[]; at: number }>();
  private readonly everyone = new Map<string, Promise<Members>>();
  /**
   * Per conversation, key ids already judged fine for a member's active card: fine for every
   * later message too (members and own cards only grow), until what is known of a card changes.
   */
  private readonly fine = new Map<string, Set<string>>();
  /** Per conversation, the slot key ids of the last message found fine: the next message usually has the same. */
  private readonly lastFine = new Map<string, Uint8Array>();

  constructor(
    private readonly sources: AuditSources,
    private readonly keyStore: KeyStore,
    private readonly ttlMs = DEFAULT_CARD_CACHE_TTL_MS,
  ) {}

  /** Participants changed (a participant event): the next audit asks again. */
  invalidate(conversationSid?: string): void {
    if (conversationSid === undefined) this.current.clear();
    else this.current.delete(conversationSid);
  }

  /** Someone joined the conversation (a participant event): remembered as one who was in it. */
  async noteMember(conversationSid: string, identity: string): Promise<void> {
    const everyone = await this.remembered(conversationSid);
    if (everyone.identities.has(identity)) return;
    everyone.identities.add(identity);
    await this.save(conversationSid, everyone).catch(() => undefined);
  }

  /** The findings for one message; [] when every slot is explained. Never throws for a lookup failure (no finding then). */
  async audit(input: AuditInput): Promise<AuditFinding[]> {
    if (sameKeyIds(input.envelope, this.lastFine.get(input.conversation.sid))) return [];
    const all = slotKeys(input.envelope);
    const findings = await this.judgeAll(input, all);
    if (findings.length === 0 && all.every((k) => this.fine.get(input.conversation.sid)?.has(k))) {
      this.lastFine.set(input.conversation.sid, keyIdBytes(input.envelope));
    }
    return findings;
  }

  private async judgeAll(input: AuditInput, all: readonly string[]): Promise<AuditFinding[]> {
    let fine = this.fine.get(input.conversation.sid);
    if (!fine) this.fine.set(input.conversation.sid, (fine = new Set()));
    const keyIds = all.filter((k) => !fine.has(k));
    if (keyIds.length === 0) return [];
    let { members, known } = await this.members(input, false);
    this.index(this.sources.cachedCards([...members, this.sources.me]));
    let unknown = keyIds.filter((k) => !this.byKeyId.has(k));
    if (unknown.some((k) => (this.unexplained.get(k) ?? 0) < Date.now())) {
      // Slow path, once per TTL for a key id: fresh participants and cards, card histories, chains.
      ({ members, known } = await this.members(input, true));
      const identities = [...members, this.sources.me];
      // My own identity's cards come from its chain, not a lookup: a lookup would make the card history's first sight of it silently.
      await this.learnActive([...members].filter((i) => i !== this.sources.me));
      await this.learnSeen(identities);
      if (this.sources.chains) this.learnChains(await this.sources.chains(identities).catch(() => new Map<string, IdentityChain>()));
      unknown = keyIds.filter((k) => !this.byKeyId.has(k));
      for (const k of unknown) this.unexplained.set(k, Date.now() + this.ttlMs);
    }
    // Without the participants (this device was removed, or is offline) only its own slots can be judged.
    if (!known) unknown = [];
    const findings: AuditFinding[] = unknown.map(keyIdHex).map((keyId) => ({
      kind: 'unattributed-slot',
      keyId,
      message: `A message from ${input.sender} was also encrypted to a device (key id ${keyId}) that belongs to nobody known in this conversation. The card directory may have added a device to someone's account: contact your administrator.`,
    }));
    let own = await this.sources.ownCards();
    const cards = keyIds.map((k) => this.byKeyId.get(k)).filter((c): c is Attribution => c !== undefined);
    if (cards.some((c) => c.identity === this.sources.me && !own.has(c.cardId)) && this.sources.chains) {
      // A card of mine I do not count as my own: read my chain first (the devices my account had before this one are mine).
      await this.sources.chains([this.sources.me]).catch(() => undefined);
      own = await this.sources.ownCards();
    }
    for (const card of cards) {
      const found = this.judge(card, input, members, own, known);
      findings.push(...found);
      if (found.length === 0 && known && card.revokedAt === null) fine.add(keyOf(card.cardId));
    }
    return findings;
  }

  private judge(card: Attribution, input: AuditInput, members: ReadonlySet<string>, own: ReadonlySet<string>, known: boolean): AuditFinding[] {
    const { identity, cardId } = card;
    const short = cardId.slice(0, 16);
    if (identity === this.sources.me) {
      if (own.has(cardId)) return [];
      return [{ kind: 'rogue-device', identity, cardId, message: `A device you don't recognise was added to your account (card ${short}…): ${input.sender}'s message was also encrypted to it. Revoke it now, unless you added it yourself on another device.` }];
    }
    if (!known) return [];
    if (!members.has(identity)) {
      return [{ kind: 'unexpected-recipient', identity, cardId, message: `A message from ${input.sender} was also encrypted to a device of ${identity}, who is not in this conversation. Contact your administrator.` }];
    }
    if (typeof card.revokedAt === 'number' && card.revokedAt * 1000 < input.sentAt - REVOCATION_GRACE_MS) {
      const when = new Date(card.revokedAt * 1000).toISOString();
      return [{ kind: 'suppressed-revocation', identity, cardId, message: `A message from ${input.sender} was also encrypted to a device of ${identity} that was revoked at ${when}: the card directory still serves it. Contact your administrator.` }];
    }
    return [];
  }

  /**
   * Everyone who is or was in the conversation as far as this device knows, and the sender;
   * `known` is false when this device could never list the participants (then only its own
   * identity's slots are judged).
   */
  private async members(input: AuditInput, fresh: boolean): Promise<{ members: Set<string>; known: boolean }> {
    const { sid } = input.conversation;
    const everyone = await this.remembered(sid);
    const cached = this.current.get(sid);
    if (fresh || !cached || Date.now() - cached.at > this.ttlMs) {
      try {
        // The SDK's and the relay's message link their full conversation object.
        const participants = (await input.conversation.getParticipants?.()) ?? [];
        const identities = participants.map((p) => p.identity).filter((i): i is string => typeof i === 'string');
        this.current.set(sid, { identities, at: Date.now() });
        if (!everyone.listed || identities.some((i) => !everyone.identities.has(i))) {
          for (const i of identities) everyone.identities.add(i);
          everyone.listed = true;
          await this.save(sid, everyone);
        }
      } catch {
        // Offline: the identities remembered stand in for the participants.
      }
    }
    return { members: new Set([...everyone.identities, input.sender]), known: everyone.listed };
  }

  private save(conversationSid: string, members: Members): Promise<void> {
    return this.keyStore.setState(this.memberKey(conversationSid), JSON.stringify({ listed: members.listed, identities: [...members.identities] }));
  }

  private memberKey(conversationSid: string): string {
    return `audit-members:${this.sources.me}:${conversationSid}`;
  }

  private remembered(conversationSid: string): Promise<Members> {
    let loaded = this.everyone.get(conversationSid);
    if (!loaded) {
      loaded = this.keyStore.getState(this.memberKey(conversationSid)).then((text) => {
        const kept = text === null ? { listed: false, identities: [] } : (JSON.parse(text) as { listed: boolean; identities: string[] });
        return { listed: kept.listed, identities: new Set(kept.identities) };
      });
      this.everyone.set(conversationSid, loaded);
      loaded.catch(() => this.everyone.delete(conversationSid));
    }
    return loaded;
  }

  private note(keyId: string, card: Attribution): void {
    const known = this.byKeyId.get(keyId);
    // The first card named for a key id stays; for it, the chain beats the active set beats a card history.
    if (known && (known.cardId !== card.cardId || known.rank > card.rank)) return;
    if (known && known.rank === card.rank && known.revokedAt === card.revokedAt) return;
    this.byKeyId.delete(keyId);
    this.byKeyId.set(keyId, card);
    this.fine.clear();
    this.lastFine.clear();
    this.unexplained.delete(keyId);
    if (this.byKeyId.size > MAX_KEY_IDS) this.byKeyId.delete(this.byKeyId.keys().next().value!);
  }

  private async learnActive(identities: readonly string[]): Promise<void> {
    try {
      this.index(await this.sources.activeCards([...new Set(identities)]));
    } catch {
      // the lookup failed: what is known stands
    }
  }

  private index(active: Map<string, readonly { id: string }[]>): void {
    for (const [identity, cards] of active) {
      if (this.indexed.has(cards)) continue;
      this.indexed.add(cards);
      for (const card of cards) this.note(keyOf(card.id), { identity, cardId: card.id, revokedAt: null, rank: 2 });
    }
  }

  private async learnSeen(identities: readonly string[]): Promise<void> {
    for (const identity of new Set(identities)) {
      for (const cardId of await this.sources.seenCards(identity).catch(() => [])) this.note(keyOf(cardId), { identity, cardId, rank: 1 });
    }
  }

  private learnChains(chains: Map<string, IdentityChain>): void {
    for (const [identity, chain] of chains) {
      for (const card of chain.cards) this.note(keyOf(card.cardId), { identity, cardId: card.cardId, revokedAt: card.revokedAt, rank: 3 });
    }
  }
}

