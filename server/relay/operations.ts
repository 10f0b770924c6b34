/**
 * The local relay's operations after `auth`: what each request does to the store, who may make
 * it, and which sockets are told (through the hub's `push`). Sessions and sockets are the hub's
 * (server/relay/hub.ts).
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import {
  RELAY_LIMITS,
  TYPING_TIMEOUT_MS,
  type RelayConversationData,
  type RelayEventName,
  type RelayEvents,
  type RelayMessageData,
  type RelayOp,
  type RelayOps,
  type RelayParticipantData,
} from '../../shared/relay-protocol.js';
import type { RelayConversation, RelayMessage, RelayParticipant, Store } from '../store/types.js';
import { attributesText, newSid, str, toConversationData, toMessageData, toParticipantData, withinAnswerBytes } from './data.js';
import type { RelayMediaService } from './media.js';

/** Every request but `auth` and `updateToken`, which the hub handles itself. */
export type RelayOperation = Exclude<RelayOp, 'auth' | 'updateToken'>;

/** Sends an event to every socket of the given identities. */
export type RelayPushFn = <K extends RelayEventName>(identities: Iterable<string>, event: K, data: RelayEvents[K]) => void;

export class RelayOperations {
  constructor(
    private readonly store: Store,
    private readonly media: RelayMediaService,
    private readonly push: RelayPushFn,
  ) {}

  /** sendMessage's media sids: distinct strings, at most RELAY_LIMITS.mediaPerMessage. */
  private mediaSids(value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new E2EEError(ErrorCode.BAD_REQUEST, '"mediaSids" must be an array of media sids');
    if (value.length > RELAY_LIMITS.mediaPerMessage) {
      throw new E2EEError(ErrorCode.TOO_MANY_ATTACHMENTS, `a message has at most ${RELAY_LIMITS.mediaPerMessage} media`);
    }
    const sids = value.map((sid) => str(sid, 'mediaSids[]', 64));
    if (new Set(sids).size !== sids.length) throw new E2EEError(ErrorCode.BAD_REQUEST, 'a media sid is attached once');
    return sids;
  }

  /** Whether `op` names one of the operations. */
  has(op: string): op is RelayOperation {
    return Object.prototype.hasOwnProperty.call(this.handlers, op);
  }

  /**
   * The conversation, if the caller may act on it: a current participant, or its creator while
   * the conversation is new (nobody in it, no messages: between createConversation and the first
   * join). Being the creator grants nothing once the conversation is in use.
   */
  private async accessible(identity: string, conversationSid: unknown): Promise<RelayConversation> {
    const sid = str(conversationSid, 'conversationSid', 256);
    const conversation = await this.store.getConversation(sid);
    if (!conversation) throw new E2EEError(ErrorCode.NOT_FOUND, `conversation ${sid} not found`);
    if (await this.store.isParticipant(conversation.sid, identity)) return conversation;
    if (conversation.createdBy === identity && (await this.isNew(conversation.sid))) return conversation;
    throw new E2EEError(ErrorCode.FORBIDDEN, 'not a participant of this conversation');
  }

  private async isNew(conversationSid: string): Promise<boolean> {
    if ((await this.store.participants(conversationSid)).length > 0) return false;
    return (await this.store.messages(conversationSid, { direction: 'backwards', limit: 1 })).length === 0;
  }

  private async participantIdentities(conversationSid: string): Promise<string[]> {
    return (await this.store.participants(conversationSid)).map((p) => p.identity);
  }

  /** The newest message's index and time (the SDK's lastMessage), or null: one indexed lookup. */
  private async lastMessage(conversationSid: string): Promise<RelayConversationData['lastMessage']> {
    const [newest] = await this.store.messages(conversationSid, { direction: 'backwards', limit: 1 });
    return newest ? { index: newest.index, dateCreated: newest.dateCreatedMs } : null;
  }

  /** The conversation as every participant sees it (pushes), with its newest message. */
  private async conversationData(conversation: RelayConversation): Promise<RelayConversationData> {
    return { ...toConversationData(conversation), lastMessage: await this.lastMessage(conversation.sid) };
  }

  /** The caller as a current participant of an accessible conversation (a creator not yet joined is not one). */
  private async asParticipant(identity: string, conversationSid: unknown): Promise<{ conversation: RelayConversation; me: RelayParticipant }> {
    const conversation = await this.accessible(identity, conversationSid);
    const me = await this.store.getParticipant(conversation.sid, identity);
    if (!me) throw new E2EEError(ErrorCode.FORBIDDEN, 'join the conversation first');
    return { conversation, me };
  }

  /** A message of an accessible conversation that the caller wrote: only its author may change or remove it. */
  private async ownMessage(caller: string, p: { conversationSid?: unknown; messageSid?: unknown }): Promise<RelayMessage> {
    const conversation = await this.accessible(caller, p.conversationSid);
    const messageSid = str(p.messageSid, 'messageSid', 64);
    const message = await this.store.getMessage(conversation.sid, messageSid);
    if (!message) throw new E2EEError(ErrorCode.NOT_FOUND, `message ${messageSid} not found`);
    if (message.author !== caller) throw new E2EEError(ErrorCode.FORBIDDEN, 'only the author may change or remove a message');
    return message;
  }

  /** Changes the caller's own message and tells every participant (messageUpdated). */
  private async updateMessage(message: RelayMessage, change: { body: string } | { attributes: string }): Promise<RelayMessageData> {
    const updated = await this.store.updateMessage(message.conversationSid, message.sid, change, Date.now());
    if (!updated) throw new E2EEError(ErrorCode.NOT_FOUND, `message ${message.sid} not found`);
    const participants = await this.store.participants(message.conversationSid);
    const data = toMessageData(updated, participants);
    const updateReasons: Array<'body' | 'attributes'> = ['body' in change ? 'body' : 'attributes'];
    this.push(participants.map((p) => p.identity), 'messageUpdated', { ...data, updateReasons });
    return data;
  }

  /** The conversation as the caller sees it: with its read horizon there and whether it is in. */
  private async forCaller(caller: string, conversation: RelayConversation): Promise<RelayConversationData> {
    const me = await this.store.getParticipant(conversation.sid, caller);
    return {
      ...(await this.conversationData(conversation)),
      lastReadMessageIndex: me?.lastReadMessageIndex ?? null,
      status: me ? 'joined' : 'notParticipating',
    };
  }

  private async addParticipant(conversation: RelayConversation, identity: string, attributes?: string): Promise<RelayParticipantData> {
    const current = await this.store.participants(conversation.sid);
    if (current.length >= RELAY_LIMITS.participantsPerConversation && !current.some((p) => p.identity === identity)) {
      throw new E2EEError(ErrorCode.TOO_MANY_PARTICIPANTS, `a conversation has at most ${RELAY_LIMITS.participantsPerConversation} participants`);
    }
    const { participant, created } = await this.store.addParticipant({
      sid: newSid('MB'),
      conversationSid: conversation.sid,
      identity,
      attributes,
      dateCreatedMs: Date.now(),
    });
    const data = toParticipantData(participant);
    if (created) {
      this.push([identity], 'conversationAdded', await this.conversationData(conversation));
      this.push([...current.map((p) => p.identity), identity], 'participantJoined', data);
    }
    return data;
  }

  /** One handler per operation: `caller` is the authenticated identity of the socket. */
  readonly handlers: { [K in RelayOperation]: (caller: string, params: Partial<RelayOps[K][0]>) => Promise<RelayOps[K][1]> } = {
    createConversation: async (caller, p) => {
      const uniqueName = p.uniqueName === undefined ? null : str(p.uniqueName, 'uniqueName', 256);
      const friendlyName = p.friendlyName === undefined ? null : str(p.friendlyName, 'friendlyName', 256, 0);
      const conversation = await this.store.createConversation({
        sid: newSid('CH'),
        uniqueName,
        friendlyName,
        attributes: attributesText(p.attributes),
        createdBy: caller,
        dateCreatedMs: Date.now(),
      });
      if (!conversation) throw new E2EEError(ErrorCode.CONFLICT, `a conversation named "${uniqueName}" exists`);
      return { ...toConversationData(conversation), lastReadMessageIndex: null, status: 'notParticipating', lastMessage: null };
    },

    getConversation: async (caller, p) => this.forCaller(caller, await this.accessible(caller, p.sid)),

    listConversations: async (caller, p) => {
      const all = await this.store.conversationsOf(caller);
      const start = Number.isSafeInteger(p.pageToken) && p.pageToken! > 0 ? p.pageToken! : 0;
      const page = await Promise.all(all.slice(start, start + RELAY_LIMITS.pageSize).map((c) => this.forCaller(caller, c)));
      const items = withinAnswerBytes(page);
      const next = start + items.length;
      return { items, nextPageToken: next < all.length ? next : null };
    },

    updateConversation: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const friendlyName = p.friendlyName === undefined ? undefined : str(p.friendlyName, 'friendlyName', 256, 0);
      const attributes = p.attributes === undefined ? undefined : attributesText(p.attributes);
      const uniqueName = p.uniqueName === undefined || p.uniqueName === null ? p.uniqueName : str(p.uniqueName, 'uniqueName', 256);
      if (friendlyName === undefined && attributes === undefined && uniqueName === undefined) {
        throw new E2EEError(ErrorCode.BAD_REQUEST, '"friendlyName", "attributes" or "uniqueName" is required');
      }
      const updated = await this.store.updateConversation(conversation.sid, { friendlyName, attributes, uniqueName });
      // Conversations are never deleted: no row back for this one means its new uniqueName is taken.
      if (!updated) throw new E2EEError(ErrorCode.CONFLICT, `a conversation named "${uniqueName}" exists`);
      const updateReasons = (['friendlyName', 'attributes', 'uniqueName'] as const).filter((field) => updated[field] !== conversation[field]);
      if (updateReasons.length > 0) {
        this.push(await this.participantIdentities(conversation.sid), 'conversationUpdated', { ...(await this.conversationData(updated)), updateReasons });
      }
      return this.forCaller(caller, updated);
    },

    join: async (caller, p) => this.addParticipant(await this.accessible(caller, p.conversationSid), caller),

    add: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const attributes = p.attributes === undefined ? undefined : attributesText(p.attributes);
      return this.addParticipant(conversation, str(p.identity, 'identity', RELAY_LIMITS.identityChars), attributes);
    },

    removeParticipant: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const who = str(p.identity, 'identity', RELAY_LIMITS.identityChars);
      const participants = await this.store.participants(conversation.sid);
      const before = participants.map((q) => q.identity);
      // An identity, or else a participant sid (as the SDK's removeParticipant takes either).
      const identity = before.includes(who) ? who : (participants.find((q) => q.sid === who)?.identity ?? who);
      const removed = await this.store.removeParticipant(conversation.sid, identity);
      if (removed) {
        this.push(before, 'participantLeft', toParticipantData(removed));
        this.push([identity], 'conversationRemoved', { conversationSid: conversation.sid });
      }
      return { removed: removed !== null };
    },

    getParticipants: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      return (await this.store.participants(conversation.sid)).map(toParticipantData);
    },

    updateParticipantAttributes: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const identity = str(p.identity, 'identity', RELAY_LIMITS.identityChars);
      if (identity !== caller) throw new E2EEError(ErrorCode.FORBIDDEN, 'a participant may update only its own attributes');
      if (p.attributes === undefined) throw new E2EEError(ErrorCode.BAD_REQUEST, '"attributes" is required');
      const updated = await this.store.updateParticipantAttributes(conversation.sid, identity, attributesText(p.attributes));
      if (!updated) throw new E2EEError(ErrorCode.FORBIDDEN, 'not a participant of this conversation');
      const data = toParticipantData(updated);
      this.push(await this.participantIdentities(conversation.sid), 'participantUpdated', { ...data, updateReasons: ['attributes'] });
      return data;
    },

    sendMessage: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const participants = await this.store.participants(conversation.sid);
      const identities = participants.map((q) => q.identity);
      if (!identities.includes(caller)) throw new E2EEError(ErrorCode.FORBIDDEN, 'join the conversation before sending');
      const body = str(p.body, 'body', RELAY_LIMITS.bodyChars, 0);
      const mediaSids = this.mediaSids(p.mediaSids);
      const message = await this.store.appendMediaMessage(
        { sid: newSid('IM'), conversationSid: conversation.sid, author: caller, body, attributes: attributesText(p.attributes), dateCreatedMs: Date.now() },
        mediaSids,
      );
      // Only the caller's own uploads to this conversation, each attached once.
      if (!message) throw new E2EEError(ErrorCode.NOT_FOUND, 'a media sid is not an upload of yours to this conversation that is not sent yet');
      const data = toMessageData(message, participants);
      this.push(identities, 'messageAdded', data);
      return data;
    },

    getMessages: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      const pageSize = Number.isSafeInteger(p.pageSize) && p.pageSize! > 0 ? Math.min(p.pageSize!, RELAY_LIMITS.pageSize) : 30;
      const direction = p.direction === 'forward' ? 'forward' : 'backwards';
      const anchor = Number.isSafeInteger(p.anchor) ? p.anchor : undefined;
      const rows = await this.store.messages(conversation.sid, { anchor, direction, limit: pageSize + 1 });
      // One extra row tells whether there is more in the paging direction.
      let more = rows.length > pageSize;
      if (more) {
        if (direction === 'backwards') rows.shift();
        else rows.pop();
      }
      // The answer holds the messages nearest the anchor that fit in answerBytes; the page then
      // says there is more, and the client pages on from where it stopped.
      const participants = await this.store.participants(conversation.sid);
      const nearestFirst = rows.map((row) => toMessageData(row, participants));
      if (direction === 'backwards') nearestFirst.reverse();
      const items = withinAnswerBytes(nearestFirst);
      if (items.length < nearestFirst.length) more = true;
      if (direction === 'backwards') items.reverse();
      const first = items[0]?.index;
      const last = items[items.length - 1]?.index;
      // Removed messages leave gaps: what is before or after a page is asked, not inferred from 0.
      const newest = (await this.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]?.index ?? -1;
      const oldest = (await this.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]?.index ?? 0;
      return {
        items,
        hasPrev: direction === 'backwards' ? more : first !== undefined && first > oldest,
        hasNext: direction === 'forward' ? more : last !== undefined && last < newest,
      };
    },

    updateMessageBody: async (caller, p) => {
      const message = await this.ownMessage(caller, p);
      return this.updateMessage(message, { body: str(p.body, 'body', RELAY_LIMITS.bodyChars, 0) });
    },

    updateMessageAttributes: async (caller, p) => {
      const message = await this.ownMessage(caller, p);
      if (p.attributes === undefined) throw new E2EEError(ErrorCode.BAD_REQUEST, '"attributes" is required');
      return this.updateMessage(message, { attributes: attributesText(p.attributes) });
    },

    removeMessage: async (caller, p) => {
      const message = await this.ownMessage(caller, p);
      // The organization's copy goes first, so a retry after a failure in between still finds the
      // message, and again after the message: a backup that checked the message before the removal
      // may have stored its copy in between (one that stores later finds the message gone and
      // deletes its own copy: routes/history.ts).
      await this.store.deleteHistory(message.conversationSid, message.sid);
      const removed = await this.store.removeMessage(message.conversationSid, message.sid);
      if (!removed) throw new E2EEError(ErrorCode.NOT_FOUND, `message ${message.sid} not found`);
      await this.store.deleteHistory(message.conversationSid, message.sid);
      const participants = await this.store.participants(message.conversationSid);
      const data = toMessageData(removed, participants);
      this.push(participants.map((q) => q.identity), 'messageRemoved', data);
      return data;
    },

    typing: async (caller, p) => {
      const { conversation, me } = await this.asParticipant(caller, p.conversationSid);
      const others = (await this.participantIdentities(conversation.sid)).filter((identity) => identity !== caller);
      this.push(others, 'typingStarted', { participant: toParticipantData(me), timeoutMs: TYPING_TIMEOUT_MS });
      return { timeoutMs: TYPING_TIMEOUT_MS };
    },

    updateLastReadMessageIndex: async (caller, p) => {
      const { conversation, me } = await this.asParticipant(caller, p.conversationSid);
      let index: number | null;
      if (p.index === 'newest') {
        index = (await this.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]?.index ?? me.lastReadMessageIndex;
      } else if (p.index === null || (Number.isSafeInteger(p.index) && (p.index as number) >= 0)) {
        index = p.index as number | null;
      } else {
        throw new E2EEError(ErrorCode.BAD_REQUEST, '"index" must be a message index (an integer of 0 or more), null or "newest"');
      }
      if (p.advance === true) {
        if (index === null || typeof p.index !== 'number') throw new E2EEError(ErrorCode.BAD_REQUEST, 'advancing needs a message index');
        // The SDK's advanceLastReadMessageIndex: the horizon only moves forward.
        if (me.lastReadMessageIndex !== null && index < me.lastReadMessageIndex) index = me.lastReadMessageIndex;
      }
      let participant = me;
      if (index !== me.lastReadMessageIndex) {
        const updated = await this.store.setLastReadMessageIndex(conversation.sid, caller, index);
        if (!updated) throw new E2EEError(ErrorCode.FORBIDDEN, 'not a participant of this conversation');
        participant = updated;
        const data = toParticipantData(updated);
        this.push(await this.participantIdentities(conversation.sid), 'participantUpdated', { ...data, updateReasons: ['lastReadMessageIndex'] });
      }
      const unreadCount = await this.store.countMessagesAfter(conversation.sid, index ?? -1);
      return { unreadCount, participant: toParticipantData(participant) };
    },

    getUnreadMessagesCount: async (caller, p) => {
      const { conversation, me } = await this.asParticipant(caller, p.conversationSid);
      if (me.lastReadMessageIndex === null) return { count: null };
      return { count: await this.store.countMessagesAfter(conversation.sid, me.lastReadMessageIndex) };
    },

    getMediaUrls: async (caller, p) => ({ urls: await this.media.urls(caller, p.mediaSids) }),

    getMessagesCount: async (caller, p) => {
      const conversation = await this.accessible(caller, p.conversationSid);
      return { count: await this.store.countMessagesAfter(conversation.sid, -1) };
    },
  };
}
