/**
 * The conversations, messages and participants of the local relay's client
 * (client/local/relay-client.ts): the SDK's objects, over the relay protocol.
 */
import {
  type RelayConversationData,
  type RelayMessageData,
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
  async updateBody(body: string): Promise<LocalMessage> {
    return this.conversation.updateMessageBody(this.sid, body);
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
  participantJoined(participant: LocalParticipant): void;
  participantLeft(participant: LocalParticipant): void;
  participantUpdated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
}

export class LocalConversation extends Emitter<LocalConversationEvents> implements BaseConversation {
  readonly sid: string;
  readonly uniqueName: string | null;
  readonly friendlyName: string | null;
  readonly createdBy: string;
  readonly attributes: JSONValue;
  readonly dateCreated: Date;
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
  }

  async join(): Promise<this> {
    await this.client.request('join', { conversationSid: this.sid });
    return this;
  }
  async add(identity: string): Promise<LocalParticipant> {
    return new LocalParticipant(await this.client.request('add', { conversationSid: this.sid, identity }), this.client, this);
  }
  async removeParticipant(identity: string): Promise<void> {
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity });
  }
  async getParticipants(): Promise<LocalParticipant[]> {
    return (await this.client.request('getParticipants', { conversationSid: this.sid })).map((p) => new LocalParticipant(p, this.client, this));
  }
  async sendMessage(body: string, attributes?: JSONValue): Promise<number> {
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
