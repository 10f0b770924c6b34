/**
 * The client's view of the card directory: every card fetched is verified against the pinned
 * AppKey(s) and the identity it was asked for; active cards are cached briefly and looked up in
 * one request for all identities; the card ids seen per identity are remembered (in the key
 * store) so that a new or removed device is reported as a key change.
 */
import { trustAppKeys, verifyCard, type TrustedAppKey, type VerifiedCard } from '../shared/card.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { ApiClient } from './api-client.js';
import type { KeyStore } from './key-store.js';

export interface KeyChange {
  identity: string;
  /** Card ids that appeared since the identity's cards were last seen. */
  added: string[];
  /** Card ids that disappeared (revoked or superseded). */
  removed: string[];
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

const LOOKUP_BATCH = 100; // the service's limit per request

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
    private readonly ttlMs = 30_000,
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
    for (let o = 0; o < stale.length; o += LOOKUP_BATCH) {
      const chunk = stale.slice(o, o + LOOKUP_BATCH);
      const response = await this.api.lookupCards(chunk);
      for (const identity of chunk) {
        const cards = this.verifyAll(identity, response.cards?.[identity] ?? []);
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
   * A card by id, revoked or not (messages sent before a revocation still verify), checked
   * against the identity expected to own it.
   */
  async cardById(id: string, expectedIdentity: string | null): Promise<VerifiedCard> {
    const cached = this.byId.get(id);
    if (cached && Date.now() - cached.fetchedAt <= this.ttlMs) return this.checkOwner(cached.card, expectedIdentity);
    let wire: unknown;
    try {
      wire = await this.api.getCard(id);
    } catch (err) {
      if (cached) return this.checkOwner(cached.card, expectedIdentity); // stale beats nothing while offline
      throw new E2EEError(ErrorCode.CARD_UNAVAILABLE, `the sender's card ${id.slice(0, 16)}… could not be fetched: ${(err as Error).message}`, { cause: err });
    }
    const card = verifyCard(wire, { trustedAppKeys: this.trusted, allowRevoked: true });
    if (card.id !== id) throw new E2EEError(ErrorCode.CARD_ID_MISMATCH, 'the service answered with another card');
    this.byId.set(id, { card, fetchedAt: Date.now() });
    return this.checkOwner(card, expectedIdentity);
  }

  private checkOwner(card: VerifiedCard, expectedIdentity: string | null): VerifiedCard {
    if (expectedIdentity !== null && card.identity !== expectedIdentity) {
      throw new E2EEError(ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR, `signed by "${card.identity}" but posted by "${expectedIdentity}"`);
    }
    return card;
  }

  /** Serializes noteSeen per identity, so two concurrent lookups report one change once. */
  private readonly noting = new Map<string, Promise<void>>();

  private noteSeen(identity: string, cards: readonly VerifiedCard[]): Promise<void> {
    const next = (this.noting.get(identity) ?? Promise.resolve()).then(() => this.compareAndRemember(identity, cards));
    const settled = next.catch(() => undefined);
    this.noting.set(identity, settled);
    void settled.then(() => {
      if (this.noting.get(identity) === settled) this.noting.delete(identity);
    });
    return next;
  }

  private async compareAndRemember(identity: string, cards: readonly VerifiedCard[]): Promise<void> {
    const key = `known-cards:${this.me}:${identity}`;
    const ids = cards.map((c) => c.id).sort();
    const previousText = await this.keyStore.getState(key);
    const previous: string[] = previousText ? (JSON.parse(previousText) as string[]) : [];
    const added = ids.filter((id) => !previous.includes(id));
    const removed = previous.filter((id) => !ids.includes(id));
    if (added.length === 0 && removed.length === 0) return;
    await this.keyStore.setState(key, JSON.stringify(ids));
    // The first sight of an identity is the baseline, not a change.
    if (previousText !== null) this.events.keyChange({ identity, added, removed });
  }
}
