/**
 * The local relay client as a stand-in for the SDK: typing, read horizons, message removal and
 * attributes, conversation updates, unique names, leaving and removing participants, each with
 * the events a second session sees (the SDK's names and payloads); every public member of the
 * SDK's classes present on the relay's objects (read from the SDK's declarations), the members
 * answered from what the relay stores, and what it does not carry answered as the SDK does when
 * the feature is not in use, or refused with RELAY_UNSUPPORTED.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { API } from 'typescript/unstable/sync';
import { type Node, SyntaxKind, isClassDeclaration, isGetAccessorDeclaration, isMethodDeclaration, isPropertyDeclaration } from 'typescript/unstable/ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConversationsClient, type E2EEError, type LocalConversation, type LocalMessage, type LocalParticipant } from '../../client/index.js';
import type { LocalUser } from '../../client/local/relay-user.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
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

const ROOT = resolve(import.meta.dirname, '../..');
const SDK_TYPES = join(ROOT, 'node_modules/@twilio/conversations/builds/lib.d.ts');
const EMITTER_TYPES = join(ROOT, 'node_modules/@twilio/replay-event-emitter/builds/lib.d.ts');

/**
 * The public instance members each class declares, read by the TypeScript compiler from the
 * SDK's declaration files: no private, protected or static ones, no constructor, no `_internal`
 * or `#private` names, no setter without a getter.
 */
function declaredMembers(classes: string[]): Map<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sdk-members-'));
  const api = new API({ cwd: ROOT });
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ files: [SDK_TYPES, EMITTER_TYPES], compilerOptions: { noEmit: true, types: [] } }));
    const project = api.updateSnapshot({ openProjects: [join(dir, 'tsconfig.json')] }).getProjects()[0]!;
    const found = new Map<string, string[]>();
    const hidden = new Set([SyntaxKind.PrivateKeyword, SyntaxKind.ProtectedKeyword, SyntaxKind.StaticKeyword]);
    const visit = (node: Node): void => {
      if (isClassDeclaration(node) && node.name && classes.includes(node.name.text)) {
        const names = node.members.flatMap((m) => {
          if (!isMethodDeclaration(m) && !isPropertyDeclaration(m) && !isGetAccessorDeclaration(m)) return [];
          if (m.modifiers?.some((modifier) => hidden.has(modifier.kind))) return [];
          const name = m.name.getText();
          return /^[A-Za-z]/.test(name) ? [name] : [];
        });
        found.set(node.name.text, [...new Set(names)]);
      }
      node.forEachChild(visit);
    };
    for (const path of [SDK_TYPES, EMITTER_TYPES]) visit(project.program.getSourceFile(path)!);
    return found;
  } finally {
    api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('every SDK member', () => {
  it("exists on the relay's client, conversations, messages, participants and users (`in`)", async () => {
    const declared = declaredMembers(['Client', 'Conversation', 'Message', 'Participant', 'User', 'ReplayEventEmitter']);
    const emitter = declared.get('ReplayEventEmitter')!;
    expect(emitter).toEqual(expect.arrayContaining(['on', 'once', 'off', 'onWithReplay']));

    const { alice, conversation } = await pair();
    await conversation.sendMessage('e2ee1.a message');
    const objects: Record<string, object> = {
      Client: alice,
      Conversation: conversation,
      Message: (await conversation.getMessages(1)).items[0]!,
      Participant: (await conversation.getParticipants())[0]!,
      User: alice.user,
    };
    let counted = 0;
    const missing: string[] = [];
    for (const [cls, object] of Object.entries(objects)) {
      const members = [...declared.get(cls)!, ...emitter];
      counted += members.length;
      for (const member of members) if (!(member in object)) missing.push(`${cls}.${member}`);
    }
    expect(counted).toBeGreaterThan(150);
    expect(missing).toEqual([]);
  });
});

describe('members answered from what the relay stores', () => {
  it('updateUniqueName renames (updateReasons ["uniqueName"]), stored as sent; a taken name is CONFLICT and changes nothing; null removes it', async () => {
    const { alice, bob, conversation, bobsView } = await pair();
    const taken = `taken-${run}`;
    await (await alice.createConversation({ uniqueName: taken })).join();
    type Update = { conversation: LocalConversation; updateReasons: string[] };
    const onAlice = nextEvents<Update>(alice, 'conversationUpdated');
    const name = `renamed ${run} \u00e9\ud83d\ude00`;
    expect(await bobsView.updateUniqueName(name)).toBe(bobsView);
    expect(bobsView.uniqueName).toBe(name);
    const [update] = await onAlice;
    expect(update!.updateReasons).toEqual(['uniqueName']);
    expect(conversation.uniqueName).toBe(name);
    expect((await server.store.getConversation(conversation.sid))!.uniqueName).toBe(name);
    expect((await bob.getConversationByUniqueName(name)).sid).toBe(conversation.sid);
    expect(await code(bob.getConversationByUniqueName(`room-${run}`))).toBe('NOT_FOUND');

    expect(await code(bobsView.updateUniqueName(taken))).toBe('CONFLICT');
    expect(bobsView.uniqueName).toBe(name);
    expect((await server.store.getConversation(conversation.sid))!.uniqueName).toBe(name);
    expect(await code(bobsView.updateUniqueName(''))).toBe('BAD_REQUEST');

    expect((await bobsView.updateUniqueName(null)).uniqueName).toBeNull();
    expect((await server.store.getConversation(conversation.sid))!.uniqueName).toBeNull();
    expect(await code(bob.getConversationByUniqueName(name))).toBe('NOT_FOUND');
  });

  it('getMessagesCount and lastMessage follow sends and removals; status says whether this user is in', async () => {
    const { bob, conversation, bobsView } = await pair();
    expect([conversation.status, bobsView.status]).toEqual(['joined', 'joined']);
    expect(bobsView.lastMessage).toBeUndefined();
    expect(await bobsView.getMessagesCount()).toBe(0);
    const received = nextEvents<LocalMessage>(bob, 'messageAdded', 3);
    for (const body of ['e2ee1.a', 'e2ee1.b', 'e2ee1.c']) await conversation.sendMessage(body);
    const messages = await received;
    expect(bobsView.lastMessage).toEqual({ index: 2, dateCreated: messages[2]!.dateCreated });
    expect(await bobsView.getMessagesCount()).toBe(3);

    const [newest] = (await conversation.getMessages(1)).items as LocalMessage[];
    const removed = nextEvents<LocalMessage>(bob, 'messageRemoved');
    await newest!.remove();
    await removed;
    await waitFor(() => bobsView.lastMessage?.index === 1, "bob's lastMessage to go back to #1");
    expect(await bobsView.getMessagesCount()).toBe(2);
    expect((await (await connect(bob.identity)).getConversationBySid(conversation.sid)).lastMessage).toEqual({ index: 1, dateCreated: messages[1]!.dateCreated });

    const carol = await connect(`carol-${run}`);
    const own = await carol.createConversation();
    expect(own.status).toBe('notParticipating');
    expect((await own.join()).status).toBe('joined');

    const gone = nextEvents<LocalConversation>(bobsView, 'removed');
    await conversation.removeParticipant(bob.identity);
    expect((await gone)[0]).toBe(bobsView);
    expect(bobsView.status).toBe('notParticipating');
  });

  it("a text message has no media; participantSid and getParticipant() name the author's participant while it is one", async () => {
    const { alice, conversation, bobsView } = await pair();
    await conversation.sendMessage('e2ee1.text');
    const [message] = (await bobsView.getMessages(1)).items as LocalMessage[];
    const author = (await bobsView.getParticipantByIdentity(alice.identity))!;
    expect(message).toMatchObject({ type: 'text', media: null, attachedMedia: [], subject: null, contentSid: null, aggregatedDeliveryReceipt: null, lastUpdatedBy: null });
    expect(message!.participantSid).toBe(author.sid);
    expect(await message!.getParticipant()).toBe(author); // the conversation's one object for it
    expect(message!.getMediaByCategories(['media'])).toEqual([]);
    expect([message!.getEmailBody(), message!.getEmailHistory()]).toEqual([null, null]);
    expect(await message!.getContentData()).toBeNull();
    expect(await message!.getChannelMetadata()).toBeNull();
    expect(await message!.getDetailedDeliveryReceipts()).toEqual([]);
    expect(await message!.getMessageRecipients()).toEqual([]);
    expect(await message!.getTemporaryContentUrlsForAttachedMedia()).toEqual(new Map());
    expect(await code(message!.getTemporaryContentUrlsForMediaSids(['ME0123']))).toBe('NOT_FOUND');

    const [mine] = (await conversation.getMessages(1)).items as LocalMessage[];
    expect((await mine!.updateBody('e2ee1.edited')).lastUpdatedBy).toBe(alice.identity);
    await conversation.leave();
    const [after] = (await bobsView.getMessages(1)).items as LocalMessage[];
    expect(after!.participantSid).toBeNull();
    expect(await code(after!.getParticipant())).toBe('NOT_FOUND');
  });

  it('advanceLastReadMessageIndex only moves the read horizon forward', async () => {
    const { bob, conversation, bobsView } = await pair();
    for (const body of ['e2ee1.a', 'e2ee1.b', 'e2ee1.c']) await conversation.sendMessage(body);
    expect(await bobsView.advanceLastReadMessageIndex(1)).toBe(1);
    expect(await bobsView.advanceLastReadMessageIndex(0)).toBe(1);
    expect(bobsView.lastReadMessageIndex).toBe(1);
    expect((await server.store.getParticipant(conversation.sid, bob.identity))!.lastReadMessageIndex).toBe(1);
    expect(await bobsView.advanceLastReadMessageIndex(2)).toBe(0);
    expect(await code(bobsView.advanceLastReadMessageIndex(-1))).toBe('BAD_REQUEST');
  });

  it('participants: one object each, updated in place with its own updated and typing events; added with attributes', async () => {
    const { bob, conversation, bobsView } = await pair();
    const carol = await connect(`carol-${run}`);
    const added = await conversation.add(carol.identity, { role: 'moderator' });
    expect(added.attributes).toEqual({ role: 'moderator' });
    expect((await server.store.getParticipant(conversation.sid, carol.identity))!.attributes).toBe('{"role":"moderator"}');

    const held = (await conversation.getParticipantByIdentity(bob.identity))!;
    expect((await conversation.getParticipants()).find((p) => p.identity === bob.identity)).toBe(held);
    expect([held.dateUpdated, held.lastReadTimestamp, held.roleSid, held.bindings]).toEqual([held.dateCreated, null, '', {}]);
    const updated = nextEvents<{ participant: LocalParticipant; updateReasons: string[] }>(held, 'updated');
    const before = Date.now();
    await conversation.sendMessage('e2ee1.read me');
    await bobsView.setAllMessagesRead();
    const [update] = await updated;
    expect(update!.participant).toBe(held);
    expect(update!.updateReasons).toEqual(['lastReadMessageIndex']);
    expect(held.lastReadMessageIndex).toBe(0);
    expect(held.lastReadTimestamp!.getTime()).toBeGreaterThanOrEqual(before);

    const typing = nextEvents<LocalParticipant>(held, 'typingStarted');
    await bobsView.typing();
    expect((await typing)[0]).toBe(held);
    // The SDK's replay: a late listener gets the last event at once.
    const replayed: LocalParticipant[] = [];
    held.onWithReplay('typingStarted', (p) => replayed.push(p));
    expect(replayed).toEqual([held]);
  });
});

describe('users', () => {
  it("client.user is this user; getUser subscribes (userSubscribed) in this client's memory, unsubscribe() ends it; profiles are not stored", async () => {
    const { alice, bob, conversation } = await pair();
    expect(alice.user.identity).toBe(alice.identity);
    expect(await alice.getUser(alice.identity)).toBe(alice.user);
    expect(alice.user).toMatchObject({ friendlyName: null, attributes: {}, isOnline: null, isNotifiable: null, isSubscribed: true });
    expect(alice.reachabilityEnabled).toBe(false);

    const subscribed = nextEvents<LocalUser>(alice, 'userSubscribed');
    const bobAsParticipant = (await conversation.getParticipantByIdentity(bob.identity))!;
    const user = await bobAsParticipant.getUser();
    expect((await subscribed)[0]).toBe(user);
    expect(user).toMatchObject({ identity: bob.identity, isSubscribed: true });
    expect(await alice.getUser(bob.identity)).toBe(user);
    expect(await alice.getSubscribedUsers()).toEqual([user]);

    const unsubscribed = nextEvents<LocalUser>(user, 'userUnsubscribed');
    await user.unsubscribe();
    expect((await unsubscribed)[0]).toBe(user);
    expect(user.isSubscribed).toBe(false);
    expect(await alice.getSubscribedUsers()).toEqual([]);

    expect(await code(alice.user.updateFriendlyName('Alice'))).toBe('RELAY_UNSUPPORTED');
    expect(await code(alice.user.updateAttributes({ title: 'x' }))).toBe('RELAY_UNSUPPORTED');
    expect(alice.user.friendlyName).toBeNull();
    expect(await code(alice.getUser(''))).toBe('INVALID_ARGUMENT');
  });
});

describe('what the relay does not carry', () => {
  it('is answered as the SDK answers when the feature is not in use, or refused with RELAY_UNSUPPORTED, nothing done', async () => {
    const { alice, conversation } = await pair();
    // No templates: an empty answer. (Media are the relay's: test/client/relay-media.test.ts; an unknown sid is NOT_FOUND.)
    expect(await alice.getContentTemplates()).toEqual([]);
    expect(await alice.getTemporaryContentUrlsForMediaSids([])).toEqual(new Map());
    expect(await code(alice.getTemporaryContentUrlsForMedia([{ sid: 'ME0123' }]))).toBe('NOT_FOUND');
    // No pushes: a registration would bring none; there is none to remove.
    expect(await code(alice.setPushRegistrationId('fcm', 'token'))).toBe('RELAY_UNSUPPORTED');
    await expect(alice.unsetPushRegistrationId('fcm')).resolves.toBeUndefined();
    await expect(alice.removePushRegistrations('fcm', 'token')).resolves.toBeUndefined();
    expect(() => alice.parsePushNotification({ twi_message_type: 'twilio.conversations.new_message' })).toThrow(expect.objectContaining({ code: 'RELAY_UNSUPPORTED' }));
    expect(await code(alice.handlePushNotification({}))).toBe('RELAY_UNSUPPORTED');

    const participants = await server.store.participants(conversation.sid);
    expect(await code(conversation.addNonChatParticipant('+15550001', '+15550002'))).toBe('RELAY_UNSUPPORTED');
    expect(await code(conversation.setUserNotificationLevel('muted'))).toBe('RELAY_UNSUPPORTED');
    expect(conversation.notificationLevel).toBe('default');
    expect(await code(conversation.delete())).toBe('RELAY_UNSUPPORTED');
    expect(await server.store.participants(conversation.sid)).toEqual(participants);
    expect(await server.store.getConversation(conversation.sid)).not.toBeNull();

    expect(conversation.limits).toEqual({
      mediaAttachmentsCountLimit: 10,
      mediaAttachmentSizeLimitInMb: 150,
      mediaAttachmentsTotalSizeLimitInMb: 1500,
      emailHistoriesAllowedContentTypes: [],
      emailBodiesAllowedContentTypes: [],
    });
    expect(conversation.state).toEqual({ current: 'active', dateUpdated: conversation.dateCreated });
    expect(conversation.bindings).toEqual({});
    expect((await conversation.getMessageRecipients()).items).toEqual([]);
  });
});
