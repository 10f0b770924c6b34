/**
 * The drop-in wrapper over the SDK's own classes at run time. Each user's client is the real
 * @twilio/conversations 3 Client, its network replaced at the edge by an in-memory Twilio
 * (test/support/conversations-cloud.ts: twilsock/REST, Sync, notifications), wrapped by an
 * E2EEClient registered against our real server. What is checked is what an app holding the
 * wrapped objects sees: the SDK's classes, methods that need the real instance, and events
 * opened before they reach the app.
 *
 * Media content (the SDK's own media service client, over HTTP to a local stand-in) is in
 * real-sdk-media.test.ts. Not covered offline: push notifications, reachability and token
 * refresh against Twilio.
 *
 * What the SDK 3.0.1 keeps in private state: Message's #wrapMedia and #assignMedias (a WeakSet
 * brand check), run by its constructor and by `_update`, through which every change the service
 * makes to a message (an edit, delivery receipts, media) reaches the object. Its public getters
 * (attachedMedia, getMediaByCategories, limits, user) read plain fields, so they would work even
 * with the proxy as `this`; `_update` would not.
 */
import { Client, Conversation, Media, Message, Participant, User } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrap, type E2EEClient } from '../../client/index.js';
import { ENVELOPE_PREFIX } from '../../shared/index.js';
import { nextEvents } from '../support/concurrency.js';
import { ConversationsCloud, type CloudClient } from '../support/conversations-cloud.js';
import { realSdkPair } from '../support/real-sdk-pair.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

/** The SDK's internal update entry point (not in its declarations): the service's changes to a message. */
type MessageInternals = { _update(data: Record<string, unknown>): void };
type MessageUpdate = { message: Message; updateReasons: string[] };

let server: LoopbackServer;
let cloud: ConversationsCloud;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceSdk: CloudClient;
let bobSdk: CloudClient;
let aliceChat: Client;
let bobChat: Client;
/** Alice's and Bob's (wrapped) views of the one conversation. */
let atAlice: Conversation;
let atBob: Conversation;

beforeAll(async () => {
  server = await startLoopbackServer();
  [alice, bob] = await Promise.all([device(server, 'alice', { deviceName: 'laptop', backup: 'off' }), device(server, 'bob', { deviceName: 'phone', backup: 'off' })]);
  await Promise.all([alice.register(), bob.register()]);
  cloud = new ConversationsCloud();
  ({ sdks: [aliceSdk, bobSdk], aliceChat, bobChat, atAlice, atBob } = await realSdkPair(cloud, alice, bob, 'plans'));
});

afterAll(async () => {
  for (const chat of [aliceChat, bobChat]) await chat?.shutdown();
  await server?.close();
});

/** Alice sends `body`; resolves with the message as Bob's client-level listener gets it, and as Alice's does. */
async function aliceSends(body: string): Promise<{ bobs: Message; alices: Message }> {
  const toBob = nextEvents<Message>(bobChat, 'messageAdded');
  const toAlice = nextEvents<Message>(aliceChat, 'messageAdded');
  await atAlice.sendMessage(body);
  return { bobs: (await toBob)[0]!, alices: (await toAlice)[0]! };
}

describe("the SDK's own classes", () => {
  it('the wrapped client is a Client, and unwrap gives the one the app built', () => {
    expect(aliceChat).toBeInstanceOf(Client);
    expect(aliceChat).not.toBe(aliceSdk.client);
    expect(unwrap(aliceChat)).toBe(aliceSdk.client);
    expect(aliceChat.connectionState).toBe('connected');
    expect(aliceChat.user).toBeInstanceOf(User);
    expect(aliceChat.user.identity).toBe('alice');
  });

  it('conversations are Conversations, one object per conversation, over the SDK one', async () => {
    expect(atBob).toBeInstanceOf(Conversation);
    expect(unwrap(atBob)).toBeInstanceOf(Conversation);
    expect(unwrap(atBob)).not.toBe(atBob);
    expect(await bobChat.getConversationBySid(atAlice.sid)).toBe(atBob);
    const page = await bobChat.getSubscribedConversations();
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toBe(atBob);
    expect(atBob.friendlyName).toBe('plans');
    expect(atBob.createdBy).toBe('alice');
    expect(atBob.limits.mediaAttachmentsCountLimit).toBe(10);
  });

  it('participants are Participants whose conversation is the wrapped one', async () => {
    const participants = await atBob.getParticipants();
    expect(participants.map((p) => p.identity).sort()).toEqual(['alice', 'bob']);
    for (const participant of participants) {
      expect(participant).toBeInstanceOf(Participant);
      expect(unwrap(participant)).not.toBe(participant);
      expect(participant.conversation).toBe(atBob);
      expect(unwrap(participant).conversation).toBe(unwrap(atBob));
    }
  });

  it('messages are Messages with the plaintext; unwrap gives the SDK message holding the envelope', async () => {
    const { bobs } = await aliceSends('meet at noon');
    expect(bobs).toBeInstanceOf(Message);
    expect(bobs.body).toBe('meet at noon');
    expect(bobs.author).toBe('alice');
    expect(bobs.e2ee).toMatchObject({ status: 'verified', via: 'direct', senderCardId: alice.card!.id, senderDeviceName: 'laptop' });
    expect(bobs.conversation).toBe(atBob);
    const raw = unwrap(bobs);
    expect(raw).toBeInstanceOf(Message);
    expect(raw.body!.startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(raw.body).not.toContain('noon');
    expect(cloud.storedMessages(atBob.sid).find((m) => m.data.sid === bobs.sid)!.data.text).toBe(raw.body);

    const page = await atBob.getMessages(1);
    expect(page.items[0]).toBeInstanceOf(Message);
    expect(page.items[0]).toBe(bobs);
  });
});

describe('private state: methods run on the real instance', () => {
  it("media attached by a client without the wrapper are the SDK's Media, read through the proxy", async () => {
    const toBob = nextEvents<Message>(bobChat, 'messageAdded');
    const photo = { sid: 'ME00000000000000000000000000000001', category: 'media', filename: 'photo.jpg', contentType: 'image/jpeg', size: 1234 };
    cloud.deliver(atBob.sid, 'alice', { text: null, type: 'media', medias: [photo], attributes: '{}' });
    const [message] = (await toBob) as [Message];
    expect(message.e2ee?.status).toBe('unencrypted');
    expect(message.type).toBe('media');
    const [media] = message.attachedMedia!;
    expect(media).toBeInstanceOf(Media);
    expect({ sid: media!.sid, filename: media!.filename, contentType: media!.contentType, size: media!.size, category: media!.category }).toEqual(photo);
    expect(message.getMediaByCategories(['media'])).toEqual([media]);
  });

  it("the service's change to a message runs the SDK's private media code on the real message; with the proxy as this it throws", async () => {
    const { bobs } = await aliceSends('receipts follow');
    const stored = cloud.storedMessages(atBob.sid).find((m) => m.data.sid === bobs.sid)!.data;
    const internals = Message.prototype as unknown as MessageInternals;
    // What a Proxy that did not forward with the real object as `this` would do:
    expect(() => internals._update.call(bobs, stored)).toThrow(TypeError);
    expect(() => internals._update.call(bobs, stored)).toThrow(/private/);
    // Through the proxy, the same member runs on the real message (the stored data: nothing changes).
    expect(() => (bobs as unknown as MessageInternals)._update(stored)).not.toThrow();

    // The service adds a delivery receipt: the SDK updates its message, and the app's listeners get it opened.
    const onMessage = nextEvents<MessageUpdate>(bobs, 'updated');
    const onClient = nextEvents<MessageUpdate>(bobChat, 'messageUpdated');
    const delivery = { total: 2, sent: 'all', delivered: 'some', read: 'none', undelivered: 'none', failed: 'none' };
    cloud.amend(atBob.sid, bobs.index, { delivery });
    const [[fromMessage], [fromClient]] = await Promise.all([onMessage, onClient]);
    for (const update of [fromMessage!, fromClient!]) {
      expect(update.updateReasons).toEqual(['deliveryReceipt']);
      expect(update.message).toBe(bobs);
    }
    expect(bobs.body).toBe('receipts follow');
    expect(bobs.e2ee?.status).toBe('verified');
    expect(bobs.aggregatedDeliveryReceipt?.delivered).toBe('some');
  });
});

describe('events reach the app opened', () => {
  it('messageAdded: on the client and on the conversation, the same Message, in the plaintext', async () => {
    const onConversation = nextEvents<Message>(atBob, 'messageAdded');
    const { bobs, alices } = await aliceSends('see you there');
    const [fromConversation] = await onConversation;
    expect(fromConversation).toBe(bobs);
    expect(fromConversation).toBeInstanceOf(Message);
    expect(fromConversation!.body).toBe('see you there');
    expect(fromConversation!.e2ee?.status).toBe('verified');
    // The sender's own client opens her message too (it is sealed for her device as well).
    expect(alices).toBeInstanceOf(Message);
    expect(alices.body).toBe('see you there');
    expect(alices.e2ee?.status).toBe('verified');
  });

  it('messageUpdated and message.on("updated"): an edit arrives opened, on the object the app holds', async () => {
    const { bobs, alices } = await aliceSends('draft');
    const onClient = nextEvents<MessageUpdate>(bobChat, 'messageUpdated');
    const onConversation = nextEvents<MessageUpdate>(atBob, 'messageUpdated');
    const onMessage = nextEvents<MessageUpdate>(bobs, 'updated');
    const edited = await alices.updateBody('final');
    expect(edited).toBe(alices);
    const updates = await Promise.all([onClient, onConversation, onMessage]);
    for (const [update] of updates) {
      expect(update!.message).toBe(bobs);
      expect(update!.updateReasons).toContain('body');
    }
    expect(bobs).toBeInstanceOf(Message);
    expect(bobs.body).toBe('final');
    expect(bobs.e2ee?.status).toBe('verified');
    expect(unwrap(bobs).body!.startsWith(ENVELOPE_PREFIX)).toBe(true);
    await expect.poll(() => alices.body).toBe('final');
  });

  // The SDK resolves Message.updateBody with the same Message, whose body is still the old
  // envelope until the service's Sync update arrives (the local relay client resolves with a fresh
  // message, so only the real SDK shows this): the wrapper must show the version it sealed.
  it("the editor's own message shows the edit once updateBody resolves", async () => {
    const { alices } = await aliceSends('typo');
    await alices.updateBody('fixed');
    expect(alices.body).toBe('fixed');
  });

  it('typingStarted passes through with a Participant whose conversation is the wrapped one', async () => {
    const onClient = nextEvents<Participant>(bobChat, 'typingStarted');
    const onConversation = nextEvents<Participant>(atBob, 'typingStarted');
    await atAlice.typing();
    const [[fromClient], [fromConversation]] = await Promise.all([onClient, onConversation]);
    for (const typist of [fromClient!, fromConversation!]) {
      expect(typist).toBeInstanceOf(Participant);
      expect(typist.identity).toBe('alice');
      expect(typist.isTyping).toBe(true);
      expect(typist.conversation).toBe(atBob);
    }
    expect(fromClient).toBe(fromConversation);
  });

  it('messageRemoved hands over the Message with the plaintext last shown', async () => {
    const { bobs, alices } = await aliceSends('delete me');
    const removed = nextEvents<Message>(bobChat, 'messageRemoved');
    await alices.remove();
    const [message] = await removed;
    expect(message).toBe(bobs);
    expect(message!.body).toBe('delete me');
  });
});
