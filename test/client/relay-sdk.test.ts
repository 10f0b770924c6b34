/**
 * The local relay client as a stand-in for the SDK: typing, read horizons, message removal and
 * attributes, conversation updates, unique names, leaving and removing participants, each with
 * the events a second session sees (the SDK's names and payloads).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConversationsClient, type E2EEError, type LocalConversation, type LocalMessage, type LocalParticipant } from '../../client/index.js';
import { nextEvents } from '../support/concurrency.js';
import { relayToken } from '../support/local-relay.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
const clients: LocalConversationsClient[] = [];
let run = 0;

async function connect(identity: string): Promise<LocalConversationsClient> {
  const client = await LocalConversationsClient.connect(await relayToken(server, identity));
  clients.push(client);
  return client;
}

/** Fresh identities per test, so no earlier test's pushes reach its clients. */
async function pair(): Promise<{ alice: LocalConversationsClient; bob: LocalConversationsClient; conversation: LocalConversation; bobsView: LocalConversation }> {
  run++;
  const alice = await connect(`alice-${run}`);
  const bob = await connect(`bob-${run}`);
  const conversation = await alice.createConversation({ uniqueName: `room-${run}`, friendlyName: 'room' });
  await conversation.join();
  const added = nextEvents<LocalConversation>(bob, 'conversationAdded');
  await conversation.add(bob.identity);
  return { alice, bob, conversation, bobsView: (await added)[0]! };
}

const code = async (attempt: Promise<unknown>): Promise<string> => ((await attempt.catch((e: unknown) => e)) as E2EEError).code;

beforeAll(async () => {
  server = await startLoopbackServer();
});

afterAll(async () => {
  for (const c of clients) await c.shutdown();
  await server?.close();
});

describe('typing', () => {
  it('typingStarted reaches the others (client and conversation), typingEnded comes with the typist\'s message', async () => {
    const { alice, bob, conversation, bobsView } = await pair();
    const onClient = nextEvents<LocalParticipant>(bob, 'typingStarted');
    const onConversation = nextEvents<LocalParticipant>(bobsView, 'typingStarted');
    let aliceSawHerOwn = false;
    alice.on('typingStarted', () => (aliceSawHerOwn = true));
    await conversation.typing();
    const [[typist], [sameTypist]] = await Promise.all([onClient, onConversation]);
    expect(typist!.identity).toBe(alice.identity);
    expect(sameTypist!.identity).toBe(alice.identity);
    expect(typist!.isTyping).toBe(true);
    const ended = nextEvents<LocalParticipant>(bobsView, 'typingEnded');
    const endedOnClient = nextEvents<LocalParticipant>(bob, 'typingEnded');
    await conversation.sendMessage('e2ee1.typed');
    expect((await ended)[0]!.identity).toBe(alice.identity);
    expect((await endedOnClient)[0]!.identity).toBe(alice.identity);
    expect(typist!.isTyping).toBe(false);
    expect(aliceSawHerOwn).toBe(false);
  });

  it('typingEnded follows after the typing timeout without another typing()', async () => {
    const { bob, conversation } = await pair();
    const started = nextEvents<LocalParticipant>(bob, 'typingStarted');
    const ended = nextEvents<LocalParticipant>(bob, 'typingEnded', 1, 8000);
    const sentAt = Date.now();
    await conversation.typing();
    await started;
    expect((await ended)[0]!.identity).toBe(conversation.createdBy);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(4900);
  }, 15_000);

  it('only a participant may type', async () => {
    const { conversation } = await pair();
    const mallory = await connect(`mallory-${run}`);
    expect(await code(mallory.request('typing', { conversationSid: conversation.sid }))).toBe('FORBIDDEN');
  });
});

describe('read horizon', () => {
  it('is set, read and cleared as the SDK does; the others get participantUpdated, this user conversationUpdated', async () => {
    const { alice, bob, conversation, bobsView } = await pair();
    for (const body of ['e2ee1.a', 'e2ee1.b', 'e2ee1.c']) await conversation.sendMessage(body);
    expect(bobsView.lastReadMessageIndex).toBeNull();
    expect(await bobsView.getUnreadMessagesCount()).toBeNull();

    type ParticipantUpdate = { participant: LocalParticipant; updateReasons: string[] };
    type ConversationUpdate = { conversation: LocalConversation; updateReasons: string[] };
    const seenByAlice = nextEvents<ParticipantUpdate>(alice, 'participantUpdated');
    const seenByAlicesConversation = nextEvents<ParticipantUpdate>(conversation, 'participantUpdated');
    const bobsOtherSession = await connect(bob.identity);
    const bobsOwn = nextEvents<ConversationUpdate>(bobsOtherSession, 'conversationUpdated');
    expect(await bobsView.updateLastReadMessageIndex(0)).toBe(2);
    expect(bobsView.lastReadMessageIndex).toBe(0);
    for (const [update] of [await seenByAlice, await seenByAlicesConversation]) {
      expect(update!.updateReasons).toEqual(['lastReadMessageIndex']);
      expect(update!.participant.identity).toBe(bob.identity);
      expect(update!.participant.lastReadMessageIndex).toBe(0);
    }
    const [own] = await bobsOwn;
    expect(own!.updateReasons).toEqual(['lastReadMessageIndex']);
    expect(own!.conversation.lastReadMessageIndex).toBe(0);
    expect(await bobsView.getUnreadMessagesCount()).toBe(2);

    expect(await bobsView.setAllMessagesRead()).toBe(0);
    expect(bobsView.lastReadMessageIndex).toBe(2);
    expect(await bobsView.getUnreadMessagesCount()).toBe(0);
    // Persisted per participant: another session and the participant list see it.
    expect((await (await connect(bob.identity)).getConversationBySid(conversation.sid)).lastReadMessageIndex).toBe(2);
    expect((await (await connect(bob.identity)).getSubscribedConversations()).items.find((c) => c.sid === conversation.sid)!.lastReadMessageIndex).toBe(2);
    expect((await conversation.getParticipants()).map((p) => p.lastReadMessageIndex)).toEqual([null, 2]);
    expect(conversation.lastReadMessageIndex).toBeNull();

    expect(await bobsView.setAllMessagesUnread()).toBe(3);
    expect(bobsView.lastReadMessageIndex).toBeNull();
    expect(await bobsView.getUnreadMessagesCount()).toBeNull();
    expect(await code(bobsView.updateLastReadMessageIndex(-1))).toBe('BAD_REQUEST');
  });
});

describe('messages', () => {
  it('the author removes a message: messageRemoved for everyone, gone from pages and from the organization history', async () => {
    const { alice, bob, conversation, bobsView } = await pair();
    await conversation.sendMessage('e2ee1.first');
    await conversation.sendMessage('e2ee1.second');
    const [first] = (await conversation.getMessages(10)).items as LocalMessage[];
    const record = { conversationSid: conversation.sid, messageSid: first!.sid, index: 0, author: alice.identity, senderCardId: 'card', envelope: 'e2ee1.first', orgWrap: 'wrap', storedAtMs: 1, editN: 0 };
    await server.store.putHistory(record);

    const bobsCopy = (await bobsView.getMessages(10)).items[0] as LocalMessage;
    expect(await code(bobsCopy.remove())).toBe('FORBIDDEN');
    const onBob = nextEvents<LocalMessage>(bob, 'messageRemoved');
    const onBobsConversation = nextEvents<LocalMessage>(bobsView, 'messageRemoved');
    const removed = await first!.remove();
    expect(removed.sid).toBe(first!.sid);
    for (const [message] of [await onBob, await onBobsConversation]) {
      expect(message!.sid).toBe(first!.sid);
      expect(message!.index).toBe(0);
    }
    const page = await bobsView.getMessages(10, 0, 'forward');
    expect(page.items.map((m) => m.body)).toEqual(['e2ee1.second']);
    expect(page.hasPrevPage).toBe(false);
    expect(await server.store.history(conversation.sid, -1, 10)).toEqual([]);
    expect(await code(first!.remove())).toBe('NOT_FOUND');
  });

  it('the author updates attributes: messageUpdated with updateReasons ["attributes"], the body unchanged', async () => {
    const { bob, conversation, bobsView } = await pair();
    await conversation.sendMessage('e2ee1.body', { v: 1 });
    const [mine] = (await conversation.getMessages(1)).items as LocalMessage[];
    type Update = { message: LocalMessage; updateReasons: string[] };
    const onBob = nextEvents<Update>(bob, 'messageUpdated');
    const onBobsConversation = nextEvents<Update>(bobsView, 'messageUpdated');
    const updated = await mine!.updateAttributes({ v: 2 });
    expect(updated.attributes).toEqual({ v: 2 });
    for (const [update] of [await onBob, await onBobsConversation]) {
      expect(update!.updateReasons).toEqual(['attributes']);
      expect(update!.message.attributes).toEqual({ v: 2 });
      expect(update!.message.body).toBe('e2ee1.body');
    }
    const bobsCopy = (await bobsView.getMessages(1)).items[0] as LocalMessage;
    expect(await code(bobsCopy.updateAttributes({ v: 3 }))).toBe('FORBIDDEN');
    expect(await code(mine!.updateAttributes({ big: 'x'.repeat(5000) }))).toBe('ATTRIBUTES_TOO_LARGE');
    // A body edit says 'body'.
    const edited = nextEvents<Update>(bob, 'messageUpdated');
    await mine!.updateBody('e2ee1.edited');
    expect((await edited)[0]!.updateReasons).toEqual(['body']);
  });
});

describe('conversations', () => {
  it('finds a conversation by unique name and peeks by sid, for participants only', async () => {
    const { bob, conversation } = await pair();
    expect((await bob.getConversationByUniqueName(conversation.uniqueName!)).sid).toBe(conversation.sid);
    expect((await bob.peekConversationBySid(conversation.sid)).uniqueName).toBe(conversation.uniqueName);
    const mallory = await connect(`mallory-${run}`);
    expect(await code(mallory.getConversationByUniqueName(conversation.uniqueName!))).toBe('FORBIDDEN');
    expect(await code(mallory.peekConversationBySid(conversation.sid))).toBe('FORBIDDEN');
    expect(await code(mallory.getConversationByUniqueName(`nothing-${run}`))).toBe('NOT_FOUND');
  });

  it('updates the friendly name and attributes: conversationUpdated and the conversation\'s updated, with updateReasons', async () => {
    const { alice, conversation, bobsView } = await pair();
    type Update = { conversation: LocalConversation; updateReasons: string[] };
    const onAlice = nextEvents<Update>(alice, 'conversationUpdated');
    const onConversation = nextEvents<Update>(conversation, 'updated');
    expect(await bobsView.updateFriendlyName('renamed')).toBe(bobsView);
    expect(bobsView.friendlyName).toBe('renamed');
    for (const [update] of [await onAlice, await onConversation]) {
      expect(update!.updateReasons).toEqual(['friendlyName']);
      expect(update!.conversation).toBe(conversation);
    }
    expect(conversation.friendlyName).toBe('renamed');
    const retagged = nextEvents<Update>(alice, 'conversationUpdated');
    await bobsView.updateAttributes({ topic: 'plans' });
    expect((await retagged)[0]!.updateReasons).toEqual(['attributes']);
    expect(conversation.attributes).toEqual({ topic: 'plans' });
    expect(await code(bobsView.updateAttributes(JSON.parse('['.repeat(40) + ']'.repeat(40))))).toBe('ATTRIBUTES_TOO_DEEP');
    expect(await code((await connect(`mallory-${run}`)).request('updateConversation', { conversationSid: conversation.sid, friendlyName: 'x' }))).toBe('FORBIDDEN');
  });

  it('leave() gives conversationLeft; removeParticipant takes an identity, a sid or a participant; the others get participantLeft', async () => {
    const { alice, bob, conversation, bobsView } = await pair();
    const left = nextEvents<LocalConversation>(bob, 'conversationLeft');
    const seenByAlice = nextEvents<LocalParticipant>(conversation, 'participantLeft');
    expect(await bobsView.leave()).toBe(bobsView);
    expect((await left)[0]!.sid).toBe(conversation.sid);
    expect((await seenByAlice)[0]!.identity).toBe(bob.identity);

    for (const how of ['participant', 'sid', 'identity'] as const) {
      const carol = await connect(`carol-${how}-${run}`);
      const added = nextEvents(carol, 'conversationAdded');
      const participant = await conversation.add(carol.identity);
      await added;
      const removed = nextEvents<LocalConversation>(carol, 'conversationLeft');
      const seen = nextEvents<LocalParticipant>(alice, 'participantLeft');
      await conversation.removeParticipant(how === 'participant' ? participant : how === 'sid' ? participant.sid : carol.identity);
      expect((await seen)[0]!.identity).toBe(carol.identity);
      expect((await removed)[0]!.sid).toBe(conversation.sid);
    }
    expect((await conversation.getParticipants()).map((p) => p.identity)).toEqual([alice.identity]);
  });
});
