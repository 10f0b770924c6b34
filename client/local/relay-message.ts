/**
 * A message on the local relay, as the SDK's Message: a text body and media (type 'media' when it
 * has any), without subject, template or delivery receipts (which Twilio keeps for SMS, WhatsApp
 * and email recipients), answered as the SDK answers for such a message.
 */
import type { RelayMessageData } from '../../shared/relay-protocol.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import type { BaseMessage, JSONValue } from '../conversations.js';
import type { LocalConversation } from './relay-conversation.js';
import { LocalEmitter } from './relay-emitter.js';
import type { LocalParticipant } from './relay-participant.js';
import { LocalMedia, mediaSidsOf } from './relay-media.js';
import { cancellable } from './relay-unsupported.js';

export interface LocalMessageEvents {
  /** Never emitted: the relay hands a fresh object per event (the wrapper emits its own). */
  updated(data: { message: LocalMessage; updateReasons: string[] }): void;
}

export class LocalMessage extends LocalEmitter<LocalMessageEvents> implements BaseMessage {
  readonly sid: string;
  readonly index: number;
  readonly author: string;
  readonly body: string;
  readonly attributes: JSONValue;
  readonly dateCreated: Date;
  readonly dateUpdated: Date | null;
  /** The author's participant sid while the author is a participant; null after it left. */
  readonly participantSid: string | null;
  readonly type: 'text' | 'media';
  readonly subject: string | null = null;
  readonly contentSid: string | null = null;
  /** The media in the order sent (empty for a text message). */
  readonly attachedMedia: LocalMedia[];
  readonly aggregatedDeliveryReceipt: null = null;

  constructor(
    data: RelayMessageData,
    readonly conversation: LocalConversation,
  ) {
    super();
    this.sid = data.sid;
    this.index = data.index;
    this.author = data.author;
    this.body = data.body;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.dateUpdated = data.dateUpdated === null ? null : new Date(data.dateUpdated);
    this.participantSid = data.participantSid ?? null;
    const urls = (sids: string[]) => conversation.mediaUrls(sids);
    this.attachedMedia = (data.media ?? []).map((m) => new LocalMedia(m, urls));
    this.type = this.attachedMedia.length > 0 ? 'media' : 'text';
  }

  /** Only the author changes a message on the relay. */
  get lastUpdatedBy(): string | null {
    return this.dateUpdated === null ? null : this.author;
  }
  /** The first of attachedMedia, or null (the SDK's deprecated member). */
  get media(): LocalMedia | null {
    return this.attachedMedia[0] ?? null;
  }
  getMediaByCategory(categories: string[]): LocalMedia[] {
    return this.getMediaByCategories(categories);
  }
  getMediaByCategories(categories: string[]): LocalMedia[] {
    return this.attachedMedia.filter((m) => categories.includes(m.category));
  }
  getEmailBody(_type?: string): null {
    return null;
  }
  getEmailHistory(_type?: string): null {
    return null;
  }
  getContentData(): Promise<null> & { cancel(): void } {
    return cancellable(Promise.resolve(null));
  }
  async getChannelMetadata(): Promise<null> {
    return null;
  }
  async getDetailedDeliveryReceipts(): Promise<never[]> {
    return [];
  }
  async getMessageRecipients(): Promise<never[]> {
    return [];
  }
  /** Deprecated in the SDK, which resolves with the same media: URLs come from getContentTemporaryUrl. */
  async attachTemporaryUrlsFor(contentSet: LocalMedia[] | null): Promise<LocalMedia[]> {
    mediaSidsOf(contentSet ?? []);
    return contentSet ?? [];
  }
  /** Temporary URLs (5 minutes) by media sid, for media of conversations this user is in. */
  getTemporaryContentUrlsForMedia(contentSet: LocalMedia[]): Promise<Map<string, string>> & { cancel(): void } {
    return cancellable(this.conversation.mediaUrls(contentSet));
  }
  getTemporaryContentUrlsForMediaSids(mediaSids: string[]): Promise<Map<string, string>> & { cancel(): void } {
    return cancellable(this.conversation.mediaUrls(mediaSids));
  }
  getTemporaryContentUrlsForAttachedMedia(): Promise<Map<string, string>> & { cancel(): void } {
    return cancellable(this.conversation.mediaUrls(this.attachedMedia));
  }

  /** The author's participant, by participant sid, else by identity (as the SDK looks); NOT_FOUND after it left. */
  async getParticipant(): Promise<LocalParticipant> {
    const participant =
      (this.participantSid === null ? null : await this.conversation.getParticipantBySid(this.participantSid)) ??
      (await this.conversation.getParticipantByIdentity(this.author));
    if (!participant) throw new E2EEError(ErrorCode.NOT_FOUND, `the author of message ${this.sid} is not a participant any more`);
    return participant;
  }

  /** The author only, as updateAttributes and remove (FORBIDDEN otherwise). */
  async updateBody(body: string): Promise<LocalMessage> {
    return this.conversation.updateMessageBody(this.sid, body);
  }
  async updateAttributes(attributes: JSONValue): Promise<LocalMessage> {
    return this.conversation.relayMessage('updateMessageAttributes', { conversationSid: this.conversation.sid, messageSid: this.sid, attributes });
  }
  /** Removes the message for everyone (and its organization history copy); resolves with it. */
  async remove(): Promise<LocalMessage> {
    return this.conversation.relayMessage('removeMessage', { conversationSid: this.conversation.sid, messageSid: this.sid });
  }
}
