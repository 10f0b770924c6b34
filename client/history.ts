/**
 * Organization history on the client: backups of messages (an orgWrap of each message's CEK for
 * the OrgCard) posted through a persistent outbox, and rewraps fetched from the history service
 * for messages this device cannot open from its own slot (it, or its user, joined later).
 */
import type { HistoryPostRequest } from '../shared/api.js';
import { verifyCard, type TrustedAppKey, type VerifiedCard } from '../shared/card.js';
import { createRewrap, looksLikeEnvelope, parseEnvelope, type ParsedEnvelope } from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import { MAX_HISTORY_PAGE_MESSAGES, ORG_IDENTITY_PREFIX } from '../shared/limits.js';
import { answerStatus, type ApiClient } from './api-client.js';
import type { BaseMessage } from './conversations.js';
import type { KeyStore } from './key-store.js';
import type { RewrapSource } from './message-crypto.js';

/** Which messages this device backs up for the organization. */
export type BackupMode = 'off' | 'send' | 'send+receive';

export interface BackupFailure {
  conversationSid: string;
  messageSid: string;
  error: { code: string; message: string };
}

const RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

/**
 * Is a failed post worth retrying? Network trouble, 5xx, 408 and 429 are; other 4xx are final,
 * and so is HISTORY_DISABLED (a 503): a service without an OrgKey would be asked forever.
 */
function isTransient(err: unknown): boolean {
  if (isE2EEError(err, ErrorCode.NETWORK_ERROR)) return true;
  if (isE2EEError(err, ErrorCode.HISTORY_DISABLED)) return false;
  const status = answerStatus(err) ?? 0;
  return status >= 500 || status === 408 || status === 429;
}

/** A failure as BackupFailure reports it: the error's code unchanged. */
export function failureOf(err: unknown): BackupFailure['error'] {
  return isE2EEError(err) ? err.toJSON() : { code: 'UNKNOWN', message: String(err) };
}

/**
 * Posts backups in order, one at a time, persisted in the key store so a reload, an offline
 * period or a server error loses nothing: an entry leaves the outbox only when the service
 * acknowledged it, or refused it for good (then `onFailure` reports it).
 */
export class HistoryOutbox {
  private flushing = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Serializes read-modify-write of the persisted list. */
  private persisting: Promise<void> = Promise.resolve();

  constructor(
    private readonly keyStore: KeyStore,
    private readonly stateKey: string,
    private readonly post: (entry: HistoryPostRequest) => Promise<unknown>,
    private readonly onFailure: (failure: BackupFailure) => void,
  ) {}

  private async entries(): Promise<HistoryPostRequest[]> {
    const text = await this.keyStore.getState(this.stateKey);
    return text ? (JSON.parse(text) as HistoryPostRequest[]) : [];
  }

  private update(change: (entries: HistoryPostRequest[]) => HistoryPostRequest[]): Promise<void> {
    const next = this.persisting.then(async () => {
      const entries = change(await this.entries());
      await this.keyStore.setState(this.stateKey, entries.length ? JSON.stringify(entries) : null);
    });
    this.persisting = next.catch(() => undefined);
    return next;
  }

  /** Entries not yet acknowledged. */
  async pending(): Promise<number> {
    await this.persisting;
    return (await this.entries()).length;
  }

  async add(entry: HistoryPostRequest): Promise<void> {
    await this.update((entries) =>
      entries.some((e) => e.conversationSid === entry.conversationSid && e.messageSid === entry.messageSid) ? entries : [...entries, entry],
    );
    void this.flush();
  }

  /** Posts everything pending; on a transient failure, retries later with backoff. */
  async flush(): Promise<void> {
    if (this.flushing || this.stopped) return;
    this.flushing = true;
    clearTimeout(this.timer);
    try {
      for (;;) {
        await this.persisting;
        const [entry] = await this.entries();
        if (!entry) break;
        try {
          await this.post(entry);
        } catch (err) {
          if (isTransient(err)) {
            const delay = RETRY_DELAYS_MS[Math.min(this.attempt++, RETRY_DELAYS_MS.length - 1)]!;
            this.timer = setTimeout(() => void this.flush(), delay);
            return;
          }
          this.onFailure({ conversationSid: entry.conversationSid, messageSid: entry.messageSid, error: failureOf(err) });
        }
        this.attempt = 0;
        await this.update((entries) => entries.filter((e) => !(e.conversationSid === entry.conversationSid && e.messageSid === entry.messageSid)));
      }
    } finally {
      this.flushing = false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

/** Verifies the OrgCard served by /v1/org-card against the pinned AppKey(s). */
export async function fetchOrgCard(api: ApiClient, trusted: readonly TrustedAppKey[]): Promise<VerifiedCard | null> {
  let wire;
  try {
    wire = await api.orgCard();
  } catch (err) {
    if (isE2EEError(err, ErrorCode.HISTORY_DISABLED)) return null; // no OrgKey: no backups at all
    throw err;
  }
  const card = verifyCard(wire, { trustedAppKeys: trusted });
  if (!card.identity.startsWith(ORG_IDENTITY_PREFIX)) {
    throw new E2EEError(ErrorCode.CARD_IDENTITY_MISMATCH, `the OrgCard must have an "${ORG_IDENTITY_PREFIX}" identity`);
  }
  return card;
}

/** The orgWrap of a message: its CEK rewrapped to the OrgCard's box key. */
export function orgWrapFor(cek: Uint8Array, envelope: ParsedEnvelope, orgCard: VerifiedCard): string {
  return createRewrap(cek, envelope, orgCard.boxPublicKey);
}

/** A live message may arrive before its sender's backup does: ask again a few times. */
const LIVE_RETRY_DELAYS_MS = [500, 1_000, 2_000];

/** Rewraps from the history service, fetched once per page of messages and cached by message sid. */
export class HistoryRewraps implements RewrapSource {
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly api: ApiClient,
    private readonly cardId: () => string,
    /** True when the envelope has no slot for this device. */
    private readonly needsRewrap: (parsed: ParsedEnvelope) => boolean,
  ) {}

  private key(conversationSid: string, messageSid: string): string {
    return `${conversationSid}/${messageSid}`;
  }

  /** Fetches, in as few requests as the page size allows, the rewraps for messages in [from, to]. */
  private async fetchRange(conversationSid: string, from: number, to: number): Promise<void> {
    let after = from - 1;
    while (after < to) {
      const limit = Math.min(MAX_HISTORY_PAGE_MESSAGES, to - after);
      const { messages, truncated } = await this.api.history(conversationSid, this.cardId(), after, limit);
      for (const m of messages) this.cache.set(this.key(conversationSid, m.messageSid), m.rewrap);
      // A short page is the end, unless the server's byte cap cut it (then more follow).
      if (messages.length === 0 || (messages.length < limit && !truncated)) break;
      after = messages[messages.length - 1]!.index;
    }
  }

  /** Before a page is opened: one request for every message of the page that needs a rewrap. */
  async prefetch(conversationSid: string, messages: readonly BaseMessage[]): Promise<void> {
    const needed = messages.filter((m) => !this.cache.has(this.key(conversationSid, m.sid)) && this.lacksSlot(m));
    if (needed.length === 0) return;
    const indexes = needed.map((m) => m.index);
    try {
      await this.fetchRange(conversationSid, Math.min(...indexes), Math.max(...indexes));
    } catch {
      // The messages then fail individually with a clear error; the page itself still loads.
    }
  }

  private lacksSlot(message: BaseMessage): boolean {
    if (!looksLikeEnvelope(message.body)) return false;
    try {
      return this.needsRewrap(parseEnvelope(message.body));
    } catch {
      return false;
    }
  }

  async rewrapFor(conversationSid: string, message: BaseMessage): Promise<string | null> {
    const key = this.key(conversationSid, message.sid);
    for (let attempt = 0; ; attempt++) {
      const cached = this.cache.get(key);
      if (cached !== undefined) return cached;
      if (attempt > LIVE_RETRY_DELAYS_MS.length) return null;
      if (attempt > 0) await new Promise((r) => setTimeout(r, LIVE_RETRY_DELAYS_MS[attempt - 1]));
      try {
        await this.fetchRange(conversationSid, message.index, message.index);
      } catch (err) {
        if (!isTransient(err)) return null;
      }
    }
  }
}
