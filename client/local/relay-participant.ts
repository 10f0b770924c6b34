/**
 * A participant on the local relay, as the SDK's Participant: one object per participant of a
 * conversation this client holds, updated in place by the relay's pushes, with its own events.
 */
import type { RelayParticipantData } from '../../shared/relay-protocol.js';
import type { BaseParticipant, JSONValue } from '../conversations.js';
import type { LocalConversationsClient } from './relay-client.js';
import type { LocalConversation } from './relay-conversation.js';
import { LocalEmitter } from './relay-emitter.js';
import type { LocalUser } from './relay-user.js';

export interface LocalParticipantEvents {
  typingStarted(participant: LocalParticipant): void;
  typingEnded(participant: LocalParticipant): void;
  updated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
}

export class LocalParticipant extends LocalEmitter<LocalParticipantEvents> implements BaseParticipant {
  readonly sid: string;
  readonly identity: string;
  readonly type = 'chat';
  readonly conversationSid: string;
  readonly dateCreated: Date;
  attributes: JSONValue;
  /** The index of the last message this participant read; null when it never said. */
  lastReadMessageIndex: number | null;
  /** When this client saw the participant change (the relay stores no such time); dateCreated until then. */
  dateUpdated: Date;
  /** When this client saw the read horizon move (the relay stores no such time); null until then. */
  lastReadTimestamp: Date | null = null;
  /** The relay has no roles: every participant may do the same. */
  readonly roleSid = '';
  /** Bindings describe SMS, WhatsApp and email participants; a chat participant has none. */
  readonly bindings = {};

  constructor(
    data: RelayParticipantData,
    private readonly client: LocalConversationsClient,
    /** The conversation, as the SDK links it (absent for a push about a conversation this client does not hold). */
    readonly conversation?: LocalConversation,
  ) {
    super();
    this.sid = data.sid;
    this.identity = data.identity;
    this.conversationSid = data.conversationSid;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.dateUpdated = this.dateCreated;
    this.lastReadMessageIndex = data.lastReadMessageIndex;
  }

  /** @internal Takes the relay's newer data; `updateReasons` for a change pushed now. */
  apply(data: RelayParticipantData, updateReasons: readonly string[] = []): void {
    this.attributes = data.attributes as JSONValue;
    this.lastReadMessageIndex = data.lastReadMessageIndex;
    if (updateReasons.length > 0) this.dateUpdated = new Date();
    if (updateReasons.includes('lastReadMessageIndex')) this.lastReadTimestamp = this.dateUpdated;
  }

  /** Whether the participant is typing in its conversation now (typingStarted, no typingEnded yet). */
  get isTyping(): boolean {
    return this.conversation?.isTyping(this.identity) ?? false;
  }

  /** The participant's user, subscribed (see relay-user.ts for what the relay keeps of users). */
  async getUser(): Promise<LocalUser> {
    return this.client.getUser(this.identity);
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

  /** @internal */
  deliver<K extends keyof LocalParticipantEvents>(event: K, ...args: Parameters<LocalParticipantEvents[K]>): void {
    this.emit(event, ...args);
  }
}
