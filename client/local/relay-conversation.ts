/**
 * The conversations, messages and participants of the local relay's client
 * (client/local/relay-client.ts): the SDK's objects, over the relay protocol.
 */
import {
  TYPING_TIMEOUT_MS,
  type RelayConversationData,
  type RelayMessageData,
  type RelayOps,
  type RelayParticipantData,
} from '../../shared/relay-protocol.js';
import type { BaseConversation, BaseMessage, BaseMessageBuilder, BasePaginator, BaseParticipant, JSONValue } from '../conversations.js';
import { Emitter } from '../emitter.js';
import type { LocalConversationsClient } from './relay-client.js';

export class LocalParticipant implements BaseParticipant {
  readonly sid: string;
  readonly identity: string;
  readonly type = 'chat';
  readonly conversationSid: string;
  readonly dateCreated: Date;
  attributes: JSONValue;
  /** The index of the last message this participant read; null when it never said. */
  lastReadMessageIndex: number | null;
  constructor(
    data: RelayParticipantData,
    private readonly client: LocalConversationsClient,
    /** The conversation, as the SDK links it (absent for a push about a conversation this client does not hold). */
    readonly conversation?: LocalConversation,
  ) {
    this.sid = data.sid;
    this.identity = data.identity;
    this.conversationSid = data.conversationSid;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.lastReadMessageIndex = data.lastReadMessageIndex;
  }
  /** Whether the participant is typing in its conversation now (typingStarted, no typingEnded yet). */
  get isTyping(): boolean {
    return this.conversation?.isTyping(this.identity) ?? false;
  }
  /** Removes this participant from its conversation. */
  async remove(): Promise<void> {
    await this.client.request('removeParticipant', { conversationSid: this.conversationSid, identity: this.identity });
  }
  /** Replaces this participant's attributes; only the participant itself may (FORBIDDEN otherwise). */
  async updateAttributes(attributes: JSONValue): Promise<this> {
    const data = await this.client.request('updateParticipantAttributes', { conversationSid: this.conversationSid, identity: this.identity, attributes });
    this.attributes = data.attributes as JSONValue;
    return this;
  }
}

export class LocalMessage implements BaseMessage {
  readonly sid: string;
  readonly index: number;
  readonly author: string;
  readonly body: string;
  readonly attributes: JSONValue;
  readonly dateCreated: Date;
  readonly dateUpdated: Date | null;
  constructor(
    data: RelayMessageData,
    readonly conversation: LocalConversation,
  ) {
    this.sid = data.sid;
    this.index = data.index;
    this.author = data.author;
    this.body = data.body;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.dateUpdated = data.dateUpdated === null ? null : new Date(data.dateUpdated);
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

/** A page of a relay listing (messages, conversations) as the SDK pages it: `prevPage`/`nextPage` ask the relay. */
export class LocalPaginator<T> implements BasePaginator<T> {
  constructor(
    readonly items: T[],
    readonly hasPrevPage: boolean,
    readonly hasNextPage: boolean,
    private readonly fetchPrev: () => Promise<BasePaginator<T>>,
    private readonly fetchNext: () => Promise<BasePaginator<T>>,
  ) {}
  prevPage(): Promise<BasePaginator<T>> {
    if (!this.hasPrevPage) return Promise.reject(new Error('no previous page'));
    return this.fetchPrev();
  }
  nextPage(): Promise<BasePaginator<T>> {
    if (!this.hasNextPage) return Promise.reject(new Error('no next page'));
    return this.fetchNext();
  }
}

class LocalMessageBuilder implements BaseMessageBuilder {
  private body = '';
  private attributes: JSONValue | undefined;
  constructor(private readonly conversation: LocalConversation) {}
  setBody(text: string): this {
    this.body = text;
    return this;
  }
  setAttributes(attributes: JSONValue): this {
    this.attributes = attributes;
    return this;
  }
  build(): { send(): Promise<number> } {
    const { body, attributes } = this;
    return { send: () => this.conversation.sendMessage(body, attributes) };
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
}

export class LocalConversation extends Emitter<LocalConversationEvents> implements BaseConversation {
  readonly sid: string;
  readonly uniqueName: string | null;
  friendlyName: string | null;
  readonly createdBy: string;
  attributes: JSONValue;
  readonly dateCreated: Date;
  /** This user's read horizon here: the index of the last message read; null when never set. */
  lastReadMessageIndex: number | null;
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
    this.uniqueName = data.uniqueName;
    this.friendlyName = data.friendlyName;
    this.createdBy = data.createdBy;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.lastReadMessageIndex = data.lastReadMessageIndex ?? null;
  }

  /** @internal Takes the relay's newer data (a push's carries no read horizon). */
  apply(data: RelayConversationData): void {
    this.friendlyName = data.friendlyName;
    this.attributes = data.attributes as JSONValue;
    if (data.lastReadMessageIndex !== undefined) this.lastReadMessageIndex = data.lastReadMessageIndex;
  }

  async join(): Promise<this> {
    await this.client.request('join', { conversationSid: this.sid });
    return this;
  }
  async add(identity: string): Promise<LocalParticipant> {
    return new LocalParticipant(await this.client.request('add', { conversationSid: this.sid, identity }), this.client, this);
  }
  /** Removes a participant, by identity, participant sid or participant; the others get participantLeft. */
  async removeParticipant(participant: string | LocalParticipant): Promise<void> {
    const identity = typeof participant === 'string' ? participant : participant.identity;
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity });
  }
  /** Leaves the conversation (the client then emits conversationLeft). */
  async leave(): Promise<this> {
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity: this.client.identity });
    return this;
  }
  async updateFriendlyName(friendlyName: string): Promise<this> {
    this.apply(await this.client.request('updateConversation', { conversationSid: this.sid, friendlyName }));
    return this;
  }
  async updateAttributes(attributes: JSONValue): Promise<this> {
    this.apply(await this.client.request('updateConversation', { conversationSid: this.sid, attributes }));
    return this;
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
    return this.readHorizon(index);
  }
  /** Sets the read horizon to the newest message; resolves with the unread count (0). */
  async setAllMessagesRead(): Promise<number> {
    return this.readHorizon('newest');
  }
  /** Clears the read horizon; resolves with the number of messages. */
  async setAllMessagesUnread(): Promise<number> {
    return this.readHorizon(null);
  }
  private async readHorizon(index: number | null | 'newest'): Promise<number> {
    const answer = await this.client.request('updateLastReadMessageIndex', { conversationSid: this.sid, index });
    this.lastReadMessageIndex = answer.participant.lastReadMessageIndex;
    return answer.unreadCount;
  }
  /** Messages after this user's read horizon; null when it has none. */
  async getUnreadMessagesCount(): Promise<number | null> {
    return (await this.client.request('getUnreadMessagesCount', { conversationSid: this.sid })).count;
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
    if (!current) this.client.announce(this, 'typingStarted', participant);
  }
  /** @internal Typing ends: its timeout passed, or its participant sent a message. */
  endTyping(identity: string): void {
    const current = this.typists.get(identity);
    if (!current) return;
    clearTimeout(current.timer);
    this.typists.delete(identity);
    this.client.announce(this, 'typingEnded', current.participant);
  }
  /** @internal A request about one of this conversation's messages, answered with the message. */
  async relayMessage(op: 'updateMessageAttributes' | 'removeMessage', params: RelayOps[typeof op][0]): Promise<LocalMessage> {
    return new LocalMessage(await this.client.request(op, params as never), this);
  }
  async getParticipants(): Promise<LocalParticipant[]> {
    return (await this.client.request('getParticipants', { conversationSid: this.sid })).map((p) => new LocalParticipant(p, this.client, this));
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
  async sendMessage(body: string, attributes?: JSONValue): Promise<number> {
    this.typingSentAtMs = -Infinity; // the message ends this user's typing: the next typing() is sent
    const message = await this.client.request('sendMessage', { conversationSid: this.sid, body, attributes });
    return message.index;
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

  /** @internal Called by the client for pushes about this conversation. */
  deliver<K extends keyof LocalConversationEvents>(event: K, ...args: Parameters<LocalConversationEvents[K]>): void {
    this.emit(event, ...args);
  }
}
