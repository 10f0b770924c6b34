/**
 * What a client believes, attacked by whoever holds the AppKey or an app token, or by the
 * transport (a security review's scripted attacks, each as a test):
 * - ghost senders: a card registered, used and revoked before the recipient ever saw it active,
 *   and a card stored already revoked (so it is never in any active set);
 * - OrgCard substitution: a countersigned "org:" card of the attacker's, served as the OrgCard;
 * - replay across reloads, re-posting an old envelope later, and rolling an edit back;
 * - a revocation reaching senders at once, not after their card cache expires.
 * The server, store, relay and clients are the real ones (local relay mode, demo auth).
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKeyStore, type BackupFailure, type E2EEClient, type KeyChange, type OrgKeyChange } from '../../client/index.js';
import type { FetchLike } from '../../client/api-client.js';
import { loadConfig } from '../../server/config.js';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import {
  ApiPath,
  countersignCard,
  createCardRequest,
  generateDeviceKeys,
  generateOrgKey,
  KEY_ID_BYTES,
  parseCardRequest,
  parseEnvelope,
  RECIPIENT_SLOT_BYTES,
  RECIPIENTS_OFFSET,
  sealEnvelope,
  toB64u,
  toHex,
  type AppKey,
  type CardWire,
  type DeviceKeys,
} from '../../shared/index.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { postToRelay } from '../support/demo-session.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let appKey: AppKey;
let orgBoxKey: string;
const chats: Client[] = [];
let names = 0;

beforeAll(async () => {
  server = await startLoopbackServer();
  const config = await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' });
  appKey = config.appKey;
  orgBoxKey = toB64u(config.orgKey!.keys.boxPublicKey);
});

afterAll(async () => {
  for (const chat of chats) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

async function connect(client: E2EEClient): Promise<Client> {
  const chat = await client.connect();
  chats.push(chat);
  return chat;
}

/** Alice and bob, registered and connected, in a conversation alice made; alice has already seen bob's cards. */
async function pair(options: { keyStore?: MemoryKeyStore; cardCacheTtlMs?: number } = {}) {
  const n = ++names;
  const alice = await device(server, `alice-t${n}`, { ...(options.cardCacheTtlMs !== undefined ? { cardCacheTtlMs: options.cardCacheTtlMs } : {}) });
  const bobKeys = options.keyStore ?? new MemoryKeyStore();
  const bob = await device(server, `bob-t${n}`, { keyStore: bobKeys, deviceName: "Bob's laptop" });
  await alice.register();
  await bob.register();
  const aliceChat = await connect(alice);
  const bobChat = await connect(bob);
  const conversation = await aliceChat.createConversation();
  await conversation.join();
  const added = nextEvents(bobChat, 'conversationAdded');
  await conversation.add(bob.identity);
  await added;
  await conversation.sendMessage('hello'); // alice's first look at bob's cards: the baseline
  return { alice, bob, bobKeys, aliceChat, bobChat, conversation };
}

async function storeCard(identity: string, revokedAt: (createdAt: number) => number | null): Promise<{ wire: CardWire; keys: DeviceKeys }> {
  const keys = generateDeviceKeys();
  const card = parseCardRequest(createCardRequest(keys, { identity, deviceId: 'laptop', deviceName: "Bob's laptop" }));
  const revoked = revokedAt(card.fields.createdAt);
  const wire = countersignCard(card, appKey, revoked);
  const now = Math.floor(Date.now() / 1000);
  const result = await server.store.registerCard(
    { ...wire, identity, deviceId: card.fields.deviceId, signKey: card.fields.signKey, boxKey: card.fields.boxKey, createdAt: card.fields.createdAt, registeredAt: now, revokedAt: revoked },
    { maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY, now },
  );
  expect(result.ok).toBe(true);
  return { wire, keys };
}

/** Everything a client reports, in order: key changes and the messages a conversation page shows. */
function eventLog(client: E2EEClient) {
  const log: string[] = [];
  client.on('keyChange', (c: KeyChange) => log.push(`keyChange ${c.identity} +${c.added.length} -${c.removed.length} unobserved ${c.unobserved.join(',')}`));
  return log;
}

async function newest(conversation: Conversation, count = 1): Promise<Message[]> {
  return (await conversation.getMessages(count)).items;
}

function slotKeyIds(envelopeText: string): string[] {
  const parsed = parseEnvelope(envelopeText);
  return Array.from({ length: parsed.recipientCount }, (_, i) => toHex(parsed.binary.subarray(RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES, RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES + KEY_ID_BYTES)));
}

describe('ghost senders', () => {
  it('a device registered with a stolen app token, used, then revoked before alice looked: a key change (unobserved) before the message shows, and a new safety number', async () => {
    const { alice, bob, conversation } = await pair();
    const safetyBefore = await alice.safetyNumber(bob.identity);
    const bobChanges: KeyChange[] = [];
    bob.on('keyChange', (c) => bobChanges.push(c));
    // The thief holds only bob's app token: it makes a device of its own, named like bob's.
    const thief = await device(server, bob.identity, { deviceName: "Bob's laptop" });
    const thiefCard = await thief.register();
    const thiefChat = await connect(thief);
    await (await thiefChat.getConversationBySid(conversation.sid)).sendMessage('send the wire to account 666');
    await thief.revokeDevice(thiefCard.id);

    const log = eventLog(alice);
    const [message] = await newest(conversation);
    log.push(`message ${message!.e2ee?.status}`);
    expect(log).toEqual([`keyChange ${bob.identity} +0 -0 unobserved ${thiefCard.id}`, 'message verified']);
    expect(message!.e2ee?.senderCardId).toBe(thiefCard.id);
    expect(await alice.safetyNumber(bob.identity)).not.toBe(safetyBefore);
    // Bob's own device got the thief's message too (sealed for all of bob's devices): it reports the device it never made.
    await waitFor(() => bobChanges.some((c) => c.identity === bob.identity && [...c.added, ...c.unobserved].includes(thiefCard.id)), "bob's own key change");
    // Reported once: reading the message again raises nothing new.
    await newest(conversation);
    expect(log).toHaveLength(2);
  });

  it('a card the directory stores already revoked ten years ahead (never active): refused, CARD_LIFETIME_INVALID', async () => {
    const { bob, conversation } = await pair();
    const { wire, keys } = await storeCard(bob.identity, (createdAt) => createdAt + 10 * 365 * 86_400);
    const aliceCards = await bob.cardsOf(conversation.createdBy);
    const sealed = sealEnvelope({ sender: { cardId: wire.id, signSecretKey: keys.signSecretKey }, recipients: aliceCards, conversationSid: conversation.sid, body: 'ghost' });
    await postToRelay(server, bob.identity, conversation.sid, sealed.text);
    const [message] = await newest(conversation);
    expect(message!.e2ee).toMatchObject({ status: 'failed', error: { code: 'CARD_LIFETIME_INVALID' } });
    expect(message!.body).not.toContain('ghost');
  });

  it('a card revoked at or before its own creation: refused, CARD_LIFETIME_INVALID', async () => {
    const { bob, conversation } = await pair();
    const { wire, keys } = await storeCard(bob.identity, (createdAt) => createdAt);
    const aliceCards = await bob.cardsOf(conversation.createdBy);
    const sealed = sealEnvelope({ sender: { cardId: wire.id, signSecretKey: keys.signSecretKey }, recipients: aliceCards, conversationSid: conversation.sid, body: 'ghost', sentAt: (wire.revokedAt! - 1) * 1000 });
    await postToRelay(server, bob.identity, conversation.sid, sealed.text);
    const [message] = await newest(conversation);
    expect(message!.e2ee).toMatchObject({ status: 'failed', error: { code: 'CARD_LIFETIME_INVALID' } });
  });
});

describe('OrgCard substitution', () => {
  /** An "org:" card of the attacker's, countersigned with the real AppKey, served instead of the real one. */
  function forgedOrgCard(): CardWire {
    const orgKey = generateOrgKey();
    return countersignCard(parseCardRequest(createCardRequest(orgKey.keys, { identity: 'org:acme', deviceId: 'org', deviceName: 'acme' })), appKey);
  }

  /** fetch that serves `orgCard` for the OrgCard and records every history post. */
  function directoryServing(orgCard: () => CardWire | null, posts: string[]): FetchLike {
    return async (input, init) => {
      if (input.endsWith(ApiPath.orgCard) && orgCard()) return new Response(JSON.stringify(orgCard()), { headers: { 'content-type': 'application/json' } });
      if (input.endsWith(ApiPath.history) && init?.method === 'POST') posts.push(String(init.body));
      return fetch(input, init);
    };
  }

  it('pinned: a substituted OrgCard gets no backup (nothing to decrypt), and is reported', async () => {
    const posts: string[] = [];
    const forged = forgedOrgCard();
    const alice = await device(server, `alice-org${++names}`, { orgPublicKeys: [orgBoxKey], fetch: directoryServing(() => forged, posts) });
    await alice.register();
    const changes: OrgKeyChange[] = [];
    const failures: BackupFailure[] = [];
    alice.on('orgKeyChange', (c) => changes.push(c));
    alice.on('backupFailed', (f) => failures.push(f));
    const chat = await connect(alice);
    const conversation = await chat.createConversation();
    await conversation.join();
    await conversation.sendMessage('payroll numbers');
    await waitFor(() => failures.length === 1, 'the backup failure');
    expect(failures[0]!.error.code).toBe('ORG_KEY_UNTRUSTED');
    expect(posts).toEqual([]);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.current).toMatchObject({ cardId: forged.id, status: 'untrusted' });
    expect(await alice.organizationKey()).toMatchObject({ cardId: forged.id, status: 'untrusted', fingerprint: expect.stringMatching(/^\d{30}$/) });
    await expect(alice.acceptOrganizationKey(forged.id)).rejects.toMatchObject({ code: 'ORG_KEY_UNTRUSTED' });
  });

  it('pinned: the genuine OrgCard is backed up to', async () => {
    const alice = await device(server, `alice-org${++names}`, { orgPublicKeys: [orgBoxKey] });
    await alice.register();
    const chat = await connect(alice);
    const conversation = await chat.createConversation();
    await conversation.join();
    await conversation.sendMessage('fine');
    await waitFor(async () => (await alice.pendingBackups()) === 0, 'the backup');
    expect(await alice.organizationKey()).toMatchObject({ status: 'pinned', boxPublicKey: orgBoxKey });
  });

  it('trusted on first use: a later substitution is announced, backups wait until the app accepts it', async () => {
    const keyStore = new MemoryKeyStore();
    const identity = `alice-org${++names}`;
    const first = await device(server, identity, { keyStore });
    await first.register();
    expect(await first.organizationKey()).toMatchObject({ status: 'trusted', boxPublicKey: orgBoxKey });

    // Next session: the directory now serves its own OrgCard.
    const posts: string[] = [];
    const forged = forgedOrgCard();
    const alice = await device(server, identity, { keyStore, fetch: directoryServing(() => forged, posts) });
    await alice.register();
    const changes: OrgKeyChange[] = [];
    alice.on('orgKeyChange', (c) => changes.push(c));
    const chat = await connect(alice);
    const conversation = await chat.createConversation();
    await conversation.join();
    await conversation.sendMessage('held back');
    await waitFor(() => changes.length === 1, 'the orgKeyChange event');
    expect(changes[0]).toMatchObject({ previous: { boxPublicKey: orgBoxKey, status: 'trusted' }, current: { cardId: forged.id, status: 'changed' } });
    await new Promise((r) => setTimeout(r, 200));
    expect(posts).toEqual([]);
    expect(await alice.pendingBackups()).toBe(1); // held, not lost

    await alice.acceptOrganizationKey(forged.id);
    await waitFor(() => posts.length === 1, 'the held backup going out');
    expect(await alice.organizationKey()).toMatchObject({ cardId: forged.id, status: 'trusted' });
  });
});

describe('replay and rollback by the transport', () => {
  it('an old message re-inserted as a new index after a reload is the replay; the original stays verified', async () => {
    const { bob, bobKeys, bobChat, conversation } = await pair();
    const bobView = await bobChat.getConversationBySid(conversation.sid);
    const [original] = await newest(bobView);
    expect(original!.e2ee?.status).toBe('verified');
    const stored = (await server.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]!;
    await server.store.appendMessage({ sid: 'IMreplay000000000000000000000001', conversationSid: conversation.sid, author: stored.author, body: stored.body, attributes: '{}', dateCreatedMs: Date.now() });

    // Bob reloads: a new client on the same key store reads only the newest message first.
    await bobChat.shutdown();
    const reloaded = await device(server, bob.identity, { keyStore: bobKeys });
    await reloaded.register();
    const view = await (await connect(reloaded)).getConversationBySid(conversation.sid);
    const [replay] = await newest(view);
    expect(replay!.index).toBe(1);
    expect(replay!.e2ee).toMatchObject({ status: 'failed', error: { code: 'ENVELOPE_REPLAY' } });
    const [first] = (await view.getMessages(1, 0, 'forward')).items;
    expect(first!.e2ee?.status).toBe('verified');
  });

  it('on a device that never saw either copy, the copy at the lower index is the original', async () => {
    const { bob, bobKeys, conversation } = await pair();
    const stored = (await server.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]!;
    await server.store.appendMessage({ sid: 'IMreplay000000000000000000000002', conversationSid: conversation.sid, author: stored.author, body: stored.body, attributes: '{}', dateCreatedMs: Date.now() });
    // The same device keys, none of the memory (a restored backup of the keys, say).
    const keysOnly = new MemoryKeyStore();
    await keysOnly.saveDevice((await bobKeys.loadDevice(bob.identity))!);
    const fresh = await device(server, bob.identity, { keyStore: keysOnly });
    await fresh.register();
    const view = await (await connect(fresh)).getConversationBySid(conversation.sid);
    expect((await newest(view))[0]!.e2ee?.status).toBe('verified'); // nothing to compare with yet
    expect((await view.getMessages(1, 0, 'forward')).items[0]!.e2ee?.status).toBe('verified');
    expect((await newest(view))[0]!.e2ee).toMatchObject({ status: 'failed', error: { code: 'ENVELOPE_REPLAY' } });
  });

  it('an old envelope re-posted later than the clock skew allows: ENVELOPE_SENT_AT_MISMATCH', async () => {
    const { bobChat, conversation } = await pair();
    const stored = (await server.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]!;
    await server.store.appendMessage({ sid: 'IMreplay000000000000000000000003', conversationSid: conversation.sid, author: stored.author, body: stored.body, attributes: '{}', dateCreatedMs: Date.now() + 11 * 60_000 });
    const view = await bobChat.getConversationBySid(conversation.sid);
    const [late] = await newest(view);
    expect(late!.index).toBe(1);
    expect(late!.e2ee).toMatchObject({ status: 'failed', error: { code: 'ENVELOPE_SENT_AT_MISMATCH' } });
  });

  it('an edit reverted to its earlier envelope after a reload: ENVELOPE_ROLLBACK', async () => {
    const { bob, bobKeys, bobChat, conversation } = await pair();
    const before = (await server.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]!;
    const [mine] = await newest(conversation);
    await new Promise((r) => setTimeout(r, 5));
    await mine!.updateBody('hello (edited)');
    const bobView = await bobChat.getConversationBySid(conversation.sid);
    await waitFor(async () => (await newest(bobView))[0]!.body === 'hello (edited)', 'bob reading the edit');
    await bobChat.shutdown();

    await server.store.updateMessage(conversation.sid, before.sid, { body: before.body }, Date.now());
    const reloaded = await device(server, bob.identity, { keyStore: bobKeys });
    await reloaded.register();
    const view = await (await connect(reloaded)).getConversationBySid(conversation.sid);
    const [reverted] = await newest(view);
    expect(reverted!.e2ee).toMatchObject({ status: 'failed', error: { code: 'ENVELOPE_ROLLBACK' } });
    expect(reverted!.body).not.toBe('hello');
  });
});

describe('revocation reaches senders', () => {
  it('a revoked device gets no slot in the next message, even with a long card cache', async () => {
    const { aliceChat, bob, conversation } = await pair({ cardCacheTtlMs: 60_000 });
    const laptop = bob.card!;
    const phone = await device(server, bob.identity, { deviceName: "Bob's phone" });
    await phone.register();
    await connect(phone);
    await conversation.sendMessage('to both of bob'); // alice caches bob's two cards
    expect(slotKeyIds((await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]!.body)).toContain(laptop.id.slice(0, 2 * KEY_ID_BYTES));

    const updated = nextEvents(aliceChat, 'participantUpdated');
    await phone.revokeDevice(laptop.id); // the laptop was stolen
    await updated;
    await conversation.sendMessage('not for the stolen laptop');
    const slots = slotKeyIds((await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]!.body);
    expect(slots).not.toContain(laptop.id.slice(0, 2 * KEY_ID_BYTES));
    expect(slots).toContain(phone.card!.id.slice(0, 2 * KEY_ID_BYTES));
  });
});
