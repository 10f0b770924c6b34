/**
 * Organization backups as a device makes them: after a send (and, with `send+receive`, a verified
 * receive) the message's CEK is wrapped for the trusted OrgCard and queued in the persistent
 * outbox. Preparing a backup retries the lookups it needs, and a backup for a changed OrgCard is
 * held until the app accepts it, so nothing is lost silently: what cannot be backed up is reported.
 */
import type { VerifiedCard } from '../shared/card.js';
import { parseEnvelope, type ParsedEnvelope } from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { BaseConversation, BaseMessage } from './conversations.js';
import { failureOf, orgWrapFor, type BackupFailure, type HistoryOutbox } from './history.js';
import type { OrgKeyTrust } from './org-key.js';

/** Backups held in memory while a changed OrgCard waits for the app's decision; beyond this they are reported failed. */
const MAX_HELD_BACKUPS = 1_000;

/**
 * Waits between attempts while preparing a backup. The send succeeded, so the message exists; a
 * failing lookup (or OrgCard fetch) means the service is briefly unavailable, and giving up at
 * once would lose the message's backup.
 */
const BACKUP_RETRY_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/** Runs `attempt` until it succeeds, waiting BACKUP_RETRY_DELAYS_MS between tries; then gives up. */
async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = BACKUP_RETRY_DELAYS_MS[i];
      if (delay === undefined) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** The message the service stored at `index`. */
async function findSentMessage(conversation: BaseConversation, index: number): Promise<BaseMessage> {
  const [message] = (await conversation.getMessages(1, index, 'forward')).items;
  if (!message || message.index !== index) throw new Error(`message ${index} not found after sending`);
  return message;
}

/** What a backup needs of its message: its envelope is `body`. */
type BackedUpMessage = Pick<BaseMessage, 'sid' | 'index' | 'body'>;

interface HeldBackup {
  conversationSid: string;
  message: BackedUpMessage;
  envelope: ParsedEnvelope;
  cek: Uint8Array;
}

export class Backups {
  /** Backups being prepared (before they reach the outbox). */
  private preparing = 0;
  /** Backups waiting for the app to accept a changed OrgCard. */
  private held: HeldBackup[] = [];

  constructor(
    readonly outbox: HistoryOutbox,
    private readonly orgKeys: OrgKeyTrust,
    private readonly onFailure: (failure: BackupFailure) => void,
  ) {}

  /** Backups not yet acknowledged by the history service (being prepared, held for a changed OrgCard, or in the outbox). */
  async pending(): Promise<number> {
    return this.preparing + this.held.length + (await this.outbox.pending());
  }

  /** After a send: find the message the service stored at `index` and back it up. */
  async afterSend(conversation: BaseConversation, binary: Uint8Array, cek: Uint8Array, index: number): Promise<void> {
    this.preparing++;
    try {
      const message = await withRetries(() => findSentMessage(conversation, index));
      await this.backUp(conversation.sid, message, parseEnvelope(binary), cek);
    } catch (err) {
      this.report(conversation.sid, `#${index}`, err);
    } finally {
      this.preparing--;
    }
  }

  /**
   * After an edit: back up the version just sealed (the history service keeps the newest version
   * of each message). Posted with the sealed text, not the message object's body, which the SDK
   * updates only when the service's update arrives.
   */
  async afterEdit(conversationSid: string, message: Pick<BaseMessage, 'sid' | 'index'>, text: string, binary: Uint8Array, cek: Uint8Array): Promise<void> {
    await this.backUp(conversationSid, { sid: message.sid, index: message.index, body: text }, parseEnvelope(binary), cek);
  }

  /** Wraps the message's CEK for the trusted OrgCard and queues it in the outbox (or holds it, for a changed OrgCard). */
  async backUp(conversationSid: string, message: BackedUpMessage, envelope: ParsedEnvelope, cek: Uint8Array): Promise<void> {
    this.preparing++;
    try {
      await withRetries(() => this.orgKeys.current());
      let orgCard: VerifiedCard | null;
      try {
        orgCard = await this.orgKeys.forBackup();
      } catch (err) {
        if (!isE2EEError(err, ErrorCode.ORG_KEY_CHANGED) || this.held.length >= MAX_HELD_BACKUPS) throw err;
        this.held.push({ conversationSid, message, envelope, cek });
        return;
      }
      if (!orgCard) throw new E2EEError(ErrorCode.HISTORY_DISABLED, 'the service runs without organization history');
      await this.outbox.add({
        conversationSid,
        messageSid: message.sid,
        index: message.index,
        envelope: message.body!,
        orgWrap: orgWrapFor(cek, envelope, orgCard),
      });
    } catch (err) {
      this.report(conversationSid, message.sid, err);
    } finally {
      this.preparing--;
    }
  }

  /** After the app accepted a changed OrgCard: the held backups go out. */
  async releaseHeld(): Promise<void> {
    for (const held of this.held.splice(0)) await this.backUp(held.conversationSid, held.message, held.envelope, held.cek);
  }

  private report(conversationSid: string, messageSid: string, err: unknown): void {
    this.onFailure({ conversationSid, messageSid, error: failureOf(err) });
  }
}
