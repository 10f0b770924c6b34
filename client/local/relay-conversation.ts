/**
 * A conversation on the local relay, as the SDK's Conversation (client/local/relay-client.ts is
 * its client). What the relay stores is answered from it; what it does not carry is answered as
 * the SDK answers when the feature is not in use, or refused (relay-unsupported.ts).
 */
import {
  TYPING_TIMEOUT_MS,
  type RelayConversationData,
  type RelayOps,
  type RelayParticipantData,
} from '../../shared/relay-protocol.js';
import type { BaseConversation, BaseMessageBuilder, BasePaginator, JSONValue } from '../conversations.js';
import type { LocalConversationsClient } from './relay-client.js';
import { LocalEmitter } from './relay-emitter.js';
import { mediaSidsOf, prepareUploads, type LocalMediaInput } from './relay-media.js';
import { LocalMessage } from './relay-message.js';
import { LocalPaginator } from './relay-paginator.js';
import { LocalParticipant } from './relay-participant.js';
import { relayConversationLimits, unsupported } from './relay-unsupported.js';

export { LocalMessage } from './relay-message.js';
export { LocalPaginator } from './relay-paginator.js';
export { LocalParticipant } from './relay-participant.js';

class LocalMessageBuilder implements BaseMessageBuilder {
  private body: string | undefined;
  private attributes: JSONValue | undefined;
  private readonly media: LocalMediaInput[] = [];
  constructor(private readonly conversation: LocalConversation) {}
  setBody(text: string): this {
    this.body = text;
    return this;
  }
  setAttributes(attributes: JSONValue): this {
    this.attributes = attributes;
    return this;
  }
  /** Adds a blob (SendMediaOptions or a FormData with a file), uploaded when the message is sent. */
  addMedia(payload: LocalMediaInput): this {
    this.media.push(payload);
    return this;
  }
  build(): { send(): Promise<number> } {
    const { body, attributes } = this;
    const media = [...this.media];
    return { send: () => this.conversation.send(body, attributes, media) };
  }
  buildAndSend(): Promise<number> {
    return this.build().send();
  }
}

export interface LocalConversationEvents {
  messageAdded(message: LocalMessage): void;
  messageUpdated(data: { message: LocalMessage; updateReasons: string[] }): void;
  messageRemoved(message: LocalMessage): void;
  typingStarted(participant: LocalParticipant): void;
  typingEnded(participant: LocalParticipant): void;
  updated(data: { conversation: LocalConversation; updateReasons: string[] }): void;
  participantJoined(participant: LocalParticipant): void;
  participantLeft(participant: LocalParticipant): void;
  participantUpdated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
  /** This user left or was removed. */
  removed(conversation: LocalConversation): void;
}

export class LocalConversation extends LocalEmitter<LocalConversationEvents> implements BaseConversation {
  readonly sid: string;
  uniqueName: string | null = null;
  friendlyName: string | null = null;
  readonly createdBy: string;
  attributes: JSONValue = {};
  readonly dateCreated: Date;
  /** When this client saw the conversation change (the relay stores no such time); dateCreated until then. */
  dateUpdated: Date;
  /** This user's read horizon here: the index of the last message read; null when never set. */
  lastReadMessageIndex: number | null = null;
  /** Whether this user is a participant (a push reaches participants only; an answer says). */
  status: 'joined' | 'notParticipating' = 'joined';
  /** The newest message (index and time); undefined when there is none. */
  lastMessage: { index: number; dateCreated: Date } | undefined;
  /** The relay sends no push notifications, so it keeps no notification level (setUserNotificationLevel is refused). */
  readonly notificationLevel = 'default';
  /** Bindings describe SMS and email conversations; a relay conversation has none. */
  readonly bindings = {};
  /** One participant object per identity, updated in place (as the SDK keeps them). */
  private readonly participantObjects = new Map<string, LocalParticipant>();
  /** Who is typing: the participant and the timer that ends it. */
  private readonly typists = new Map<string, { participant: LocalParticipant; timer: ReturnType<typeof setTimeout> }>();
  private typingSentAtMs = -Infinity;
  /** The highest message index seen in a page, so a reconnect can fetch what it missed. */
  lastSeenIndex = -1;
  /** The highest index delivered as messageAdded: a push is never delivered twice. */
  lastDeliveredIndex = -1;
  /** Whether the app has read or received messages here: only then does a reconnect catch up. */
  observed = false;

  constructor(
    data: RelayConversationData,
    private readonly client: LocalConversationsClient,
  ) {
    super();
    this.sid = data.sid;
    this.createdBy = data.createdBy;
    this.dateCreated = new Date(data.dateCreated);
    this.dateUpdated = this.dateCreated;
    this.apply(data);
  }

  /** @internal Takes the relay's newer data (what a push does not carry stays as it was). */
  apply(data: RelayConversationData): void {
    this.uniqueName = data.uniqueName;
    this.friendlyName = data.friendlyName;
    this.attributes = data.attributes as JSONValue;
    if (data.lastReadMessageIndex !== undefined) this.lastReadMessageIndex = data.lastReadMessageIndex;
    if (data.status !== undefined) this.status = data.status;
    if (data.lastMessage !== undefined) {
      this.lastMessage = data.lastMessage === null ? undefined : { index: data.lastMessage.index, dateCreated: new Date(data.lastMessage.dateCreated) };
    }
  }

  /** @internal A new message is the newest one now. */
  noteMessage(message: LocalMessage): void {
    if (this.lastMessage === undefined || this.lastMessage.index < message.index) this.lastMessage = { index: message.index, dateCreated: message.dateCreated };
  }

  /** @internal This client's object for a participant here, with the relay's data (`updateReasons`: a change pushed now). */
  participant(data: RelayParticipantData, updateReasons: readonly string[] = []): LocalParticipant {
    let participant = this.participantObjects.get(data.identity);
    // A new sid is a new participant: the identity left and was added again.
    if (!participant || participant.sid !== data.sid) {
      this.participantObjects.set(data.identity, (participant = new LocalParticipant(data, this.client, this)));
    }
    participant.apply(data, updateReasons);
    return participant;
  }

  /** @internal The participant left. */
  forgetParticipant(identity: string): void {
    this.participantObjects.delete(identity);
  }

  get limits(): ReturnType<typeof relayConversationLimits> {
    return relayConversationLimits();
  }
  /** Relay conversations never close. */
  get state(): { current: 'active'; dateUpdated: Date } {
    return { current: 'active', dateUpdated: this.dateCreated };
  }

  async join(): Promise<this> {
    this.participant(await this.client.request('join', { conversationSid: this.sid }));
    this.status = 'joined';
    return this;
  }
  /** Adds a participant by identity, with its attributes. */
  async add(identity: string, attributes?: JSONValue): Promise<LocalParticipant> {
    return this.participant(await this.client.request('add', { conversationSid: this.sid, identity, attributes }));
  }
  async addNonChatParticipant(..._args: unknown[]): Promise<never> {
    throw unsupported('non-chat participants (SMS, WhatsApp, email): it reaches chat clients only');
  }
  /** Removes a participant, by identity, participant sid or participant; the others get participantLeft. */
  async removeParticipant(participant: string | LocalParticipant): Promise<void> {
    const identity = typeof participant === 'string' ? participant : participant.identity;
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity });
  }
  /** Leaves the conversation (the client then emits conversationLeft). */
  async leave(): Promise<this> {
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity: this.client.identity });
    this.status = 'notParticipating';
    return this;
  }
  async delete(): Promise<never> {
    throw unsupported('way to delete a conversation: leave it, or remove its participants');
  }
  async updateFriendlyName(friendlyName: string): Promise<this> {
    this.apply(await this.client.request('updateConversation', { conversationSid: this.sid, friendlyName }));
    return this;
  }
  async updateAttributes(attributes: JSONValue): Promise<this> {
    this.apply(await this.client.request('updateConversation', { conversationSid: this.sid, attributes }));
    return this;
  }
  /** Sets the unique name (null removes it); CONFLICT when another conversation has it. */
  async updateUniqueName(uniqueName: string | null): Promise<this> {
    this.apply(await this.client.request('updateConversation', { conversationSid: this.sid, uniqueName }));
    return this;
  }
  async setUserNotificationLevel(_notificationLevel: 'default' | 'muted'): Promise<never> {
    throw unsupported('notification levels: it sends no push notifications');
  }

  /**
   * Tells the other participants this user is typing (typingStarted; typingEnded follows after
   * the typing timeout or with this user's next message). Sent at most once per half timeout.
   */
  async typing(): Promise<void> {
    if (Date.now() - this.typingSentAtMs < TYPING_TIMEOUT_MS / 2) return;
    this.typingSentAtMs = Date.now();
    await this.client.request('typing', { conversationSid: this.sid });
  }
  /** Sets the read horizon (null: none, as setAllMessagesUnread); resolves with the unread count after it. */
  async updateLastReadMessageIndex(index: number | null): Promise<number> {
    return this.readHorizon({ index });
  }
  /** Moves the read horizon forward to `index`, never back; resolves with the unread count after it. */
  async advanceLastReadMessageIndex(index: number): Promise<number> {
    return this.readHorizon({ index, advance: true });
  }
  /** Sets the read horizon to the newest message; resolves with the unread count (0). */
  async setAllMessagesRead(): Promise<number> {
    return this.readHorizon({ index: 'newest' });
  }
  /** Clears the read horizon; resolves with the number of messages. */
  async setAllMessagesUnread(): Promise<number> {
    return this.readHorizon({ index: null });
  }
  private async readHorizon(change: { index: number | null | 'newest'; advance?: boolean }): Promise<number> {
    const answer = await this.client.request('updateLastReadMessageIndex', { conversationSid: this.sid, ...change });
    this.lastReadMessageIndex = answer.participant.lastReadMessageIndex;
    this.participant(answer.participant);
    return answer.unreadCount;
  }
  /** Messages after this user's read horizon; null when it has none. */
  async getUnreadMessagesCount(): Promise<number | null> {
    return (await this.client.request('getUnreadMessagesCount', { conversationSid: this.sid })).count;
  }
  /** The messages the conversation holds now. */
  async getMessagesCount(): Promise<number> {
    return (await this.client.request('getMessagesCount', { conversationSid: this.sid })).count;
  }

  /** @internal Whether `identity` is typing here. */
  isTyping(identity: string): boolean {
    return this.typists.has(identity);
  }
  /** @internal A typingStarted push: typingStarted unless already typing, and typingEnded after `timeoutMs` without another. */
  startTyping(participant: LocalParticipant, timeoutMs: number): void {
    const current = this.typists.get(participant.identity);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => this.endTyping(participant.identity), timeoutMs);
    this.typists.set(participant.identity, { participant, timer });
    if (current) return;
    participant.deliver('typingStarted', participant);
    this.client.announce(this, 'typingStarted', participant);
  }
  /** @internal Typing ends: its timeout passed, or its participant sent a message. */
  endTyping(identity: string): void {
    const current = this.typists.get(identity);
    if (!current) return;
    clearTimeout(current.timer);
    this.typists.delete(identity);
    current.participant.deliver('typingEnded', current.participant);
    this.client.announce(this, 'typingEnded', current.participant);
  }
  /** @internal A request about one of this conversation's messages, answered with the message. */
  async relayMessage(op: 'updateMessageAttributes' | 'removeMessage', params: RelayOps[typeof op][0]): Promise<LocalMessage> {
    return new LocalMessage(await this.client.request(op, params as never), this);
  }
  /** The participants now; participants this client held that are gone are forgotten. */
  async getParticipants(): Promise<LocalParticipant[]> {
    const participants = (await this.client.request('getParticipants', { conversationSid: this.sid })).map((p) => this.participant(p));
    for (const identity of this.participantObjects.keys()) {
      if (!participants.some((p) => p.identity === identity)) this.participantObjects.delete(identity);
    }
    return participants;
  }
  async getParticipantByIdentity(identity?: string | null): Promise<LocalParticipant | null> {
    return (await this.getParticipants()).find((p) => p.identity === identity) ?? null;
  }
  async getParticipantBySid(participantSid: string): Promise<LocalParticipant | null> {
    return (await this.getParticipants()).find((p) => p.sid === participantSid) ?? null;
  }
  async getParticipantsCount(): Promise<number> {
    return (await this.getParticipants()).length;
  }
  async getAttributes(): Promise<JSONValue> {
    return this.attributes;
  }
  /** A text (a string), or one blob (SendMediaOptions or a FormData with a file); resolves with the new index. */
  async sendMessage(message: string | null | LocalMediaInput, attributes?: JSONValue, _emailOptions?: { subject?: string }): Promise<number> {
    return typeof message === 'string' || message === null ? this.send(message ?? '', attributes, []) : this.send(undefined, attributes, [message]);
  }
  /**
   * @internal Uploads the media, one at a time, then sends the message referencing them. The
   * SDK's checks come first: TOO_MANY_ATTACHMENTS, ATTACHMENT_TOO_LARGE, nothing uploaded.
   */
  async send(body: string | undefined, attributes: JSONValue | undefined, media: readonly LocalMediaInput[]): Promise<number> {
    const uploads = prepareUploads(media);
    const mediaSids: string[] = [];
    for (const item of uploads) mediaSids.push((await this.client.uploadMedia(this.sid, item)).sid);
    this.typingSentAtMs = -Infinity; // the message ends this user's typing: the next typing() is sent
    const sent = await this.client.request('sendMessage', {
      conversationSid: this.sid,
      body: body ?? '',
      attributes,
      ...(mediaSids.length > 0 ? { mediaSids } : {}),
    });
    return sent.index;
  }
  /** @internal Temporary URLs of media (LocalMedia or sids) by sid. */
  mediaUrls(media: unknown): Promise<Map<string, string>> {
    return Promise.resolve().then(() => this.client.mediaUrls(mediaSidsOf(media)));
  }
  prepareMessage(): LocalMessageBuilder {
    return new LocalMessageBuilder(this);
  }
  async updateMessageBody(messageSid: string, body: string): Promise<LocalMessage> {
    return new LocalMessage(await this.client.request('updateMessageBody', { conversationSid: this.sid, messageSid, body }), this);
  }
  async getMessages(pageSize = 30, anchor?: number, direction: 'backwards' | 'forward' = 'backwards'): Promise<BasePaginator<LocalMessage>> {
    const page = await this.client.request('getMessages', { conversationSid: this.sid, pageSize, anchor, direction });
    this.observed = true;
    const items = page.items.map((m) => new LocalMessage(m, this));
    for (const m of items) this.lastSeenIndex = Math.max(this.lastSeenIndex, m.index);
    const first = items[0]?.index ?? 0;
    const last = items[items.length - 1]?.index ?? 0;
    return new LocalPaginator(
      items,
      page.hasPrev,
      page.hasNext,
      () => this.getMessages(pageSize, first - 1, 'backwards'),
      () => this.getMessages(pageSize, last + 1, 'forward'),
    );
  }
  /** Recipients are SMS, WhatsApp and email addresses; a relay conversation has none. */
  async getMessageRecipients(): Promise<BasePaginator<never>> {
    return new LocalPaginator<never>([], false, false);
  }

  /** @internal Called by the client for pushes about this conversation. */
  deliver<K extends keyof LocalConversationEvents>(event: K, ...args: Parameters<LocalConversationEvents[K]>): void {
    this.emit(event, ...args);
  }
}
