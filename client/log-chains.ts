/**
 * Identity chains as this client verified them from the transparency log (docs/PROTOCOL.md
 * 17.5, 17.6): each identity's events since the last one seen, each proven in a checkpoint the
 * LogView holds and chained to the one before (extendChain). What was verified is kept in the
 * key store, so each check asks only for the events that are new.
 */
import type { LogEventAuthorization, LogEventsResponse } from '../shared/api.js';
import { parseCardRequest } from '../shared/card.js';
import { fromB64u, toB64u } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { decodeCardEvent, emptyChain, extendChain, type CardEvent, type IdentityChain } from '../shared/log-event.js';
import type { ApiClient } from './api-client.js';
import type { DirectoryAlerts } from './directory-alert.js';
import type { KeyStore } from './key-store.js';
import type { LogHead, LogView } from './log-view.js';

/** A chain and the tree size it was verified up to. */
export interface VerifiedChain {
  chain: IdentityChain;
  /** The tree size of the last check (events with a lower index are all in `chain`). */
  size: number;
}

interface StoredChain {
  size: number;
  head: { seq: number; hash: string; time: number } | null;
  cards: IdentityChain['cards'];
}

/** An event as read, with the device proof that made it when the service kept one (PROTOCOL.md 17.8). */
export type LoggedEvent = CardEvent & { authorizedBy?: LogEventAuthorization };

/**
 * Sees each new event of an identity's chain once, whoever's check read it, with the chain they
 * extend; the chain is kept only after it resolves (a throw keeps nothing, so they come again).
 */
export type ChainObserver = (events: readonly LoggedEvent[], chain: IdentityChain) => Promise<void>;

/** Pages of events read per check (100 events each): a chain longer than this is read over several checks. */
const MAX_PAGES = 20;

export class IdentityChains {
  private readonly cache = new Map<string, Promise<VerifiedChain>>();
  private readonly syncing = new Map<string, Promise<{ verified: VerifiedChain; events: LoggedEvent[] }>>();
  private readonly observers = new Map<string, ChainObserver>();
  private readonly signKeys = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly api: ApiClient,
    private readonly view: LogView,
    private readonly keyStore: KeyStore,
    private readonly me: string,
  ) {}

  private key(identity: string): string {
    return `log-chain:${this.me}:${identity}`;
  }

  /** The chain verified so far (empty before the first check). */
  get(identity: string): Promise<VerifiedChain> {
    let chain = this.cache.get(identity);
    if (!chain) {
      chain = this.keyStore.getState(this.key(identity)).then((text) => {
        if (text === null) return { chain: emptyChain(identity), size: 0 };
        const stored = JSON.parse(text) as StoredChain;
        const head = stored.head && { ...stored.head, hash: fromB64u(stored.head.hash) };
        return { chain: { identity, head, cards: stored.cards }, size: stored.size };
      });
      this.cache.set(identity, chain);
      chain.catch(() => this.cache.delete(identity));
    }
    return chain;
  }

  /** Hands every new event of `identity`'s chain to `observer` (owner monitoring of its own chain). */
  observe(identity: string, observer: ChainObserver): void {
    this.observers.set(identity, observer);
  }

  /** The sign key of card `cardId` (fetched once): its id is the hash of the snapshot that names the key, so the service cannot swap it. */
  signKeyOf(cardId: string): Promise<Uint8Array> {
    let key = this.signKeys.get(cardId);
    if (!key) {
      key = this.api.getCard(cardId).then((wire) => {
        const card = parseCardRequest({ snapshot: wire.snapshot, selfSignature: wire.selfSignature });
        if (card.id !== cardId) throw new E2EEError(ErrorCode.SERVER_ERROR, `the service answered card ${card.id} for ${cardId}`);
        return fromB64u(card.fields.signKey);
      });
      this.signKeys.set(cardId, key);
      key.catch(() => this.signKeys.delete(cardId));
    }
    return key;
  }

  /** Forgets what was verified of the identity's chain: the next check reads it from its start. */
  async forget(identity: string): Promise<void> {
    await this.keyStore.setState(this.key(identity), null);
    this.cache.delete(identity);
  }

  /**
   * Reads the identity's events after its chain's head in the tree of `head` (the view's latest
   * by default), verifies each one's inclusion proof and that it extends the chain, and keeps the
   * result. Returns the chain and the new events, in order. One check per identity at a time.
   * Throws LOG_INCLUSION_INVALID, LOG_EVENT_MALFORMED or LOG_CHAIN_INVALID when the service's
   * answer does not hold (nothing is kept then).
   */
  sync(identity: string, head?: LogHead): Promise<{ verified: VerifiedChain; events: LoggedEvent[] }> {
    const running = this.syncing.get(identity);
    if (running) return running;
    const next = this.syncNow(identity, head).finally(() => this.syncing.delete(identity));
    this.syncing.set(identity, next);
    return next;
  }

  private async syncNow(identity: string, given?: LogHead): Promise<{ verified: VerifiedChain; events: LoggedEvent[] }> {
    const head = given ?? (await this.view.latest()) ?? (await this.view.refresh());
    const before = await this.get(identity);
    if (head.size <= before.size) return { verified: before, events: [] };
    const events: LoggedEvent[] = [];
    let chain = before.chain;
    let complete = false;
    for (let page = 0; page < MAX_PAGES && !complete; page++) {
      const since = chain.head ? chain.head.seq + 1 : 0;
      const answer: LogEventsResponse = await this.api.logEvents(identity, since, head.size);
      if (answer.size !== head.size || !Array.isArray(answer.events)) {
        throw new E2EEError(ErrorCode.LOG_INCLUSION_INVALID, `the events of ${identity} were proven in a tree of ${answer.size}, not ${head.size}`);
      }
      const read = answer.events.map(({ index, leaf, proof, authorizedBy }): LoggedEvent => {
        const bytes = fromB64u(leaf);
        this.view.verifyLeaf(bytes, index, head.size, proof);
        return { ...decodeCardEvent(bytes), ...(authorizedBy ? { authorizedBy } : {}) };
      });
      chain = extendChain(chain, read);
      events.push(...read);
      complete = !answer.more || read.length === 0;
    }
    // A chain read only in part is verified as far as it goes; the next check reads on.
    const verified = { chain, size: complete ? head.size : before.size };
    if (events.length > 0) await this.observers.get(identity)?.(events, chain);
    const stored: StoredChain = { size: verified.size, head: chain.head && { ...chain.head, hash: toB64u(chain.head.hash) }, cards: [...chain.cards] };
    await this.keyStore.setState(this.key(identity), JSON.stringify(stored));
    this.cache.set(identity, Promise.resolve(verified));
    return { verified, events };
  }
}

/** A chain the service's answers break (a missing, changed or reordered event): its history was rewritten, a fork. */
export async function reportBrokenChain(alerts: DirectoryAlerts, identity: string, err: unknown, mine: boolean): Promise<void> {
  if (!(err instanceof E2EEError) || err.code !== ErrorCode.LOG_CHAIN_INVALID) return;
  await alerts.raise({
    kind: 'log-fork',
    identity,
    message: `The card directory's log rewrote the device history of ${mine ? 'your account' : identity} (${err.message}). Nothing is sent until this is resolved: contact your administrator.`,
  });
}
