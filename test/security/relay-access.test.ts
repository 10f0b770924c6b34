/**
 * Who may act on a conversation in the local relay: its current participants only. A creator
 * keeps nothing once the conversation is in use (the security review's finding 8: a removed
 * creator could still read, re-join and read history), and only a message's author edits it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConversationsClient, type E2EEError, type LocalMessage } from '../../client/index.js';
import { ApiPath } from '../../shared/api.js';
import { nextEvents } from '../support/concurrency.js';
import { relayToken } from '../support/local-relay.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
const clients: LocalConversationsClient[] = [];

async function connect(identity: string): Promise<LocalConversationsClient> {
  const client = await LocalConversationsClient.connect(await relayToken(server, identity));
  clients.push(client);
  return client;
}

/** GET /v1/history/:sid as `identity` with its registered card: the status and error code. */
async function readHistory(identity: string, cardId: string, conversationSid: string): Promise<[number, string | undefined]> {
  const response = await fetch(`${server.url}${ApiPath.historyOf(conversationSid)}?cardId=${cardId}`, {
    headers: { authorization: `Bearer ${await server.session(identity)}` },
  });
  const body = (await response.json()) as { error?: { code: string } };
  return [response.status, body.error?.code];
}

beforeAll(async () => {
  server = await startLoopbackServer();
});

afterAll(async () => {
  for (const c of clients) await c.shutdown();
  await server?.close();
});

describe('authorization', () => {
  it('keeps non-participants out of a conversation', async () => {
    const alice = await connect('alice');
    const mallory = await connect('mallory');
    const conversation = await alice.createConversation({ friendlyName: 'private' });
    await conversation.join();
    await conversation.sendMessage('e2ee1.secret');
    for (const attempt of [
      () => mallory.getConversationBySid(conversation.sid),
      () => mallory.request('getMessages', { conversationSid: conversation.sid, pageSize: 10, direction: 'backwards' }),
      () => mallory.request('sendMessage', { conversationSid: conversation.sid, body: 'hi' }),
      () => mallory.request('join', { conversationSid: conversation.sid }),
      () => mallory.request('add', { conversationSid: conversation.sid, identity: 'mallory' }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect((error as E2EEError).code).toBe('FORBIDDEN');
    }
    expect((await conversation.getParticipants()).map((p) => p.identity)).toEqual(['alice']);
  });

  it('gives a removed creator no access: no reading, no history, no joining again, no posting, no pushes', async () => {
    const alice = await connect('alice');
    const aliceCard = await (await device(server, 'alice')).register();
    const bob = await connect('bob');
    const conversation = await alice.createConversation({ friendlyName: 'founded by alice' });
    await conversation.join();
    await conversation.add('bob');
    await conversation.sendMessage('e2ee1.before');
    expect(await readHistory('alice', aliceCard.id, conversation.sid)).toEqual([200, undefined]);
    const removed = nextEvents(alice, 'conversationRemoved');
    await (await bob.getConversationBySid(conversation.sid)).removeParticipant('alice');
    await removed;
    const pushes: LocalMessage[] = [];
    alice.on('messageAdded', (m) => pushes.push(m));
    for (const attempt of [
      () => alice.request('getConversation', { sid: conversation.sid }),
      () => alice.request('getMessages', { conversationSid: conversation.sid, pageSize: 10, direction: 'backwards' }),
      () => alice.request('getParticipants', { conversationSid: conversation.sid }),
      () => alice.request('join', { conversationSid: conversation.sid }),
      () => alice.request('add', { conversationSid: conversation.sid, identity: 'alice' }),
      () => alice.request('sendMessage', { conversationSid: conversation.sid, body: 'e2ee1.after' }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect((error as E2EEError).code).toBe('FORBIDDEN');
    }
    expect(await readHistory('alice', aliceCard.id, conversation.sid)).toEqual([403, 'NOT_PARTICIPANT']);
    const bobsView = await bob.getConversationBySid(conversation.sid);
    await bobsView.sendMessage('e2ee1.without-alice');
    expect((await bobsView.getParticipants()).map((p) => p.identity)).toEqual(['bob']);
    expect((await alice.getSubscribedConversations()).items.map((c) => c.sid)).not.toContain(conversation.sid);
    // Added again, alice is a participant like any other.
    const back = nextEvents(alice, 'conversationAdded');
    await bobsView.add('alice');
    await back;
    expect((await conversation.getMessages(10)).items.map((m) => m.body)).toEqual(['e2ee1.before', 'e2ee1.without-alice']);
    expect(pushes).toEqual([]);
  });

  it('lets the creator of a new conversation add others before joining it, and nobody else', async () => {
    const alice = await connect('alice');
    const mallory = await connect('mallory');
    const conversation = await alice.createConversation();
    const error = await mallory.request('join', { conversationSid: conversation.sid }).catch((e: unknown) => e);
    expect((error as E2EEError).code).toBe('FORBIDDEN');
    await conversation.add('bob');
    // From now on the conversation is in use: being its creator grants nothing.
    const late = await conversation.join().catch((e: unknown) => e);
    expect((late as E2EEError).code).toBe('FORBIDDEN');
  });

  it('lets only the author edit a message', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const conversation = await alice.createConversation();
    await conversation.join();
    await conversation.add('bob');
    await conversation.sendMessage('e2ee1.original');
    const page = await (await bob.getConversationBySid(conversation.sid)).getMessages(1);
    const error = await (page.items[0] as LocalMessage).updateBody('e2ee1.tampered').catch((e: unknown) => e);
    expect((error as E2EEError).code).toBe('FORBIDDEN');
  });
});

