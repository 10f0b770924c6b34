/**
 * What the local relay client does with each push of the relay (shared/relay-protocol.ts
 * RelayEvents): the SDK's events on the client, its conversations and participants. The client
 * (relay-client.ts) hands them over in arrival order.
 */
import type {
  RelayConversationData,
  RelayEventName,
  RelayEvents,
  RelayMessageData,
  RelayParticipantData,
  RelayPush,
} from '../../shared/relay-protocol.js';
import type { LocalClientEvents, LocalConversationsClient } from './relay-client.js';
import { LocalMessage, LocalParticipant, type LocalConversation } from './relay-conversation.js';

/** The client's state a push reads and changes. */
export interface PushTarget {
  readonly client: LocalConversationsClient;
  known(sid: string): LocalConversation | undefined;
  forget(sid: string): void;
  conversationFor(sid: string): Promise<LocalConversation>;
  conversationObject(data: RelayConversationData): LocalConversation;
  emit<K extends keyof LocalClientEvents>(event: K, ...args: Parameters<LocalClientEvents[K]>): void;
}

export async function applyPush(t: PushTarget, push: RelayPush): Promise<void> {
  const { event, data } = push as { event: RelayEventName; data: RelayEvents[RelayEventName] };
  switch (event) {
    case 'messageAdded': {
      const d = data as RelayMessageData;
      const conversation = await t.conversationFor(d.conversationSid);
      if (d.index > conversation.lastDeliveredIndex) deliverMessage(t.client, new LocalMessage(d, conversation));
      break;
    }
    case 'messageUpdated': {
      const { updateReasons, ...d } = data as RelayEvents['messageUpdated'];
      const conversation = await t.conversationFor(d.conversationSid);
      t.client.announce(conversation, 'messageUpdated', { message: new LocalMessage(d, conversation), updateReasons });
      break;
    }
    case 'messageRemoved': {
      const d = data as RelayMessageData;
      const conversation = await t.conversationFor(d.conversationSid);
      t.client.announce(conversation, 'messageRemoved', new LocalMessage(d, conversation));
      // The newest message went: the relay says which is the newest now (the SDK's lastMessage).
      if (conversation.lastMessage?.index === d.index) conversation.apply(await t.client.request('getConversation', { sid: conversation.sid }));
      break;
    }
    case 'typingStarted': {
      const { participant, timeoutMs } = data as RelayEvents['typingStarted'];
      const conversation = await t.conversationFor(participant.conversationSid);
      conversation.startTyping(conversation.participant(participant), timeoutMs);
      break;
    }
    case 'participantJoined':
    case 'participantLeft': {
      const d = data as RelayParticipantData;
      const conversation = t.known(d.conversationSid);
      const participant = conversation?.participant(d) ?? new LocalParticipant(d, t.client);
      if (event === 'participantLeft') conversation?.forgetParticipant(d.identity);
      conversation?.deliver(event, participant);
      t.emit(event, participant);
      break;
    }
    case 'participantUpdated': {
      const { updateReasons, ...d } = data as RelayEvents['participantUpdated'];
      const conversation = await t.conversationFor(d.conversationSid);
      const participant = conversation.participant(d, updateReasons);
      participant.deliver('updated', { participant, updateReasons });
      t.client.announce(conversation, 'participantUpdated', { participant, updateReasons });
      // This user's own read horizon is also the conversation's (the SDK's conversationUpdated).
      if (d.identity === t.client.identity && updateReasons.includes('lastReadMessageIndex')) {
        conversation.lastReadMessageIndex = d.lastReadMessageIndex;
        t.client.announce(conversation, 'updated', { conversation, updateReasons: ['lastReadMessageIndex'] });
      }
      break;
    }
    case 'conversationUpdated': {
      const { updateReasons, ...d } = data as RelayEvents['conversationUpdated'];
      const conversation = t.known(d.sid);
      if (!conversation) break;
      conversation.apply(d);
      conversation.dateUpdated = new Date();
      t.client.announce(conversation, 'updated', { conversation, updateReasons });
      break;
    }
    case 'conversationAdded': {
      const d = data as RelayConversationData;
      const conversation = t.conversationObject({ ...d, status: 'joined' });
      t.emit('conversationAdded', conversation);
      t.emit('conversationJoined', conversation);
      break;
    }
    case 'conversationRemoved': {
      const sid = (data as { conversationSid: string }).conversationSid;
      const conversation = t.known(sid);
      t.forget(sid);
      if (conversation) {
        conversation.status = 'notParticipating';
        conversation.deliver('removed', conversation);
        t.emit('conversationLeft', conversation);
        t.emit('conversationRemoved', conversation);
      }
      break;
    }
    case 'tokenAboutToExpire':
      t.emit('tokenAboutToExpire');
      break;
  }
}

/** A new message, once: the conversation's newest now, typing of its author ended, messageAdded. */
function deliverMessage(client: LocalConversationsClient, message: LocalMessage): void {
  message.conversation.noteMessage(message);
  message.conversation.observed = true;
  message.conversation.lastDeliveredIndex = Math.max(message.conversation.lastDeliveredIndex, message.index);
  message.conversation.endTyping(message.author);
  client.announce(message.conversation, 'messageAdded', message);
}

/** After a reconnect: fetch and deliver what arrived while disconnected, in order. */
export async function catchUp(client: LocalConversationsClient, conversations: Iterable<LocalConversation>): Promise<void> {
  for (const conversation of conversations) {
    // A conversation the app never read: it pages its history when it opens it.
    if (!conversation.observed) continue;
    try {
      let page = await conversation.getMessages(100, Math.max(conversation.lastSeenIndex, conversation.lastDeliveredIndex) + 1, 'forward');
      for (;;) {
        for (const m of page.items as LocalMessage[]) if (m.index > conversation.lastDeliveredIndex) deliverMessage(client, m);
        if (!page.hasNextPage) break;
        page = await page.nextPage();
      }
    } catch {
      // not a participant any more, or disconnected again: the next reconnect retries
    }
  }
}
