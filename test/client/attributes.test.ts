/**
 * Message content beyond the body, end to end on the real server and relay (docs/PROTOCOL.md 5.3):
 * attributes signed and encrypted but for the clear keys Twilio holds, the comparison with what
 * the service holds, edits bound to their message and numbered, and the revocation time of a
 * message that was updated later. A misbehaving service is played by handing the receiving
 * wrapper a copy of the relay's message with what the service would change.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FetchLike } from '../../client/api-client.js';
import type { BaseConversation, JSONValue } from '../../client/conversations.js';
import { unwrap, type BaseMessage, type E2EEClient, type LocalMessage } from '../../client/index.js';
import { conversationWrapperOf } from '../../client/wrapper.js';
import { MAX_ATTRIBUTES_BYTES } from '../../shared/index.js';
import { nextEvents, sleep } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
const chats: Client[] = [];
let names = 0;

beforeAll(async () => {
  server = await startLoopbackServer();
});

afterAll(async () => {
  for (const chat of chats) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

interface Pair {
  alice: E2EEClient;
  bob: E2EEClient;
  bobChat: Client;
  /** Alice's view (both send with clearAttributes ['ticketId']). */
  conversation: Conversation;
  /** Bob's view of the same conversation. */
  bobConversation: Conversation;
  /** Every request alice's client makes to the card service. */
  aliceRequests: string[];
}

async function pair(): Promise<Pair> {
  const n = ++names;
  const aliceRequests: string[] = [];
  const countingFetch: FetchLike = (url, init) => (aliceRequests.push(String(url)), fetch(url, init));
  const alice = await device(server, `alice-attr-${n}`, { clearAttributes: ['ticketId'], fetch: countingFetch });
  const bob = await device(server, `bob-attr-${n}`, { clearAttributes: ['ticketId'], cardCacheTtlMs: 0 });
  await alice.register();
  await bob.register();
  const aliceChat = await alice.connect();
  const bobChat = await bob.connect();
  chats.push(aliceChat, bobChat);
  const conversation = await aliceChat.createConversation();
  await conversation.join();
  const added = nextEvents(bobChat, 'conversationAdded');
  await conversation.add(bob.identity);
  await added;
  return { alice, bob, bobChat, conversation, bobConversation: await bobChat.getConversationBySid(conversation.sid), aliceRequests };
}

/** Alice sends; resolves with bob's message as delivered live. */
async function send(p: Pair, body: string, attributes?: JSONValue): Promise<Message> {
  const got = nextEvents<Message>(p.bobChat, 'messageAdded');
  await p.conversation.sendMessage(body, attributes);
  return (await got)[0]!;
}

/** The relay's newest message, as the service hands it to bob. */
async function newestRaw(p: Pair): Promise<BaseMessage> {
  const page = await (unwrap(p.bobConversation) as unknown as BaseConversation).getMessages(1);
  return page.items[0]!;
}

/** What a service that changed some fields hands out: the same message, with these fields replaced. */
function served(raw: BaseMessage, change: Partial<Pick<BaseMessage, 'attributes' | 'body' | 'author' | 'dateUpdated'>>): BaseMessage {
  return Object.create(raw, Object.fromEntries(Object.entries(change).map(([k, value]) => [k, { value }]))) as BaseMessage;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('attributes', () => {
  it('round trip: signed and decrypted, with the clear keys the only attributes the relay holds', async () => {
    const p = await pair();
    const attributes = { ticketId: 'T-7', secretNote: 'SECRET-NOTE-5f2c', nested: { list: [1, 'two', null] } };
    const received = await send(p, 'BODY-PLAINTEXT-91ab', attributes);
    expect(received.e2ee?.status).toBe('verified');
    expect(received.body).toBe('BODY-PLAINTEXT-91ab');
    expect(received.attributes).toEqual(attributes);
    const [stored] = await server.store.messages(p.conversation.sid, { direction: 'forward', limit: 10 });
    expect(JSON.parse(stored!.attributes)).toEqual({ ticketId: 'T-7' }); // readable to the backend, nothing more
    expect((await newestRaw(p)).attributes).toEqual({ ticketId: 'T-7' });
    // Neither the encrypted attributes nor the body reached the relay's store, in any file.
    for (const file of filesUnder(server.dataDir)) {
      const bytes = readFileSync(file);
      expect(bytes.includes('SECRET-NOTE-5f2c'), file).toBe(false);
      expect(bytes.includes('BODY-PLAINTEXT-91ab'), file).toBe(false);
    }
    // The sender's own view is the same.
    const mine = (await p.conversation.getMessages()).items.at(-1)!;
    expect(mine.attributes).toEqual(attributes);
  });

  it('without attributes the relay holds {} and the app sees {}', async () => {
    const p = await pair();
    const received = await send(p, 'plain');
    expect(received.attributes).toEqual({});
    expect((await newestRaw(p)).attributes).toEqual({});
  });

  it('clear attributes changed, added or dropped by the service: failed, ENVELOPE_ATTRIBUTES_MISMATCH, nothing shown', async () => {
    const p = await pair();
    await send(p, 'route me', { ticketId: 'T-1', note: 'n' });
    const raw = await newestRaw(p);
    for (const attributes of [{ ticketId: 'T-2' }, { ticketId: 'T-1', note: 'n' }, {}, { ticketId: 'T-1', admin: true }]) {
      const shown = await conversationWrapperOf(p.bobConversation).open(served(raw, { attributes }));
      expect(shown.e2ee?.status, JSON.stringify(attributes)).toBe('failed');
      expect(shown.e2ee?.error?.code).toBe('ENVELOPE_ATTRIBUTES_MISMATCH');
      expect(shown.body).not.toBe('route me');
      expect(shown.attributes).toEqual({});
    }
    // Key order on the service does not matter.
    await send(p, 'two keys', { ticketId: { a: 1, b: 2 } });
    const again = await conversationWrapperOf(p.bobConversation).open(served(await newestRaw(p), { attributes: { ticketId: { b: 2, a: 1 } } }));
    expect(again.e2ee?.status).toBe('verified');
  });

  it("refuses attributes over Twilio's 4 KB limit, clear or encrypted, before any network call", async () => {
    const p = await pair();
    const before = (await server.store.messages(p.conversation.sid, { direction: 'forward', limit: 10 })).length;
    const participants = vi.spyOn(unwrap(p.conversation), 'getParticipants');
    const requests = p.aliceRequests.length;
    const big = 'x'.repeat(MAX_ATTRIBUTES_BYTES);
    for (const attributes of [{ ticketId: big }, { note: big }] as JSONValue[]) {
      const error = await p.conversation.sendMessage('too much', attributes).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ATTRIBUTES_TOO_LARGE' });
    }
    const built = await p.conversation.prepareMessage().setBody('too much').setAttributes({ note: big }).build().send().catch((e: unknown) => e);
    expect(built).toMatchObject({ code: 'ATTRIBUTES_TOO_LARGE' });
    expect(participants).not.toHaveBeenCalled();
    expect(p.aliceRequests.length).toBe(requests);
    expect((await server.store.messages(p.conversation.sid, { direction: 'forward', limit: 10 })).length).toBe(before);
  });
});

describe('edits', () => {
  it('keep the attributes, are verified in order of their counter, and an older version put back is a rollback', async () => {
    const p = await pair();
    await send(p, 'v0', { ticketId: 'T-3', note: 'kept' });
    const mine = (await p.conversation.getMessages()).items.at(-1)!;
    // Edit 1 from a device whose clock runs a minute fast; edit 2 signed "earlier" by the real clock.
    const realNow = Date.now.bind(Date);
    const fast = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
    let updated = nextEvents<{ message: Message }>(p.bobChat, 'messageUpdated');
    await mine.updateBody('v1').finally(() => fast.mockRestore());
    const [first] = await updated;
    expect(first!.message.e2ee?.status).toBe('verified');
    expect(first!.message.body).toBe('v1');
    expect(first!.message.attributes).toEqual({ ticketId: 'T-3', note: 'kept' });
    const editOne = await newestRaw(p);

    const mineNow = (await p.conversation.getMessages()).items.at(-1)!;
    updated = nextEvents<{ message: Message }>(p.bobChat, 'messageUpdated');
    await mineNow.updateBody('v2');
    const [second] = await updated;
    expect(second!.message.e2ee?.status).toBe('verified'); // a higher counter, though signed at an older time
    expect(second!.message.body).toBe('v2');

    const rolledBack = await conversationWrapperOf(p.bobConversation).open(editOne);
    expect(rolledBack.e2ee?.status).toBe('failed');
    expect(rolledBack.e2ee?.error?.code).toBe('ENVELOPE_ROLLBACK');
    expect(rolledBack.body).not.toBe('v1');
  });

  it('an edit signed by anyone but the author is failed, even when the service changes the author too', async () => {
    const p = await pair();
    await send(p, 'original', { ticketId: 'T-4' });
    const raw = await newestRaw(p);
    // Bob's wrapper refuses to edit alice's message, sending nothing.
    const bobView = (await p.bobConversation.getMessages()).items.at(-1)!;
    await expect(bobView.updateBody('edited by bob')).rejects.toMatchObject({ code: 'NOT_MESSAGE_AUTHOR' });
    await expect(bobView.updateAttributes({ ticketId: 'T-5' })).rejects.toMatchObject({ code: 'NOT_MESSAGE_AUTHOR' });
    expect((await newestRaw(p)).body).toBe(raw.body);
    // A modified client seals one anyway: an edit bound to alice's message, signed by bob (the relay would refuse to store it).
    const bobSide = conversationWrapperOf(p.bobConversation);
    const original = (await bobSide.open(raw)).opened!.original;
    const bobEdit = (await bobSide.seal('edited by bob', { attributes: { ticketId: 'T-4' }, edit: { of: original, n: 1 } })).text;
    const aliceRaw = (await (unwrap(p.conversation) as unknown as BaseConversation).getMessages(1)).items[0]!;
    for (const author of [p.alice.identity, p.bob.identity]) {
      const shown = await conversationWrapperOf(p.conversation).open(served(aliceRaw, { body: bobEdit, author, dateUpdated: new Date() }));
      expect(shown.e2ee?.status, author).toBe('failed');
      expect(shown.e2ee?.error?.code).toBe('ENVELOPE_SENDER_NOT_AUTHOR');
      expect(shown.body).not.toBe('edited by bob');
    }
    expect((await conversationWrapperOf(p.bobConversation).open(raw)).e2ee?.status).toBe('verified'); // the original still is
  });

  it("an edit moved onto another of the author's messages is failed: ENVELOPE_EDIT_MISMATCH", async () => {
    const p = await pair();
    await send(p, 'first');
    const first = (await p.conversation.getMessages()).items.at(-1)!;
    await send(p, 'second');
    const secondRaw = await newestRaw(p);
    const editOfFirst = await sealedEdit(first, 'first, edited');
    const shown = await conversationWrapperOf(p.bobConversation).open(served(secondRaw, { body: editOfFirst, dateUpdated: new Date() }));
    expect(shown.e2ee?.status).toBe('failed');
    expect(shown.e2ee?.error?.code).toBe('ENVELOPE_EDIT_MISMATCH');
  });
});

describe('revocation time', () => {
  it("a revoked device's earlier messages stay verified after a later update of the message; a later edit does not", async () => {
    const p = await pair();
    await send(p, 'before the revocation', { ticketId: 'T-5' });
    const raw = await newestRaw(p);
    const mine = (await p.conversation.getMessages()).items.at(-1)!;
    const edit = await sealedEdit(mine, 'edited before, posted after');
    await sleep(1100); // revokedAt has a resolution of seconds
    await p.alice.revokeDevice(p.alice.card!.id);
    const later = new Date(Date.now() + 2000);
    // An attribute update (a reaction) after the revocation: only dateUpdated moves.
    const reacted = await conversationWrapperOf(p.bobConversation).open(served(raw, { dateUpdated: later }));
    expect(reacted.e2ee).toMatchObject({ status: 'verified' });
    expect(reacted.body).toBe('before the revocation');
    // An edit is judged by its own time: posted after the revocation, it is refused.
    const edited = await conversationWrapperOf(p.bobConversation).open(served(raw, { body: edit, dateUpdated: later }));
    expect(edited.e2ee?.error?.code).toBe('ENVELOPE_SENDER_REVOKED');
  });

  it('on the relay: an attribute update after the revocation keeps the message verified, a changed value fails it', async () => {
    const p = await pair();
    await send(p, 'sent in time', { ticketId: 'T-6', note: 'n' });
    await sleep(1100);
    await p.alice.revokeDevice(p.alice.card!.id);
    await sleep(50);
    let updated = nextEvents<{ message: Message; updateReasons: string[] }>(p.bobChat, 'messageUpdated');
    await (await aliceRaw(p)).updateAttributes({ ticketId: 'T-6' }); // the same clear attributes, written again
    let [update] = await updated;
    expect(update!.updateReasons).toEqual(['attributes']);
    expect(update!.message.dateUpdated!.getTime()).toBeGreaterThan(update!.message.dateCreated!.getTime());
    expect(update!.message.e2ee?.status).toBe('verified');
    expect(update!.message.attributes).toEqual({ ticketId: 'T-6', note: 'n' });

    updated = nextEvents<{ message: Message; updateReasons: string[] }>(p.bobChat, 'messageUpdated');
    await (await aliceRaw(p)).updateAttributes({ ticketId: 'T-6', reaction: '👍' });
    [update] = await updated;
    expect(update!.message.e2ee?.error?.code).toBe('ENVELOPE_ATTRIBUTES_MISMATCH');
  });
});

/** Alice's newest message on the relay, through her own raw client (the author may update it). */
async function aliceRaw(p: Pair): Promise<LocalMessage> {
  return (await (unwrap(p.conversation) as unknown as BaseConversation).getMessages(1)).items[0] as LocalMessage;
}

/** The envelope `message.updateBody(body)` seals (bound to the message), kept from the service. */
async function sealedEdit(message: Message, body: string): Promise<string> {
  let envelope = '';
  const update = vi.spyOn(unwrap(message) as unknown as BaseMessage, 'updateBody').mockImplementation(async (text: string) => (envelope = text));
  await message.updateBody(body).finally(() => update.mockRestore());
  return envelope;
}
