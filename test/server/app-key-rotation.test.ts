/**
 * Rotating the AppKey (docs/API.md "Rotating keys"): a server started with AppKey A, where alice
 * registers her device, restarts on the same data with AppKey B. Clients pinning [A, B] go on
 * messaging alice's card countersigned by A; new devices get cards countersigned by B; a client
 * pinning only B rejects alice's A card (cardRejected) and cannot message her until she
 * re-registers. Real server on loopback, real clients on the local relay.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKeyStore, type E2EEClient, type RejectedCard } from '../../client/node.js';
import { ApiPath, appKeyFromB64u, randomBytes, ready, seedToB64u, toB64u, type CardWire } from '../../shared/index.js';
import { nextEvents } from '../support/concurrency.js';
import { TEST_ORG_KEY } from '../support/env.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

await ready();
const A = appKeyFromB64u(seedToB64u(randomBytes(32)));
const B = appKeyFromB64u(seedToB64u(randomBytes(32)));
const pin = (key: typeof A) => toB64u(key.publicKey);

/** The same deployment but for APP_KEY: the sign-in secret stays, so the app's tokens outlive the switch. */
const envWith = (appKey: typeof A) => ({
  APP_KEY: seedToB64u(appKey.seed),
  ORG_KEY: TEST_ORG_KEY,
  DEMO_MODE: 'true',
  AUTH_JWT_SECRET: 'the-apps-own-sign-in-secret-0123456789',
});

let dataDir: string;
let server: LoopbackServer;
const aliceKeys = new MemoryKeyStore();
let aliceCardUnderA: CardWire;
let alice: E2EEClient;
let bob: E2EEClient;
let carol: E2EEClient;
const chats: Client[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'e2ee-app-key-'));
  const before = await startLoopbackServer({ dataDir, env: envWith(A) });
  const aliceBefore = await device(before, 'alice', { appPublicKeys: [pin(A)], keyStore: aliceKeys });
  aliceCardUnderA = await aliceBefore.register();
  await before.close();

  // Steps 2 and 3: clients pin [A, B]; the service restarts with B.
  server = await startLoopbackServer({ dataDir, port: before.port, env: envWith(B) });
  alice = await device(server, 'alice', { appPublicKeys: [pin(A), pin(B)], keyStore: aliceKeys, cardCacheTtlMs: 0 });
  bob = await device(server, 'bob', { appPublicKeys: [pin(A), pin(B)], cardCacheTtlMs: 0 });
  carol = await device(server, 'carol', { appPublicKeys: [pin(B)], cardCacheTtlMs: 0 });
  for (const d of [alice, bob, carol]) await d.register();
});

afterAll(async () => {
  for (const chat of chats) await chat.shutdown();
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function connected(client: E2EEClient): Promise<Client> {
  const chat = await client.connect();
  chats.push(chat);
  return chat;
}

/** `from` sends `body` in the conversation; the message with that body `to` receives (other arrivals pass by). */
async function delivered(from: Conversation, to: Client, body: string): Promise<Message> {
  const received = new Promise<Message>((resolve) => {
    const listener = (message: Message) => {
      if (message.body !== body) return;
      to.off('messageAdded', listener);
      resolve(message);
    };
    to.on('messageAdded', listener);
  });
  await from.sendMessage(body);
  return received;
}

describe('an AppKey rotation', () => {
  it('keeps the card alice registered under A, and countersigns new cards with B', async () => {
    expect(alice.card!.id).toBe(aliceCardUnderA.id);
    expect(alice.card!.appKeyId).toBe(A.appKeyId);
    expect(bob.card!.appKeyId).toBe(B.appKeyId);
    expect(carol.card!.appKeyId).toBe(B.appKeyId);
    const served = await (await fetch(server.url + ApiPath.appKey)).json();
    expect(served).toEqual({ publicKey: pin(B), appKeyId: B.appKeyId });
  });

  it("lets a client pinning [A, B] send to alice's old card and verify her messages", async () => {
    const [aliceChat, bobChat] = await Promise.all([connected(alice), connected(bob)]);
    const conversation = await aliceChat.createConversation({ friendlyName: 'after the switch' });
    await conversation.join();
    const bobAdded = nextEvents<Conversation>(bobChat, 'conversationAdded');
    await conversation.add('bob');
    const [atBob] = await bobAdded;

    const toAlice = await delivered(atBob!, aliceChat, 'sealed for your A card');
    expect(toAlice.body).toBe('sealed for your A card');
    expect(toAlice.e2ee).toMatchObject({ status: 'verified', via: 'direct', senderCardId: bob.card!.id });

    const fromAlice = await delivered(conversation, bobChat, 'signed by my A card');
    expect(fromAlice.body).toBe('signed by my A card');
    expect(fromAlice.e2ee).toMatchObject({ status: 'verified', senderCardId: aliceCardUnderA.id });
  });

  it("makes a client pinning only B reject alice's A card until she re-registers", async () => {
    const rejected = nextEvents<RejectedCard>(carol, 'cardRejected');
    expect(await carol.cardsOf('alice')).toEqual([]);
    const [event] = await rejected;
    expect(event).toMatchObject({ identity: 'alice', cardId: aliceCardUnderA.id, error: { code: 'CARD_APP_KEY_UNTRUSTED' } });

    // carol cannot message alice: she has no card carol trusts.
    const [aliceChat, carolChat] = [chats[0]!, await connected(carol)];
    const conversation = await carolChat.createConversation({ friendlyName: 'carol and alice' });
    await conversation.join();
    const aliceAdded = nextEvents<Conversation>(aliceChat, 'conversationAdded');
    await conversation.add('alice');
    await aliceAdded;
    await expect(conversation.sendMessage('hello?')).rejects.toMatchObject({ code: 'NO_CARDS', details: { identities: ['alice'] } });

    // Step 4: alice re-registers (a new device, whose card B countersigns) and connects again.
    await alice.revokeDevice(aliceCardUnderA.id);
    const renewed = await alice.register();
    expect(renewed.appKeyId).toBe(B.appKeyId);
    expect((await carol.cardsOf('alice')).map((card) => card.id)).toEqual([renewed.id]);
    const renewedChat = await connected(alice);
    const withCarol = await renewedChat.getConversationBySid(conversation.sid);

    const atCarol = await delivered(withCarol, carolChat, 'from my new card');
    expect(atCarol.e2ee).toMatchObject({ status: 'verified', senderCardId: renewed.id });
    const toAlice = await delivered(conversation, renewedChat, 'now I can reach you');
    expect(toAlice.body).toBe('now I can reach you');
    expect(toAlice.e2ee?.status).toBe('verified');
  });
});
