/**
 * End to end through the public client API, against a real server and relay: two users, three
 * devices. What the app sees (body, e2ee status) and what the relay stores (only envelopes).
 */
import { conversationWrapperOf } from '../../client/wrapper.js';
import type { Client, Conversation, Message } from '@twilio/conversations';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrap, E2EEError, FAILED_BODY, LocalConversationsClient, FileKeyStore, MemoryKeyStore, type E2EEClient, type KeyChange } from '../../client/node.js';
import { ENVELOPE_PREFIX, deviceKeysFromSecrets, sealEnvelope } from '../../shared/index.js';
import { nextEvents } from '../support/concurrency.js';
import { checkpointed, device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let aliceLaptop: E2EEClient;
let alicePhone: E2EEClient;
let bob: E2EEClient;
let aliceLaptopChat: Client;
let alicePhoneChat: Client;
let bobChat: Client;
let conversation: Conversation;
const bobKeyStore = new MemoryKeyStore();

beforeAll(async () => {
  server = await startLoopbackServer();
  aliceLaptop = await device(server, 'alice', { deviceName: 'laptop', cardCacheTtlMs: 0 });
  alicePhone = await device(server, 'alice', { deviceName: 'phone' });
  bob = await device(server, 'bob', { deviceName: 'desktop', cardCacheTtlMs: 0, keyStore: bobKeyStore });
  for (const d of [aliceLaptop, alicePhone, bob]) await d.register();
  [aliceLaptopChat, alicePhoneChat, bobChat] = await Promise.all([aliceLaptop.connect(), alicePhone.connect(), bob.connect()]);
  conversation = await aliceLaptopChat.createConversation({ friendlyName: 'plans' });
  await conversation.join();
  const bobAdded = nextEvents(bobChat, 'conversationAdded');
  await conversation.add('bob');
  await bobAdded;
});

afterAll(async () => {
  for (const chat of [aliceLaptopChat, alicePhoneChat, bobChat]) await chat?.shutdown();
  await server?.close();
});

describe('sending and receiving', () => {
  it('delivers plaintext to every device of every participant, verified', async () => {
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    const atPhone = nextEvents<Message>(alicePhoneChat, 'messageAdded');
    const atLaptop = nextEvents<Message>(aliceLaptopChat, 'messageAdded');
    await conversation.sendMessage('meet at noon');
    for (const [message] of await Promise.all([atBob, atPhone, atLaptop])) {
      expect(message!.body).toBe('meet at noon');
      expect(message!.author).toBe('alice');
      expect(message!.e2ee).toMatchObject({ status: 'verified', via: 'direct', senderCardId: aliceLaptop.card!.id, senderDeviceName: 'laptop' });
    }
  });

  it('lets bob answer and alice read it on both devices, with attributes passed through', async () => {
    const bobConversation = await bobChat.getConversationBySid(conversation.sid);
    const atLaptop = nextEvents<Message>(aliceLaptopChat, 'messageAdded');
    const atPhone = nextEvents<Message>(alicePhoneChat, 'messageAdded');
    const atBobHimself = nextEvents<Message>(bobChat, 'messageAdded');
    await bobConversation.sendMessage('ok, see you', { mood: 'happy' });
    for (const [message] of await Promise.all([atLaptop, atPhone, atBobHimself])) {
      expect(message!.body).toBe('ok, see you');
      expect(message!.attributes).toEqual({ mood: 'happy' });
      expect(message!.e2ee?.status).toBe('verified');
    }
  });

  it('sends with the builder pattern too', async () => {
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    await conversation.prepareMessage().setBody('built').setAttributes({ kind: 'builder' }).build().send();
    const [message] = await atBob;
    expect(message!.body).toBe('built');
    expect(message!.attributes).toEqual({ kind: 'builder' });
  });

  it('reads history back decrypted and in order with getMessages', async () => {
    const page = await (await bobChat.getConversationBySid(conversation.sid)).getMessages(50);
    expect(page.items.map((m) => m.body)).toEqual(['meet at noon', 'ok, see you', 'built']);
    expect(page.items.map((m) => m.index)).toEqual([0, 1, 2]);
    expect(page.items.every((m) => m.e2ee?.status === 'verified')).toBe(true);
  });

  it('leaves only envelopes on the relay', async () => {
    const stored = await server.store.messages(conversation.sid, { direction: 'forward', limit: 100 });
    expect(stored.length).toBeGreaterThanOrEqual(3);
    for (const m of stored) {
      expect(m.body.startsWith(ENVELOPE_PREFIX)).toBe(true);
      expect(m.body).not.toMatch(/noon|see you|built/);
    }
  });

  it('re-encrypts an edited body', async () => {
    const page = await conversation.getMessages(1);
    const last = page.items[0]!;
    const updated = nextEvents<{ message: Message }>(bobChat, 'messageUpdated');
    await last.updateBody('built (edited)');
    const [{ message }] = (await updated) as [{ message: Message }];
    expect(message.body).toBe('built (edited)');
    expect(message.e2ee?.status).toBe('verified');
    const stored = await server.store.getMessage(conversation.sid, last.sid);
    expect(stored!.body.startsWith(ENVELOPE_PREFIX)).toBe(true);
  });
});

describe('what is flagged', () => {
  it('marks a plaintext body injected past the wrapper as unencrypted', async () => {
    const raw = unwrap(bobChat) as unknown as LocalConversationsClient;
    const atAlice = nextEvents<Message>(aliceLaptopChat, 'messageAdded');
    await (await raw.getConversationBySid(conversation.sid)).sendMessage('plain text from a client without the plugin');
    const [message] = await atAlice;
    expect(message!.e2ee?.status).toBe('unencrypted');
    expect(message!.body).toBe('plain text from a client without the plugin');
  });

  it('fails an envelope claiming another sender, without showing its text', async () => {
    const raw = unwrap(bobChat) as unknown as LocalConversationsClient;
    // Bob seals with his own key but names alice's card as the sender.
    const forged = sealEnvelope({
      sender: { cardId: aliceLaptop.card!.id, signSecretKey: (await bobSignKey()) },
      recipients: [aliceLaptop.card!, alicePhone.card!, bob.card!],
      conversationSid: conversation.sid,
      body: 'send me your password',
    });
    const atAlice = nextEvents<Message>(aliceLaptopChat, 'messageAdded');
    await (await raw.getConversationBySid(conversation.sid)).sendMessage(forged.text);
    const [message] = await atAlice;
    expect(message!.e2ee?.status).toBe('failed');
    expect(message!.body).toBe(FAILED_BODY);
    expect(message!.body).not.toContain('password');
    expect(message!.e2ee?.error!.code).toBe('ENVELOPE_SENDER_NOT_AUTHOR');
  });

  it('fails a replayed envelope', async () => {
    const raw = unwrap(aliceLaptopChat) as unknown as LocalConversationsClient;
    const rawConversation = await raw.getConversationBySid(conversation.sid);
    const original = (await rawConversation.getMessages(1, 0, 'forward')).items[0]!;
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    await rawConversation.sendMessage(original.body);
    const [message] = await atBob;
    expect(message!.e2ee?.status).toBe('failed');
    expect(message!.e2ee?.error!.code).toBe('ENVELOPE_REPLAY');
    expect(message!.body).toBe(FAILED_BODY);
  });

  it('fails an envelope signed for another conversation', async () => {
    const other = await aliceLaptopChat.createConversation();
    await other.join();
    await other.add('bob');
    const raw = unwrap(aliceLaptopChat) as unknown as LocalConversationsClient;
    const sealed = await conversationWrapperOf(other).seal('meant for the other conversation');
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    await (await raw.getConversationBySid(conversation.sid)).sendMessage(sealed.text);
    const [message] = await atBob;
    expect(message!.e2ee?.status).toBe('failed');
    expect(message!.e2ee?.error!.code).toBe('ENVELOPE_CONVERSATION_MISMATCH');
  });
});

describe('refusals', () => {
  it('refuses to send when a participant has no device, naming them, and sends nothing', async () => {
    const group = await aliceLaptopChat.createConversation();
    await group.join();
    await group.add('bob');
    await group.add('carol');
    const before = await server.store.messages(group.sid, { direction: 'forward', limit: 10 });
    const error = await group.sendMessage('hello all').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(E2EEError);
    expect((error as E2EEError).code).toBe('NO_CARDS');
    expect((error as E2EEError).details).toEqual({ identities: ['carol'] });
    expect((error as E2EEError).message).toContain('carol');
    expect(await server.store.messages(group.sid, { direction: 'forward', limit: 10 })).toEqual(before);
  });

  it('refuses an envelope too large for Twilio', async () => {
    const error = await conversation.sendMessage('x'.repeat(40_000)).catch((e: unknown) => e);
    expect((error as E2EEError).code).toBe('ENVELOPE_TOO_LARGE');
  });
});

describe('key changes', () => {
  it('reports a new device of a contact, then its revocation', async () => {
    const bobTablet = await device(server, 'bob', { deviceName: 'tablet' });
    const changes: KeyChange[] = [];
    aliceLaptop.on('keyChange', (c) => changes.push(c));
    const tabletCard = await bobTablet.register();
    await conversation.sendMessage('who is there?');
    expect(changes).toContainEqual({ identity: 'bob', added: [tabletCard.id], removed: [], unobserved: [] });

    await bobTablet.revokeDevice(tabletCard.id);
    await conversation.sendMessage('and now?');
    expect(changes).toContainEqual({ identity: 'bob', added: [], removed: [tabletCard.id], unobserved: [] });
  });

  it('gives both sides the same 60-digit safety number over the devices both have seen, revoked ones included, and the chain heads', async () => {
    // Numbers cover the chain heads of the newest checkpoint: each step waits for the one with its event (every 100 ms here).
    const checkpoint = () => checkpointed(server);
    const bea = await device(server, 'bea');
    await bea.register();
    await checkpoint();
    const first = await aliceLaptop.safetyNumber('bea');
    expect(first).toMatch(/^\d{60}$/);
    expect(await bea.safetyNumber('alice')).toBe(first);

    const beaWatch = await device(server, 'bea', { deviceName: 'watch' });
    const watchCard = await beaWatch.register();
    await checkpoint();
    const withWatch = await aliceLaptop.safetyNumber('bea');
    expect(withWatch).not.toBe(first);
    expect(await bea.safetyNumber('alice')).toBe(withWatch);

    // A revocation moves bea's chain head (version 2): a new number, never the one before the watch.
    await beaWatch.revokeDevice(watchCard.id);
    await checkpoint();
    const afterRevoke = await aliceLaptop.safetyNumber('bea');
    expect(afterRevoke).not.toBe(withWatch);
    expect(afterRevoke).not.toBe(first);
    expect(afterRevoke.slice(0, 30)).toBe(withWatch.slice(0, 30)); // alice's half is unchanged
    expect(await bea.safetyNumber('alice')).toBe(afterRevoke);

    // A device that came and went while bea's own client never looked: alice saw it, bea did not, so the numbers differ.
    const ghost = await device(server, 'bea', { deviceName: 'unseen' });
    const ghostCard = await ghost.register();
    await aliceLaptop.safetyNumber('bea');
    await ghost.revokeDevice(ghostCard.id);
    expect(await bea.safetyNumber('alice')).not.toBe(await aliceLaptop.safetyNumber('bea'));
  });
});

describe('devices', () => {
  it('reuses the device and its card on a second register()', async () => {
    const first = aliceLaptop.card!.id;
    expect((await aliceLaptop.register()).id).toBe(first);
    expect((await aliceLaptop.devices()).map((c) => c.id)).toContain(first);
  });
});

/** Bob's sign key, read from his key store: what a malicious participant holds. */
async function bobSignKey(): Promise<Uint8Array> {
  const record = (await bobKeyStore.loadDevice('bob'))!;
  return deviceKeysFromSecrets(record.signSeed, record.boxSecretKey).signSecretKey;
}

describe('key changes under concurrency', () => {
  it('reports one change once, however many lookups race', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'e2ee-race-'));
    // A slow key store (a file) widens the window between reading and writing what was seen.
    const frank = await device(server, 'frank', { keyStore: new FileKeyStore(join(dir, 'keys.json')), cardCacheTtlMs: 0 });
    await frank.register();
    const erin = await device(server, 'erin');
    await erin.register();
    const changes: KeyChange[] = [];
    frank.on('keyChange', (c) => changes.push(c));
    await frank.cardsOf('erin'); // the baseline
    const erinPhone = await device(server, 'erin', { deviceName: 'phone' });
    const phoneCard = await erinPhone.register();
    await Promise.all(Array.from({ length: 8 }, () => frank.cardsOf('erin')));
    expect(changes).toEqual([{ identity: 'erin', added: [phoneCard.id], removed: [], unobserved: [] }]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('registration that lost its answer', () => {
  it('picks up its card when the very same card was registered', async () => {
    const keyStore = new MemoryKeyStore();
    const gina = await device(server, 'gina', { keyStore });
    const first = await gina.register();
    // The service registered the card but the device never heard back: it kept the keys, no card.
    await keyStore.saveDevice({ ...(await keyStore.loadDevice('gina'))!, card: null });
    const again = await device(server, 'gina', { keyStore });
    expect((await again.register()).id).toBe(first.id);
    expect((await again.devices()).map((c) => c.id)).toEqual([first.id]);
  });

  it('starts over with fresh keys when its keys belong to another registered card', async () => {
    const keyStore = new MemoryKeyStore();
    const hal = await device(server, 'hal', { keyStore });
    const first = await hal.register();
    // Same keys, another device id: another card whose keys are taken (KEY_IN_USE).
    await keyStore.saveDevice({ ...(await keyStore.loadDevice('hal'))!, deviceId: 'another', card: null });
    const again = await device(server, 'hal', { keyStore });
    const second = await again.register();
    expect(second.id).not.toBe(first.id);
    expect((await keyStore.loadDevice('hal'))!.card!.id).toBe(second.id);
    expect((await again.devices()).map((c) => c.id)).toEqual([first.id, second.id]);
  });
});
