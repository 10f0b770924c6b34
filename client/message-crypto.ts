/**
 * Sealing and opening message bodies for one device: who the recipients are (every active card
 * of every participant plus the sender's own devices), and what the app is told about each
 * message it receives (`e2ee`: verified, unencrypted or failed, and why).
 */
import type { VerifiedCard } from '../shared/card.js';
import { MAX_SENT_AT_SKEW_MS } from '../shared/limits.js';
import {
  clearAttributesMatch,
  findSlots,
  looksLikeEnvelope,
  openEnvelopeAsync,
  parseEnvelope,
  payloadAttributes,
  payloadEdit,
  sealEnvelopeAsync,
  splitAttributes,
  type EditMarker,
  type EnvelopePayload,
  type JsonValue,
  type ParsedEnvelope,
  type SealedEnvelope,
} from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { AsyncDeviceKeys } from '../shared/keys.js';
import { payloadAttachments, payloadCheckpoint, type PayloadAttachment } from '../shared/payload.js';
import type { E2EEAttachment } from './attachment.js';
import type { CardDirectory } from './card-directory.js';
import type { BaseConversation, BaseMessage } from './conversations.js';
import type { MessageChecks } from './message-checks.js';
import type { AuditFinding } from './recipient-audit.js';
import type { ReplayMemory } from './replay-memory.js';

/** What the wrapper reports about each message. */
export interface E2EEInfo {
  status: 'verified' | 'unencrypted' | 'failed';
  /** 'direct': opened from this device's own slot; 'history': through the organization's rewrap. */
  via: 'direct' | 'history';
  senderCardId?: string;
  senderDeviceName?: string;
  error?: { code: string; message: string };
  /**
   * Directory findings about this verified message (the recipient audit, the sender's gossiped
   * checkpoint): it still shows, marked; each is also raised as a `directoryAlert`. Absent when none.
   */
  alerts?: readonly AuditFinding[];
  /** The files sent with a verified message, with their signed names, types and sizes; empty for others. */
  attachments: readonly E2EEAttachment[];
}

/** E2EEInfo as opening makes it; the wrapped message adds the attachments (which need its media). */
export type MessageStatus = Omit<E2EEInfo, 'attachments'>;

export interface OpenedBody {
  /** The plaintext; for failed messages a fixed notice, never the unverified text. */
  body: string | null;
  /**
   * The attributes apps see: the signed, decrypted ones (version 2 payloads); Twilio's, unverified,
   * for version 1 payloads and unencrypted messages; `{}` for failed messages.
   */
  attributes: unknown;
  e2ee: MessageStatus;
  /** The signed files of a verified message (version 3 payloads); empty otherwise. */
  attachments: readonly PayloadAttachment[];
  /** For verified messages: the envelope and its CEK, so a backup can be made (never shown to apps). */
  opened?: {
    envelope: ParsedEnvelope;
    cek: Uint8Array;
    messageId: string;
    sentAt: number;
    /** The messageId of the message's first version (editOf for an edit), and this version's edit counter (0: the original). */
    original: string;
    edit: number;
    /** The signer's identity. */
    signer: string;
    /** A version 2 payload: its edits are bound to their original (editOf, edit). */
    bound: boolean;
  };
}

/** What a message carries beyond its body. */
export interface SealContent {
  attributes?: JsonValue;
  /** For an edit: the version edited (its `opened`), whose original it is bound to. */
  edit?: EditMarker;
  /** Files: their previews are dropped, the largest first, when the envelope would not fit. */
  attachments?: readonly PayloadAttachment[];
}

/** The body apps see for a message that failed verification: never the attacker's text. */
export const FAILED_BODY = '⚠ This message could not be verified and is not shown.';

/** Finds rewraps for messages sealed before this device could read them (organization history). */
export interface RewrapSource {
  rewrapFor(conversationSid: string, message: BaseMessage): Promise<string | null>;
}

export class MessageCrypto {
  rewraps: RewrapSource | null = null;
  /** The card log's checks on the message path (gossip out and in, the recipient audit); none without them. */
  checks: MessageChecks | null = null;

  constructor(
    readonly identity: string,
    private readonly keys: AsyncDeviceKeys,
    readonly card: VerifiedCard,
    private readonly directory: CardDirectory,
    /** Which messages were shown (persisted): decides replays and rollbacks. */
    private readonly shown: ReplayMemory,
    /** Top-level attribute keys sent in the clear (still signed): the clearAttributes option. */
    private readonly clearKeys: readonly string[] = [],
  ) {}

  /**
   * Seals a body, attributes and files (a version 2 or 3 payload; an edit when `content.edit` is
   * given) for every device of every participant and the sender's other devices. Previews are
   * dropped, the largest first, while the envelope would exceed Twilio's body limit.
   */
  async seal(conversation: BaseConversation, body: unknown, content: SealContent = {}): Promise<SealedEnvelope> {
    if (typeof body !== 'string') throw new E2EEError(ErrorCode.UNSUPPORTED_CONTENT, 'a message body must be text (files go as media)');
    splitAttributes(content.attributes, this.clearKeys); // ATTRIBUTES_TOO_LARGE before any network call
    const recipients = await this.recipients(conversation);
    let attachments = [...(content.attachments ?? [])];
    const log = await this.checks?.latest().catch(() => undefined);
    for (;;) {
      const payloadContent = { attributes: content.attributes, clearKeys: this.clearKeys, attachments, ...(content.edit && { edit: content.edit }), ...(log && log.size > 0 && { log }) };
      try {
        return await sealEnvelopeAsync({ sender: { cardId: this.card.id, keys: this.keys }, recipients, conversationSid: conversation.sid, body, content: payloadContent });
      } catch (err) {
        const largest = attachments.reduce((best, a, i) => ((a.preview?.bytes.length ?? 0) > (attachments[best]?.preview?.bytes.length ?? 0) ? i : best), 0);
        if (!isE2EEError(err, ErrorCode.ENVELOPE_TOO_LARGE) || !attachments[largest]?.preview) throw err;
        attachments = attachments.map((a, i) => (i === largest ? { file: a.file } : a));
      }
    }
  }

  /** Every active card of every participant and of this identity; refusals before anything is sent. */
  private async recipients(conversation: BaseConversation): Promise<VerifiedCard[]> {
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
    return [...cards.values()].flat();
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
    if (!looksLikeEnvelope(text)) return { body: text, attributes: message.attributes, e2ee: { status: 'unencrypted', via: 'direct' }, attachments: [] };
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
      const opened = await openEnvelopeAsync(parsed, {
        recipient: { cardId: this.card.id, keys: this.keys },
        rewrap,
        senderCard,
        conversationSid,
        author: message.author,
        sentAt: (payload) => transportTime(payload, message),
      });
      const { payload } = opened;
      checkSentAt(payload, message);
      if (!clearAttributesMatch(payload, message.attributes)) {
        throw new E2EEError(ErrorCode.ENVELOPE_ATTRIBUTES_MISMATCH, "the message's attributes on the service are not the clear attributes its sender signed");
      }
      const edit = payloadEdit(payload);
      const alerts = this.checks && via === 'direct' ? await this.checkRecipients(this.checks, message, parsed, payload, senderCard.identity) : [];
      return {
        body: payload.body,
        attributes: payloadAttributes(payload) ?? message.attributes,
        e2ee: { status: 'verified', via, senderCardId: senderCard.id, senderDeviceName: senderCard.fields.deviceName, ...(alerts.length > 0 && { alerts }) },
        attachments: payloadAttachments(payload),
        opened: {
          envelope: parsed,
          cek: opened.cek,
          messageId: payload.messageId,
          sentAt: payload.sentAt,
          original: edit?.of ?? payload.messageId,
          edit: edit?.n ?? 0,
          signer: senderCard.identity,
          bound: payload.v === 2,
        },
      };
    } catch (err) {
      const error = isE2EEError(err) ? err.toJSON() : { code: ErrorCode.ENVELOPE_MALFORMED, message: (err as Error).message };
      const e2ee: MessageStatus = { status: 'failed', via, error };
      if (senderCard) e2ee.senderCardId = senderCard.id;
      return { body: FAILED_BODY, attributes: {}, e2ee, attachments: [] };
    }
  }

  /**
   * The recipient audit and the gossip check of a message opened from this device's slot (a
   * history copy was sealed before this device could read it: its recipients audited theirs).
   */
  private async checkRecipients(checks: MessageChecks, message: BaseMessage, envelope: ParsedEnvelope, payload: EnvelopePayload, sender: string): Promise<AuditFinding[]> {
    const checkpoint = payloadCheckpoint(payload);
    const { checkMessage } = await import('./on-demand.js');
    return checkMessage(checks, { conversation: message.conversation, envelope, sentAt: payload.sentAt, sender, messageSid: message.sid, ...(checkpoint && { checkpoint }) });
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
    const { messageId, sentAt, original, edit, signer, bound } = result.opened;
    const refusal = await this.shown.admit(conversationSid, { messageId, messageSid: message.sid, index: message.index, sentAt, original, edit, signer, bound });
    if (refusal === null) return result;
    const e2ee: MessageStatus = { status: 'failed', via: result.e2ee.via, error: new E2EEError(refusal, REFUSALS[refusal]).toJSON() };
    if (result.e2ee.senderCardId !== undefined) e2ee.senderCardId = result.e2ee.senderCardId;
    return { body: FAILED_BODY, attributes: {}, e2ee, attachments: [] };
  }
}

const REFUSALS = {
  [ErrorCode.ENVELOPE_REPLAY]: 'this message was already delivered in this conversation',
  [ErrorCode.ENVELOPE_ROLLBACK]: 'this is an older version of a message already shown edited',
  [ErrorCode.ENVELOPE_EDIT_MISMATCH]: 'this edit is bound to another message than the one it replaces',
  [ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR]: 'this edit is signed by someone other than the author of the message',
} as const;

/** Whether a payload is an edit: signed as one (version 2), or, version 1, signed too long after the message was created to be its original. */
function isEdit(payload: EnvelopePayload, created: number): boolean {
  return payload.v === 2 ? payload.edit !== undefined : payload.sentAt > created + MAX_SENT_AT_SKEW_MS;
}

/**
 * The transport's time of this version, for the revocation check: dateCreated for an original,
 * and for an edit the time of the last update (dateUpdated, never earlier than the edit). A
 * later update of an original's attributes (a reaction) therefore does not move its time.
 */
function transportTime(payload: EnvelopePayload, message: BaseMessage): number | undefined {
  const created = message.dateCreated?.getTime();
  if (created === undefined || Number.isNaN(created)) return undefined;
  const updated = message.dateUpdated?.getTime();
  return isEdit(payload, created) && updated !== undefined && !Number.isNaN(updated) ? Math.max(created, updated) : created;
}

/**
 * The signed sentAt must lie within MAX_SENT_AT_SKEW_MS of the transport's own timestamps: of
 * dateCreated for an original (version 2), from dateCreated to dateUpdated for an edit or a version
 * 1 payload. An old envelope posted again as a new message is not "sent now", whatever its
 * signature says.
 */
function checkSentAt(payload: EnvelopePayload, message: BaseMessage): void {
  const { sentAt } = payload;
  const created = message.dateCreated?.getTime();
  if (created === undefined || Number.isNaN(created)) return; // a transport without timestamps: nothing to compare with
  const original = payload.v === 2 && payload.edit === undefined;
  const updated = original ? created : Math.max(created, message.dateUpdated?.getTime() ?? created);
  if (sentAt < created - MAX_SENT_AT_SKEW_MS || sentAt > updated + MAX_SENT_AT_SKEW_MS) {
    throw new E2EEError(
      ErrorCode.ENVELOPE_SENT_AT_MISMATCH,
      `signed at ${new Date(sentAt).toISOString()} but posted at ${new Date(created).toISOString()}: more than ${MAX_SENT_AT_SKEW_MS / 60_000} minutes apart`,
    );
  }
}
