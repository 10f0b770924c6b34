/**
 * The wrapped client as a drop-in @twilio/conversations client, end to end on the relay: every
 * event reaches the app with decrypted payloads, every way to a conversation leads to the
 * intercepted one, what cannot be encrypted is refused, held objects show later edits, a
 * synchronous wrap() holds sends until the device is registered, push notifications open to the
 * verified message, and the relay's files hold none of the plaintexts after all of it.
 */
import type { Client, Conversation, Message, Participant } from '@twilio/conversations';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptPushNotification, E2EEError, e2eeClientOf, e2eeInfo, LocalConversationsClient, MemoryKeyStore, unwrap, wrap, type E2EEClient } from '../../client/node.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceChat: Client;
let bobChat: Client;
let conversation: Conversation;
let bobConversation: Conversation;
/** Every text sent encrypted in this file: none may reach the relay's files. */
const secrets = new Set<string>();
const secret = (text: string) => (secrets.add(text), text);

beforeAll(async () => {
  server = await startLoopbackServer();
  alice = await device(server, 'alice', { cardCacheTtlMs: 0, clearAttributes: ['ticketId'] });
  bob = await device(server, 'bob', { cardCacheTtlMs: 0 });
  [aliceChat, bobChat] = await Promise.all([alice.connect(), bob.connect()]);
  conversation = await aliceChat.createConversation({ uniqueName: 'drop-in', friendlyName: 'drop-in' });
  await conversation.join();
  const bobAdded = nextEvents<Conversation>(bobChat, 'conversationAdded');
  await conversation.add('bob');
  [bobConversation] = (await bobAdded) as [Conversation];
});

afterAll(async () => {
  for (const chat of [aliceChat, bobChat]) await chat?.shutdown();
  await server?.close();
});

/** Resolves with the first `event` the emitter reports. */
function next<T>(emitter: { once(event: string, listener: (value: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, resolve));
}

describe('objects reached from the wrapped client', () => {
  it('are intercepted whichever way the app reaches them, so a send from any of them is sealed', async () => {
    expect(bobConversation).not.toBe(unwrap(bobConversation)); // the app's is the intercepted one
    const ways: Array<[string, () => Promise<Conversation>]> = [
      ['getConversationBySid', () => bobChat.getConversationBySid(conversation.sid)],
      ['getConversationByUniqueName', () => bobChat.getConversationByUniqueName('drop-in')],
      ['peekConversationBySid', () => bobChat.peekConversationBySid(conversation.sid)],
      ['getSubscribedConversations', async () => (await bobChat.getSubscribedConversations()).items.find((c) => c.sid === conversation.sid)!],
      ['participant.conversation', async () => (await bobConversation.getParticipants())[0]!.conversation],
      ['getParticipantByIdentity().conversation', async () => (await bobConversation.getParticipantByIdentity('alice'))!.conversation],
      ['message.conversation', async () => (await bobConversation.getMessages()).items.at(-1)?.conversation ?? bobConversation],
      ['join()', () => bobConversation.join()],
    ];
    for (const [way, reach] of ways) {
      const reached = await reach();
      expect(reached, way).toBe(bobConversation);
      const atAlice = next<Message>(aliceChat, 'messageAdded');
      const ownEcho = next<Message>(bobChat, 'messageAdded');
      const index = await reached.sendMessage(secret(`sent through ${way}`));
      await ownEcho;
      const stored = (await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]!;
      expect(stored.index, way).toBe(index);
      expect(stored.body.startsWith('e2ee1.'), way).toBe(true);
      expect((await atAlice).body, way).toBe(`sent through ${way}`);
    }
  });

  it('refuses what cannot be encrypted, naming why, and sends nothing', async () => {
    const before = await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 });
    const builder = bobConversation.prepareMessage();
    const refusals: Array<[string, () => unknown]> = [
      ['setSubject', () => builder.setSubject('a subject')],
      ['setEmailBody', () => builder.setEmailBody('text/plain', { contentType: 'text/plain', media: 'mail' })],
      ['setEmailHistory', () => builder.setEmailHistory('text/plain', { contentType: 'text/plain', media: 'mail' })],
      ['setContentTemplate', () => builder.setContentTemplate('HX00000000000000000000000000000000')],
    ];
    for (const [what, call] of refusals) expect(call, what).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_CONTENT' }));
    await expect(bobConversation.sendMessage(new FormData())).rejects.toMatchObject({ code: 'UNSUPPORTED_CONTENT' }); // files go as {contentType, filename, media}
    await expect(bobConversation.sendMessage('with an email subject', {}, { subject: 'visible' })).rejects.toMatchObject({ code: 'UNSUPPORTED_CONTENT' });
    expect(await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 })).toEqual(before);
  });

  it("send the builder's body and attributes sealed, the attributes signed", async () => {
    const atAlice = next<Message>(aliceChat, 'messageAdded');
    const ownEcho = next<Message>(bobChat, 'messageAdded');
    const index = await bobConversation
      .prepareMessage()
      .setBody(secret('built and sealed'))
      .setAttributes({ replyTo: secret('message 3'), ticketId: 'T-1' })
      .build()
      .send();
    const [received] = await Promise.all([atAlice, ownEcho]);
    expect(received).toMatchObject({ index, body: 'built and sealed', attributes: { replyTo: 'message 3', ticketId: 'T-1' } });
    expect(e2eeInfo(received).status).toBe('verified');
    // Bob's client has no clearAttributes: the relay holds none of them.
    expect((await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]!.attributes).toBe('{}');
  });
});

describe('events', () => {
  it('messageAdded on the client and the conversation carry the same opened Message, in order', async () => {
    const onClient = nextEvents<Message>(bobChat, 'messageAdded', 3);
    const onConversation = nextEvents<Message>(bobConversation, 'messageAdded', 3);
    for (const text of ['one', 'two', 'three']) await conversation.sendMessage(secret(`in order ${text}`));
    const [fromClient, fromConversation] = await Promise.all([onClient, onConversation]);
    expect(fromClient.map((m) => m.body)).toEqual(['in order one', 'in order two', 'in order three']);
    expect(fromConversation).toEqual(fromClient);
    for (const [i, m] of fromClient.entries()) expect(m).toBe(fromConversation[i]); // one object per message
    expect(fromClient[0]!.conversation).toBe(bobConversation);
  });

  it('an edit reaches messageUpdated (client, conversation) and message.on("updated"), and the held object shows it', async () => {
    const atBob = next<Message>(bobChat, 'messageAdded');
    await conversation.sendMessage(secret('before the edit'), { ticketId: 'T-2', note: secret('a private note') });
    const held = await atBob;
    const aliceView = (await conversation.getMessages(1)).items[0]!;
    const updated = {
      client: next<{ message: Message; updateReasons: string[] }>(bobChat, 'messageUpdated'),
      conversation: next<{ message: Message }>(bobConversation, 'messageUpdated'),
      message: next<{ message: Message }>(held, 'updated'),
    };
    await aliceView.updateBody(secret('after the edit'));
    expect(aliceView.body).toBe('after the edit'); // the author's own object, at once
    const [client, onConversation, onMessage] = await Promise.all([updated.client, updated.conversation, updated.message]);
    for (const data of [client, onConversation, onMessage]) expect(data.message).toBe(held);
    expect(client.updateReasons).toContain('body');
    expect(client.updateReasons).not.toContain('attributes');
    expect(held.body).toBe('after the edit');
    expect(held.attributes).toEqual({ ticketId: 'T-2', note: 'a private note' });
    expect(e2eeInfo(held).status).toBe('verified');

    // A reaction by the author is an attribute edit: sealed, signed, bound to the message.
    const reacted = next<{ message: Message; updateReasons: string[] }>(held, 'updated');
    await aliceView.updateAttributes({ ticketId: 'T-2', note: 'a private note', reactions: { '👍': ['alice'] } });
    // Twilio saw a new body (the envelope); the app is told the attributes changed, not the body.
    expect((await reacted).updateReasons).toContain('attributes');
    expect((await reacted).updateReasons).not.toContain('body');
    expect(held.attributes).toEqual({ ticketId: 'T-2', note: 'a private note', reactions: { '👍': ['alice'] } });
    expect(held.body).toBe('after the edit');
    expect(e2eeInfo(held).status).toBe('verified');
    // Bob may not edit alice's message.
    await expect(held.updateBody('bob was here')).rejects.toMatchObject({ code: 'NOT_MESSAGE_AUTHOR' });
    // History holds the latest version, so a support agent joining later reads the edit.
    const current = async () => (await server.store.getMessage(conversation.sid, held.sid))!.body;
    const copy = async () => (await server.store.history(conversation.sid, -1, 500)).find((r) => r.messageSid === held.sid)?.envelope;
    await waitFor(async () => (await copy()) === (await current()), 'the backup of the latest version');
    const agent = await device(server, 'agent-1');
    await conversation.add('agent-1');
    const agentChat = await agent.connect();
    try {
      const seen = (await (await agentChat.getConversationBySid(conversation.sid)).getMessages(100)).items.find((m) => m.sid === held.sid)!;
      expect(seen.body).toBe('after the edit');
      expect(seen.attributes).toEqual({ ticketId: 'T-2', note: 'a private note', reactions: { '👍': ['alice'] } });
      expect(e2eeInfo(seen)).toMatchObject({ status: 'verified', via: 'history' });
    } finally {
      await agentChat.shutdown();
      await conversation.removeParticipant('agent-1');
    }
  });

  it('messageRemoved carries the message as it was shown', async () => {
    const atBob = next<Message>(bobChat, 'messageAdded');
    await conversation.sendMessage(secret('soon removed'));
    const held = await atBob;
    const removed = { client: next<Message>(bobChat, 'messageRemoved'), conversation: next<Message>(bobConversation, 'messageRemoved') };
    const aliceView = (await conversation.getMessages(1)).items[0]!;
    const backedUp = async () => (await server.store.history(conversation.sid, -1, 500)).some((r) => r.messageSid === aliceView.sid);
    await waitFor(backedUp, 'the backup of the message');
    await aliceView.remove();
    const [onClient, onConversation] = await Promise.all([removed.client, removed.conversation]);
    expect(await backedUp()).toBe(false); // an agent reading history later does not get it
    expect(onClient).toBe(held);
    expect(onConversation).toBe(held);
    expect(onClient.body).toBe('soon removed');
  });

  it('participant and typing events carry participants whose conversation is the intercepted one', async () => {
    const typing = { client: next<Participant>(bobChat, 'typingStarted'), conversation: next<Participant>(bobConversation, 'typingStarted') };
    await conversation.typing();
    for (const participant of await Promise.all([typing.client, typing.conversation])) {
      expect(participant.identity).toBe('alice');
      expect(participant.conversation).toBe(bobConversation);
    }
    const carol = await device(server, 'carol');
    await carol.register();
    const joined = { client: next<Participant>(bobChat, 'participantJoined'), conversation: next<Participant>(bobConversation, 'participantJoined') };
    await conversation.add('carol');
    for (const participant of await Promise.all([joined.client, joined.conversation])) {
      expect(participant.identity).toBe('carol');
      expect(participant.conversation).toBe(bobConversation);
    }
    const updated = next<{ participant: Participant; updateReasons: string[] }>(bobChat, 'participantUpdated');
    const self = (await conversation.getParticipantByIdentity('alice'))!;
    await self.updateAttributes({ status: 'away' });
    const data = await updated;
    expect(data.participant.conversation).toBe(bobConversation);
    expect(data.updateReasons).toContain('attributes');
    const left = next<Participant>(bobConversation, 'participantLeft');
    await conversation.removeParticipant('carol');
    expect((await left).conversation).toBe(bobConversation);
  });

  it('conversationUpdated carries the intercepted conversation; off() removes a listener', async () => {
    const updated = next<{ conversation: Conversation; updateReasons: string[] }>(bobChat, 'conversationUpdated');
    await conversation.updateFriendlyName('drop-in, renamed');
    const data = await updated;
    expect(data.conversation).toBe(bobConversation);
    expect(data.conversation.friendlyName).toBe('drop-in, renamed');

    let calls = 0;
    const listener = () => calls++;
    bobChat.on('messageAdded', listener);
    bobChat.off('messageAdded', listener);
    const delivered = next<Message>(bobChat, 'messageAdded');
    await conversation.sendMessage(secret('after off'));
    await delivered;
    expect(calls).toBe(0);
  });
});

describe('leaving and rejoining', () => {
  it('conversationLeft and conversationRemoved carry the intercepted conversation; after a rejoin sends are sealed again', async () => {
    const left = next<Conversation>(bobChat, 'conversationLeft');
    const removed = next<Conversation>(bobChat, 'conversationRemoved');
    await bobConversation.leave();
    expect(await left).toBe(bobConversation);
    expect(await removed).toBe(bobConversation);

    const added = next<Conversation>(bobChat, 'conversationAdded');
    await conversation.add('bob');
    bobConversation = await added;
    expect(bobConversation).not.toBe(unwrap(bobConversation));
    const atAlice = next<Message>(aliceChat, 'messageAdded');
    const ownEcho = next<Message>(bobChat, 'messageAdded');
    await bobConversation.sendMessage(secret('back again'));
    const [received] = await Promise.all([atAlice, ownEcho]);
    expect(received.body).toBe('back again');
    expect(e2eeInfo(received).status).toBe('verified');
  });
});

describe('wrap(new Client(token), options)', () => {
  it('returns the client synchronously; sends wait for the device, which registers in the background', async () => {
    const token = await alice.api.twilioToken();
    if (token.mode !== 'local') throw new Error('expected the local relay');
    const raw = await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token });
    const sessionToken = await server.session('alice');
    const chat = wrap(raw, { serverUrl: server.url, getAuthToken: () => sessionToken, appPublicKeys: [server.appPublicKey], keyStore: new MemoryKeyStore(), deviceName: 'tablet' });
    try {
      expect(unwrap(chat)).toBe(raw);
      // Called at once, before the device exists: the send waits for it and is sealed for it too.
      const sameConversation = await chat.getConversationBySid(conversation.sid);
      const atBob = next<Message>(bobChat, 'messageAdded');
      await sameConversation.sendMessage(secret('from a device set up in the background'));
      const received = await atBob;
      expect(received.body).toBe('from a device set up in the background');
      expect(e2eeInfo(received).senderDeviceName).toBe('tablet');
      expect((await e2eeClientOf(chat)).card?.fields.deviceName).toBe('tablet');
    } finally {
      await chat.shutdown();
    }
  });

  it('reports a device that cannot be set up through the client\'s initFailed event, and sends fail with the reason', async () => {
    const token = await alice.api.twilioToken();
    if (token.mode !== 'local') throw new Error('expected the local relay');
    const raw = await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token });
    const chat = wrap(raw, { serverUrl: server.url, getAuthToken: () => 'not a token', appPublicKeys: [server.appPublicKey], keyStore: new MemoryKeyStore() });
    try {
      const failed = await new Promise<{ error?: unknown }>((resolve) => chat.once('initFailed', resolve));
      expect(failed.error).toBeInstanceOf(E2EEError);
      const { code } = failed.error as E2EEError;
      const c = await chat.getConversationBySid(conversation.sid);
      await expect(c.sendMessage('never sent')).rejects.toMatchObject({ code });
    } finally {
      await chat.shutdown();
    }
  });
});

describe('push notifications', () => {
  it('open to the verified message, from the SDK notification or the raw payload', async () => {
    const atBob = next<Message>(bobChat, 'messageAdded');
    const index = await conversation.sendMessage(secret('you have mail'));
    await atBob;
    const fromSdk = await decryptPushNotification(bobChat, { type: 'twilio.conversations.new_message', data: { conversationSid: conversation.sid, messageIndex: index } });
    const fromPayload = await decryptPushNotification(bobChat, { twi_message_type: 'twilio.conversations.new_message', conversation_sid: conversation.sid, message_index: String(index) });
    for (const message of [fromSdk, fromPayload]) {
      expect(message.body).toBe('you have mail');
      expect(e2eeInfo(message).status).toBe('verified');
    }
    await expect(decryptPushNotification(bobChat, { type: 'twilio.conversations.added_to_conversation', data: { conversationSid: conversation.sid } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(decryptPushNotification(bobChat, { data: { conversationSid: conversation.sid, messageIndex: index + 1000 } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe("the relay's files", () => {
  it('hold none of the texts sent in this file', async () => {
    await waitFor(async () => (await alice.pendingBackups()) === 0 && (await bob.pendingBackups()) === 0, 'backups');
    const files = readdirSync(server.dataDir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
    expect(files.length).toBeGreaterThan(0);
    expect(secrets.size).toBeGreaterThan(10);
    for (const file of files) {
      const bytes = readFileSync(join(file.parentPath, file.name));
      for (const text of secrets) expect(bytes.includes(Buffer.from(text)), `${file.name} holds "${text}"`).toBe(false);
    }
  });
});
