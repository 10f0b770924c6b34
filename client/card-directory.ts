/**
 * The client's view of the card directory: every card fetched is verified against the pinned
 * AppKey(s) and the identity it was asked for; active cards are cached briefly and looked up in
 * one request for all identities. The cards seen per identity (its card history: active ones and
 * revoked ones) are remembered in the key store, so that a new or removed device is reported as a
 * key change, a sender card this client never saw active is reported before its message may
 * verify, and safety numbers cover every card this client has seen.
 */
import { trustAppKeys, verifyCard, type TrustedAppKey, type VerifiedCard } from '../shared/card.js';
import { CARD_MAX_CLOCK_SKEW_SECONDS, DEFAULT_CARD_CACHE_TTL_MS, MAX_LOOKUP_IDENTITIES } from '../shared/limits.js';
import { DEFAULT_MONITOR_INTERVAL_MS } from './log-monitor.js';
import { fromB64u, toB64u } from '../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { ApiClient } from './api-client.js';
import type { KeyStore } from './key-store.js';
import type { CardLog } from './log-cards.js';

export interface KeyChange {
  identity: string;
  /** Card ids that appeared since the identity's cards were last seen. */
  added: string[];
  /** Card ids that disappeared (revoked or superseded). */
  removed: string[];
  /**
   * Card ids first seen as the sender of a message, already revoked: devices that came and went
   * without this client ever seeing them active. A stolen app token or a dishonest directory can
   * do that; so can a contact who used and revoked a device while this client was away.
   */
  unobserved: string[];
}

export interface RejectedCard {
  identity: string;
  cardId: string;
  error: { code: string; message: string };
}

export interface CardDirectoryEvents {
  keyChange(change: KeyChange): void;
  cardRejected(rejected: RejectedCard): void;
}

/** What this client remembers of one identity's cards (persisted as JSON in the key store). */
interface CardHistory {
  /** Ids of the cards in the identity's active set when it was last looked up. */
  active: string[];
  /** Every card ever seen for the identity, active or revoked: id → b64u sign public key. */
  seen: Record<string, string>;
}

export class CardDirectory {
  private readonly trusted: TrustedAppKey[];
  private readonly active = new Map<string, { cards: VerifiedCard[]; fetchedAt: number }>();
  private readonly byId = new Map<string, { card: VerifiedCard; fetchedAt: number }>();

  constructor(
    private readonly api: ApiClient,
    appPublicKeys: readonly string[],
    private readonly keyStore: KeyStore,
    /** The local identity: key-change memory is kept per local user. */
    private readonly me: string,
    private readonly events: CardDirectoryEvents,
    /** The transparency log: a card is used only once it proves the card's registration. */
    private readonly log: CardLog,
    private readonly ttlMs = DEFAULT_CARD_CACHE_TTL_MS,
    /** How often a contact's chain is read again to find revocations the directory hides. */
    private readonly watchIntervalMs = DEFAULT_MONITOR_INTERVAL_MS,
  ) {
    if (appPublicKeys.length === 0) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'appPublicKeys: pin at least one AppKey public key');
    this.trusted = trustAppKeys(appPublicKeys);
  }
  /** Forgets cached cards (all, or one identity's) so the next lookup asks the service. */
  invalidate(identity?: string): void {
    if (identity === undefined) this.active.clear();
    else this.active.delete(identity);
  }

  /** Verified active cards of each identity, in one request for every identity not cached. */
  async activeCards(identities: readonly string[], options: { refresh?: boolean } = {}): Promise<Map<string, VerifiedCard[]>> {
    const now = Date.now();
    const unique = [...new Set(identities)];
    const stale = unique.filter((i) => options.refresh || !this.active.has(i) || now - this.active.get(i)!.fetchedAt > this.ttlMs);
    for (let o = 0; o < stale.length; o += MAX_LOOKUP_IDENTITIES) {
      const chunk = stale.slice(o, o + MAX_LOOKUP_IDENTITIES);
      const askedAt = (await this.log.view.latest())?.size ?? 0;
      const response = await this.api.lookupCards(chunk);
      for (const identity of chunk) {
        const { kept: cards, refused } = await this.log.check(identity, this.verifyAll(identity, response.cards?.[identity] ?? []), response.log, askedAt);
        for (const { card, error } of refused) this.events.cardRejected({ identity, cardId: card.id, error: error.toJSON() });
        if (identity !== this.me) this.log.watch(identity, cards, this.watchIntervalMs, (i) => this.invalidate(i));
        this.active.set(identity, { cards, fetchedAt: now });
        for (const card of cards) this.byId.set(card.id, { card, fetchedAt: now });
        await this.noteSeen(identity, cards);
      }
    }
    return new Map(unique.map((i) => [i, this.active.get(i)!.cards]));
  }

  private verifyAll(identity: string, wires: readonly unknown[]): VerifiedCard[] {
    const out: VerifiedCard[] = [];
    for (const wire of wires) {
      try {
        out.push(verifyCard(wire, { trustedAppKeys: this.trusted, identity }));
      } catch (err) {
        const error = isE2EEError(err) ? err.toJSON() : { code: 'CARD_MALFORMED', message: String(err) };
        this.events.cardRejected({ identity, cardId: String((wire as { id?: unknown })?.id ?? ''), error });
      }
    }
    return out;
  }

  /**
   * The card of a message's sender, by id, revoked or not (messages sent before a revocation
   * still verify), checked against the identity expected to own it. A card this client never saw
   * in its identity's active set is first looked for there (and reported as added); one that is
   * not active any more is reported as `unobserved`: either way the key change is announced
   * before the message can show as verified. A card whose lifetime cannot be true is refused.
   */
  async senderCard(id: string, expectedIdentity: string | null): Promise<VerifiedCard> {
    const card = this.checkOwner(await this.cardById(id), expectedIdentity);
    checkLifetime(card);
    await this.log.prove(card);
    if (await this.wasSeen(card)) return card;
    await this.activeCards([card.identity], { refresh: true });
    if (!(await this.wasSeen(card))) await this.noteUnobserved(card);
    return card;
  }

  private async cardById(id: string): Promise<VerifiedCard> {
    const cached = this.byId.get(id);
    if (cached && Date.now() - cached.fetchedAt <= this.ttlMs) return cached.card;
    let wire: unknown;
    try {
      wire = await this.api.getCard(id);
    } catch (err) {
      if (cached) return cached.card; // stale beats nothing while offline
      throw new E2EEError(ErrorCode.CARD_UNAVAILABLE, `the sender's card ${id.slice(0, 16)}… could not be fetched: ${(err as Error).message}`, { cause: err });
    }
    const card = verifyCard(wire, { trustedAppKeys: this.trusted, allowRevoked: true });
    if (card.id !== id) throw new E2EEError(ErrorCode.CARD_ID_MISMATCH, 'the service answered with another card');
    this.byId.set(id, { card, fetchedAt: Date.now() });
    return card;
  }

  private async wasSeen(card: VerifiedCard): Promise<boolean> {
    await this.noting.get(card.identity);
    return (await this.history(card.identity))?.seen[card.id] !== undefined;
  }

  private checkOwner(card: VerifiedCard, expectedIdentity: string | null): VerifiedCard {
    if (expectedIdentity !== null && card.identity !== expectedIdentity) {
      throw new E2EEError(ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR, `signed by "${card.identity}" but posted by "${expectedIdentity}"`);
    }
    return card;
  }

  /** Serializes card-history updates per identity, so two concurrent lookups report one change once. */
  private readonly noting = new Map<string, Promise<void>>();

  private noteSeen(identity: string, cards: readonly VerifiedCard[]): Promise<void> {
    return this.serialized(identity, () => this.compareAndRemember(identity, cards));
  }

  private serialized(identity: string, update: () => Promise<void>): Promise<void> {
    const next = (this.noting.get(identity) ?? Promise.resolve()).then(update);
    const settled = next.catch(() => undefined);
    this.noting.set(identity, settled);
    void settled.then(() => {
      if (this.noting.get(identity) === settled) this.noting.delete(identity);
    });
    return next;
  }

  private historyKey(identity: string): string {
    return `known-cards:${this.me}:${identity}`;
  }

  /** Card histories read from the key store, so each message's sender check costs no storage read. */
  private readonly histories = new Map<string, Promise<CardHistory | null>>();

  /** The identity's card history, or null before this client first looked the identity up. */
  private history(identity: string): Promise<CardHistory | null> {
    let history = this.histories.get(identity);
    if (!history) {
      history = this.keyStore.getState(this.historyKey(identity)).then((text) => {
        if (text === null) return null;
        const parsed = JSON.parse(text) as CardHistory | string[];
        // Earlier versions kept only the active ids; their sign keys are filled in on the next lookup.
        return Array.isArray(parsed) ? { active: parsed, seen: {} } : parsed;
      });
      this.histories.set(identity, history);
      history.catch(() => this.histories.delete(identity));
    }
    return history;
  }

  private async remember(identity: string, history: CardHistory): Promise<void> {
    await this.keyStore.setState(this.historyKey(identity), JSON.stringify(history));
    this.histories.set(identity, Promise.resolve(history));
  }

  private async compareAndRemember(identity: string, cards: readonly VerifiedCard[]): Promise<void> {
    const previous = await this.history(identity);
    const ids = cards.map((c) => c.id).sort();
    const before = previous?.active ?? [];
    const added = ids.filter((id) => !before.includes(id));
    const removed = before.filter((id) => !ids.includes(id));
    const seen = { ...previous?.seen };
    for (const card of cards) seen[card.id] = toB64u(card.signPublicKey);
    if (previous && added.length === 0 && removed.length === 0 && cards.every((c) => previous.seen[c.id] !== undefined)) return;
    await this.remember(identity, { active: ids, seen });
    // The first sight of an identity is the baseline, not a change.
    if (previous && (added.length > 0 || removed.length > 0)) this.events.keyChange({ identity, added, removed, unobserved: [] });
  }

  /** A revoked card first seen as a message's sender: remembered (it joins the safety number) and reported. */
  private noteUnobserved(card: VerifiedCard): Promise<void> {
    return this.serialized(card.identity, async () => {
      const previous = await this.history(card.identity);
      if (previous?.seen[card.id] !== undefined) return;
      const history: CardHistory = { active: previous?.active ?? [], seen: { ...previous?.seen, [card.id]: toB64u(card.signPublicKey) } };
      await this.remember(card.identity, history);
      this.events.keyChange({ identity: card.identity, added: [], removed: [], unobserved: [card.id] });
    });
  }

  /** The active cards last looked up for each identity that has any, however old, without asking the service. */
  cachedCards(identities: readonly string[]): Map<string, VerifiedCard[]> {
    return new Map(identities.filter((i) => this.active.has(i)).map((i) => [i, this.active.get(i)!.cards]));
  }

  /** Ids of every card this client has seen for `identity`, active or revoked, without asking the service. */
  async seenCards(identity: string): Promise<string[]> {
    await this.noting.get(identity);
    return Object.keys((await this.history(identity))?.seen ?? {});
  }

  /**
   * Sign public keys of every card this client has seen for `identity`, active or revoked, after
   * refreshing its active set: what its half of a safety number covers.
   */
  async seenSignKeys(identity: string): Promise<Uint8Array[]> {
    await this.activeCards([identity], { refresh: true });
    await this.noting.get(identity);
    return Object.values((await this.history(identity))?.seen ?? {}).map((key) => fromB64u(key));
  }
}

/**
 * A revocation at or before the card's creation means the card was never active; one in the
 * future cannot have been observed yet. Either is the directory's word against the card, and the
 * card does not vouch for anything.
 */
function checkLifetime(card: VerifiedCard): void {
  const { revokedAt } = card;
  if (revokedAt === null) return;
  if (revokedAt <= card.fields.createdAt) {
    throw new E2EEError(ErrorCode.CARD_LIFETIME_INVALID, `the sender's card is marked revoked (${revokedAt}) at or before its creation (${card.fields.createdAt}): it was never active`);
  }
  if (revokedAt > Date.now() / 1000 + CARD_MAX_CLOCK_SKEW_SECONDS) {
    throw new E2EEError(ErrorCode.CARD_LIFETIME_INVALID, `the sender's card is marked revoked in the future (${revokedAt})`);
  }
}
