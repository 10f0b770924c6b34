/**
 * The local conversations relay through its raw client: authentication, participant attributes,
 * ordered delivery, paging, limits, reconnection, and token refresh through the E2EE wrapper.
 * Who may act on a conversation: test/security/relay-access.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { E2EEError, LocalConversationsClient, type LocalMessage, type LocalParticipant } from '../../client/index.js';
import { loadConfig } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import { relayTokenSecret, signRelayToken } from '../../server/relay-token.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { relayToken as localRelayToken } from '../support/local-relay.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
const clients: LocalConversationsClient[] = [];

async function relayToken(identity: string): Promise<{ relayUrl: string; token: string }> {
  const body = await localRelayToken(server, identity);
  expect(body.mode).toBe('local');
  return body;
}

async function connect(identity: string): Promise<LocalConversationsClient> {
  const client = await LocalConversationsClient.connect(await relayToken(identity));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startLoopbackServer();
});

afterAll(async () => {
  for (const c of clients) await c.shutdown();
  await server?.close();
});

describe('authentication', () => {
  it('refuses a bad token', async () => {
    const { relayUrl } = await relayToken('alice');
    const error = await LocalConversationsClient.connect({ relayUrl, token: 'not-a-token' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(E2EEError);
    expect((error as E2EEError).code).toBe('UNAUTHORIZED');
  });

  it('refuses requests before auth and malformed frames', async () => {
    const { relayUrl } = await relayToken('alice');
    const socket = new WebSocket(relayUrl);
    await new Promise((resolve) => socket.once('open', resolve));
    const replies: unknown[] = [];
    socket.on('message', (data) => replies.push(JSON.parse(String(data))));
    socket.send(JSON.stringify({ id: 1, op: 'listConversations', params: {} }));
    socket.send('{not json');
    socket.send(JSON.stringify({ id: 3, op: '__proto__', params: {} }));
    await new Promise((r) => setTimeout(r, 200));
    socket.close();
    expect(replies).toEqual([
      { id: 1, ok: false, error: { code: 'UNAUTHORIZED', message: expect.any(String) } },
      { id: null, ok: false, error: { code: 'BAD_REQUEST', message: expect.any(String) } },
      { id: 3, ok: false, error: { code: 'BAD_REQUEST', message: expect.any(String) } },
    ]);
  });
});

describe('participant attributes', () => {
  it('a participant updates its own; every session in the conversation gets participantUpdated, on the client and the conversation', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const conversation = await alice.createConversation();
    await conversation.join();
    const added = nextEvents(bob, 'conversationAdded');
    await conversation.add('bob');
    const bobsConversation = (await added)[0] as Awaited<ReturnType<typeof bob.getConversationBySid>>;
    const bobsSelf = (await bobsConversation.getParticipants()).find((p) => p.identity === 'bob')!;
    expect(bobsSelf.attributes).toEqual({});

    type Update = { participant: LocalParticipant; updateReasons: string[] };
    const seenByAlice = nextEvents<Update>(alice, 'participantUpdated');
    const seenByAlicesConversation = nextEvents<Update>(conversation, 'participantUpdated');
    const seenByBob = nextEvents<Update>(bob, 'participantUpdated');
    const attributes = { revokedCards: ['card-1'], at: 1700000000 };
    expect(await bobsSelf.updateAttributes(attributes)).toBe(bobsSelf);
    expect(bobsSelf.attributes).toEqual(attributes);
    for (const [update] of [await seenByAlice, await seenByAlicesConversation, await seenByBob]) {
      expect(update!.updateReasons).toEqual(['attributes']);
      expect(update!.participant.identity).toBe('bob');
      expect(update!.participant.attributes).toEqual(attributes);
      expect(update!.participant.conversation?.sid).toBe(conversation.sid);
    }
    expect((await conversation.getParticipants()).find((p) => p.identity === 'bob')!.attributes).toEqual(attributes);
  });

  it('nobody updates another participant\'s attributes; the limits of message attributes apply', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const conversation = await alice.createConversation();
    await conversation.join();
    await conversation.add('bob');
    const [aliceSelf, bobAsSeenByAlice] = await conversation.getParticipants();
    const cases: Array<[LocalParticipant, unknown, string]> = [
      [bobAsSeenByAlice!, { revoked: true }, 'FORBIDDEN'],
      [aliceSelf!, { big: 'x'.repeat(5000) }, 'ATTRIBUTES_TOO_LARGE'],
      [aliceSelf!, JSON.parse('['.repeat(40) + ']'.repeat(40)), 'ATTRIBUTES_TOO_DEEP'],
    ];
    for (const [participant, attributes, code] of cases) {
      const error = await participant.updateAttributes(attributes as never).catch((e: unknown) => e);
      expect((error as E2EEError).code).toBe(code);
    }
    expect((await (await bob.getConversationBySid(conversation.sid)).getParticipants()).map((p) => p.attributes)).toEqual([{}, {}]);
  });
});

describe('delivery', () => {
  it('delivers every message to every participant in index order', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    const conversation = await alice.createConversation();
    await conversation.join();
    const added = nextEvents(bob, 'conversationAdded');
    await conversation.add('bob');
    await added;
    const received = nextEvents<LocalMessage>(bob, 'messageAdded', 30);
    await Promise.all(Array.from({ length: 30 }, (_, i) => conversation.sendMessage(`e2ee1.m${i}`)));
    const messages = await received;
    expect(messages.map((m) => m.index)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(new Set(messages.map((m) => m.body)).size).toBe(30);
  });

  it('pages back and forth with the SDK paginator shape', async () => {
    const alice = await connect('alice');
    const conversation = await alice.createConversation();
    await conversation.join();
    for (let i = 0; i < 7; i++) await conversation.sendMessage(`e2ee1.p${i}`);
    const newest = await conversation.getMessages(3);
    expect(newest.items.map((m) => m.index)).toEqual([4, 5, 6]);
    expect([newest.hasPrevPage, newest.hasNextPage]).toEqual([true, false]);
    const older = await newest.prevPage();
    expect(older.items.map((m) => m.index)).toEqual([1, 2, 3]);
    const oldest = await older.prevPage();
    expect(oldest.items.map((m) => m.index)).toEqual([0]);
    expect(oldest.hasPrevPage).toBe(false);
    const forward = await conversation.getMessages(4, 0, 'forward');
    expect(forward.items.map((m) => m.index)).toEqual([0, 1, 2, 3]);
    expect((await forward.nextPage()).items.map((m) => m.index)).toEqual([4, 5, 6]);
  });

  it('enforces Twilio\'s limits on bodies and attributes, and refuses NUL', async () => {
    const alice = await connect('alice');
    const conversation = await alice.createConversation();
    await conversation.join();
    const cases: Array<[string, unknown]> = [
      ['x'.repeat(32 * 1024 + 1), undefined],
      ['ok', { big: 'x'.repeat(5000) }],
      ['nul\u0000byte', undefined],
    ];
    for (const [body, attributes] of cases) {
      const error = await conversation.sendMessage(body, attributes as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(E2EEError);
    }
    expect((await conversation.getMessages(10)).items).toEqual([]);
  });

  it('catches up on messages sent while it was disconnected', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2ee-relay-'));
    let relay = await startLoopbackServer({ dataDir });
    const previous = server;
    server = relay; // connect() and relayToken() use `server`
    try {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const conversation = await alice.createConversation();
      await conversation.join();
      await conversation.add('bob');
      await (await bob.getConversationBySid(conversation.sid)).getMessages(10);
      // Another conversation with old messages, which bob's second device lists but never opens.
      const unopened = await alice.createConversation();
      await unopened.join();
      await unopened.add('bob');
      for (let i = 0; i < 3; i++) await unopened.sendMessage(`e2ee1.old-${i}`);
      const bobLater = await connect('bob');
      await (await bobLater.getConversationBySid(conversation.sid)).getMessages(10);
      expect((await bobLater.getSubscribedConversations()).items).toHaveLength(2);
      const laterSaw: LocalMessage[] = [];
      bobLater.on('messageAdded', (m) => laterSaw.push(m));
      // Restart on the same port and data: both clients lose their connection, then come back.
      await relay.close();
      await waitFor(() => alice.connectionState === 'connecting' && bob.connectionState === 'connecting', 'both clients to notice');
      // A message that reaches the store while the clients are away.
      const missed = nextEvents<LocalMessage>(bob, 'messageAdded', 1, 15_000);
      const offline = await openStore({ dataDir });
      await offline.appendMessage({ sid: 'IMmissed', conversationSid: conversation.sid, author: 'alice', body: 'e2ee1.while-you-were-away', attributes: '{}', dateCreatedMs: Date.now() });
      await offline.close();
      relay = server = await startLoopbackServer({ dataDir, port: relay.port });
      await waitFor(() => alice.connectionState === 'connected' && bob.connectionState === 'connected', 'both clients to reconnect');
      expect((await missed)[0]!.body).toBe('e2ee1.while-you-were-away');
      // Catching up replays nothing old: only what was missed in a conversation it had read.
      await waitFor(() => bobLater.connectionState === 'connected' && laterSaw.length > 0, 'the second device to catch up');
      await new Promise((r) => setTimeout(r, 300));
      expect(laterSaw.map((m) => m.body)).toEqual(['e2ee1.while-you-were-away']);
      const live = nextEvents<LocalMessage>(bob, 'messageAdded');
      await (await alice.getConversationBySid(conversation.sid)).sendMessage('e2ee1.back-online');
      expect((await live)[0]!.body).toBe('e2ee1.back-online');
    } finally {
      await relay.close();
      server = previous;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('token refresh through the wrapper', () => {
  it('refreshes a token about to expire and keeps working past its expiry', async () => {
    const config = await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' });
    const dave = await device(server, 'dave');
    await dave.register();
    const { relayUrl } = await relayToken('dave');
    // A relay token that expires in 2 s: the relay warns after 1 s.
    const raw = await LocalConversationsClient.connect({ relayUrl, token: signRelayToken(relayTokenSecret(config.appKey), 'dave', 2) });
    const chat = dave.wrap(raw);
    const updated = nextEvents(dave, 'tokenUpdated', 1, 5000);
    await updated;
    await new Promise((r) => setTimeout(r, 2200));
    const conversation = await chat.createConversation();
    await conversation.join();
    expect(await conversation.sendMessage('still here')).toBe(0);
    await chat.shutdown();
  });
});
