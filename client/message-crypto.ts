/**
 * Sealing and opening message bodies for one device: who the recipients are (every active card
 * of every participant plus the sender's own devices), and what the app is told about each
 * message it receives (`e2ee`: verified, unencrypted or failed, and why).
 */
import type { VerifiedCard } from '../shared/card.js';
import { MAX_SENT_AT_SKEW_MS } from '../shared/limits.js';
import { findSlots, openEnvelopeAsync, parseEnvelope, looksLikeEnvelope, sealEnvelopeAsync, type ParsedEnvelope, type SealedEnvelope } from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { AsyncDeviceKeys } from '../shared/keys.js';
import type { CardDirectory } from './card-directory.js';
import type { BaseConversation, BaseMessage } from './conversations.js';
import type { ReplayMemory } from './replay-memory.js';

/** What the wrapper reports about each message. */
export interface E2EEInfo {
  status: 'verified' | 'unencrypted' | 'failed';
  /** 'direct': opened from this device's own slot; 'history': through the organization's rewrap. */
  via: 'direct' | 'history';
  senderCardId?: string;
  senderDeviceName?: string;
  error?: { code: string; message: string };
}

export interface OpenedBody {
  /** The plaintext; for failed messages a fixed notice, never the unverified text. */
  body: string | null;
  e2ee: E2EEInfo;
  /** For verified messages: the envelope and its CEK, so a backup can be made (never shown to apps). */
  opened?: { envelope: ParsedEnvelope; cek: Uint8Array; messageId: string; sentAt: number };
}

/** The body apps see for a message that failed verification: never the attacker's text. */
export const FAILED_BODY = '⚠ This message could not be verified and is not shown.';

/** Finds rewraps for messages sealed before this device could read them (organization history). */
export interface RewrapSource {
  rewrapFor(conversationSid: string, message: BaseMessage): Promise<string | null>;
}

export class MessageCrypto {
  rewraps: RewrapSource | null = null;

  constructor(
    readonly identity: string,
    private readonly keys: AsyncDeviceKeys,
    readonly card: VerifiedCard,
    private readonly directory: CardDirectory,
    /** Which messages were shown (persisted): decides replays and rollbacks. */
    private readonly shown: ReplayMemory,
  ) {}

  /** Seals a body for every device of every participant and the sender's other devices. */
  async seal(conversation: BaseConversation, body: unknown): Promise<SealedEnvelope> {
    if (typeof body !== 'string') {
      throw new E2EEError(ErrorCode.UNSUPPORTED_CONTENT, 'only text bodies can be sent end-to-end encrypted (media and email content are refused)');
    }
    const participants = await conversation.getParticipants();
    const nonChat = participants.filter((p) => p.identity === null || (p.type !== undefined && p.type !== 'chat'));
    if (nonChat.length > 0) {
      throw new E2EEError(
        ErrorCode.NON_CHAT_PARTICIPANT,
        `this conversation has ${nonChat.length} participant(s) outside chat (${nonChat.map((p) => p.type).join(', ')}) who cannot decrypt; nothing was sent`,
        { details: { participants: nonChat.map((p) => p.sid) } },
      );
    }
    const identities = [...new Set(participants.map((p) => p.identity!))];
    const cards = await this.directory.activeCards([...new Set([...identities, this.identity])]);
    const missing = identities.filter((i) => i !== this.identity && cards.get(i)!.length === 0);
    if (missing.length > 0) {
      throw new E2EEError(ErrorCode.NO_CARDS, `no registered device for ${missing.join(', ')}; nothing was sent`, { details: { identities: missing } });
    }
    const mine = cards.get(this.identity)!;
    if (!mine.some((c) => c.id === this.card.id)) {
      throw new E2EEError(ErrorCode.DEVICE_NOT_REGISTERED, "this device's card is no longer active (revoked?): register again");
    }
    const recipients = [...cards.values()].flat();
    return sealEnvelopeAsync({ sender: { cardId: this.card.id, keys: this.keys }, recipients, conversationSid: conversation.sid, body });
  }

  /** True when the envelope has a slot addressed to this device. */
  hasSlot(parsed: ParsedEnvelope): boolean {
    return findSlots(parsed, this.card.id).length > 0;
  }

  /** Decrypts, verifies and admits (see `admit`) one message. Never throws: failures come back as status 'failed'. */
  async open(conversationSid: string, message: BaseMessage): Promise<OpenedBody> {
    return await this.admit(conversationSid, message, await this.decrypt(conversationSid, message));
  }

  /**
   * Decrypts and verifies a received message, all but the replay check, which `admit` makes in
   * delivery order. Never throws: failures come back as status 'failed'.
   */
  async decrypt(conversationSid: string, message: BaseMessage): Promise<OpenedBody> {
    const text = message.body;
    if (!looksLikeEnvelope(text)) return { body: text, e2ee: { status: 'unencrypted', via: 'direct' } };
    let via: E2EEInfo['via'] = 'direct';
    let senderCard: VerifiedCard | undefined;
    try {
      const parsed = parseEnvelope(text);
      senderCard = await this.directory.senderCard(parsed.senderCardId, message.author);
      let rewrap: string | undefined;
      if (!this.hasSlot(parsed)) {
        via = 'history';
        const found = this.rewraps ? await this.rewraps.rewrapFor(conversationSid, message) : null;
        if (found === null) throw new E2EEError(ErrorCode.ENVELOPE_NOT_FOR_ME, 'this message was not sealed for this device and no history copy is available');
        rewrap = found;
      }
      const sentAt = (message.dateUpdated ?? message.dateCreated)?.getTime();
      const opened = await openEnvelopeAsync(parsed, {
        recipient: { cardId: this.card.id, keys: this.keys },
        rewrap,
        senderCard,
        conversationSid,
        author: message.author,
        sentAt,
      });
      checkSentAt(opened.payload.sentAt, message);
      return {
        body: opened.payload.body,
        e2ee: { status: 'verified', via, senderCardId: senderCard.id, senderDeviceName: senderCard.fields.deviceName },
        opened: { envelope: parsed, cek: opened.cek, messageId: opened.payload.messageId, sentAt: opened.payload.sentAt },
      };
    } catch (err) {
      const error = isE2EEError(err) ? err.toJSON() : { code: ErrorCode.ENVELOPE_MALFORMED, message: (err as Error).message };
      const e2ee: E2EEInfo = { status: 'failed', via, error };
      if (senderCard) e2ee.senderCardId = senderCard.id;
      return { body: FAILED_BODY, e2ee };
    }
  }

  /**
   * The replay and rollback check (ReplayMemory): a messageId that first appeared at a lower
   * index under another message sid makes this message a replay; an older version of a message
   * already shown newer is a rollback. The wrapper calls it in the order messages reach the app
   * (index order), not in the order their decryption finished: decided at decryption, a slow card
   * lookup for the original would let its replayed copy through as the verified one.
   */
  async admit(conversationSid: string, message: BaseMessage, result: OpenedBody): Promise<OpenedBody> {
    if (result.e2ee.status !== 'verified' || !result.opened) return result;
    const { messageId, sentAt } = result.opened;
    const refusal = await this.shown.admit(conversationSid, { messageId, messageSid: message.sid, index: message.index, sentAt });
    if (refusal === null) return result;
    const why = refusal === ErrorCode.ENVELOPE_REPLAY ? 'this message was already delivered in this conversation' : 'this is an older version of a message already shown edited';
    const e2ee: E2EEInfo = { status: 'failed', via: result.e2ee.via, error: new E2EEError(refusal, why).toJSON() };
    if (result.e2ee.senderCardId !== undefined) e2ee.senderCardId = result.e2ee.senderCardId;
    return { body: FAILED_BODY, e2ee };
  }
}

/**
 * The signed sentAt must lie within MAX_SENT_AT_SKEW_MS of the transport's own timestamps (from
 * dateCreated to dateUpdated, for edits): an old envelope posted again as a new message is not
 * "sent now", whatever its signature says.
 */
function checkSentAt(sentAt: number, message: BaseMessage): void {
  const created = message.dateCreated?.getTime();
  if (created === undefined || Number.isNaN(created)) return; // a transport without timestamps: nothing to compare with
  const updated = Math.max(created, message.dateUpdated?.getTime() ?? created);
  if (sentAt < created - MAX_SENT_AT_SKEW_MS || sentAt > updated + MAX_SENT_AT_SKEW_MS) {
    throw new E2EEError(
      ErrorCode.ENVELOPE_SENT_AT_MISMATCH,
      `signed at ${new Date(sentAt).toISOString()} but posted at ${new Date(created).toISOString()}: more than ${MAX_SENT_AT_SKEW_MS / 60_000} minutes apart`,
    );
  }
}
