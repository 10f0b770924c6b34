/**
 * Organization history end to end: backups through the outbox, a support agent and a new device
 * added later read earlier messages through rewraps, verified against the ORIGINAL senders.
 */
import type { Client, Message } from '@twilio/conversations';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrap, FileKeyStore, type E2EEClient, type LocalConversationsClient } from '../../client/node.js';
import { createRewrap, parseEnvelope, sealEnvelope, verifyCard, trustAppKeys, deviceKeysFromSecrets } from '../../shared/index.js';
import { ApiClient } from '../../client/api-client.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceChat: Client;
let bobChat: Client;
let conversationSid: string;
const sent: string[] = [];

async function drained(...clients: E2EEClient[]): Promise<void> {
  await waitFor(async () => (await Promise.all(clients.map((c) => c.pendingBackups()))).every((n) => n === 0), 'the outboxes to drain');
}

beforeAll(async () => {
  server = await startLoopbackServer();
  alice = await device(server, 'alice');
  bob = await device(server, 'bob');
  await alice.register();
  await bob.register();
  aliceChat = await alice.connect();
  bobChat = await bob.connect();
  const conversation = await aliceChat.createConversation();
  conversationSid = conversation.sid;
  await conversation.join();
  const added = nextEvents(bobChat, 'conversationAdded');
  await conversation.add('bob');
  await added;
  const bobConversation = await bobChat.getConversationBySid(conversationSid);
  for (let i = 0; i < 6; i++) {
    const body = `message ${i} from ${i % 2 ? 'bob' : 'alice'}`;
    sent.push(body);
    await (i % 2 ? bobConversation : conversation).sendMessage(body);
  }
  await drained(alice, bob);
});

afterAll(async () => {
  await aliceChat?.shutdown();
  await bobChat?.shutdown();
  await server?.close();
});

describe('history sync', () => {
  it('stores every sent message once, as envelope and orgWrap only', async () => {
    const records = await server.store.history(conversationSid, -1, 100);
    expect(records.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of records) expect(JSON.stringify(r)).not.toMatch(/message \d from/);
  });

  it('lets a support agent added later read every earlier message, verified via history', async () => {
    // Count the history reads the agent's client makes (observing its requests, not changing them).
    const historyReads: string[] = [];
    const agent = await device(server, 'support-agent', {
      fetch: (url, init) => {
        if (url.includes('/v1/history/') && (init?.method ?? 'GET') === 'GET') historyReads.push(url);
        return fetch(url, init);
      },
    });
    await agent.register();
    const agentChat = await agent.connect();
    const added = nextEvents(agentChat, 'conversationAdded');
    await (await aliceChat.getConversationBySid(conversationSid)).add('support-agent');
    await added;
    const page = await (await agentChat.getConversationBySid(conversationSid)).getMessages(50);
    expect(page.items.map((m) => m.body)).toEqual(sent);
    for (const m of page.items) {
      expect(m.e2ee?.status).toBe('verified');
      expect(m.e2ee?.via).toBe('history');
    }
    expect(page.items.map((m) => m.author)).toEqual(['alice', 'bob', 'alice', 'bob', 'alice', 'bob']);
    expect(historyReads).toHaveLength(1); // one request for the whole page, not one per message
    await agentChat.shutdown();
  });

  it('lets a new device of an existing user read messages sealed before it existed', async () => {
    const bobTablet = await device(server, 'bob', { deviceName: 'tablet' });
    await bobTablet.register();
    const tabletChat = await bobTablet.connect();
    const page = await (await tabletChat.getConversationBySid(conversationSid)).getMessages(50);
    expect(page.items.map((m) => m.body)).toEqual(sent);
    expect(page.items.every((m) => m.e2ee?.status === 'verified' && m.e2ee?.via === 'history')).toBe(true);
    // New messages reach the tablet too (directly once the sender's card cache knows it, else via history).
    const live = nextEvents<Message>(tabletChat, 'messageAdded');
    await (await aliceChat.getConversationBySid(conversationSid)).sendMessage('hello tablet');
    const [message] = await live;
    expect(message!.body).toBe('hello tablet');
    expect(message!.e2ee?.status).toBe('verified');
    await tabletChat.shutdown();
  });
});

describe('the outbox', () => {
  it('keeps a backup through a server restart and delivers it afterwards', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'e2ee-outbox-'));
    let first: LoopbackServer | null = await startLoopbackServer({ dataDir });
    const port = first.port;
    const keyStore = new FileKeyStore(join(dataDir, 'carol-keys.json'));
    const carol = await device(first, 'carol', { keyStore, backup: 'off' });
    await carol.register();
    const carolChat = await carol.connect();
    const conversation = await carolChat.createConversation();
    await conversation.join();
    // Carol seals and sends without the automatic backup, then queues the backup herself.
    const record = (await keyStore.loadDevice('carol'))!;
    const keys = deviceKeysFromSecrets(record.signSeed, record.boxSecretKey);
    const sealed = sealEnvelope({ sender: { cardId: carol.card!.id, signSecretKey: keys.signSecretKey }, recipients: [carol.card!], conversationSid: conversation.sid, body: 'backup me' });
    const index = await (unwrap(carolChat) as unknown as LocalConversationsClient).getConversationBySid(conversation.sid).then((c) => c.sendMessage(sealed.text));
    const stored = (await first.store.messages(conversation.sid, { direction: 'forward', limit: 1 }))[0]!;
    const orgCard = verifyCard(await new ApiClient(first.url, () => first!.session('carol')).orgCard(), { trustedAppKeys: trustAppKeys([first.appPublicKey]) });
    await carolChat.shutdown();
    await first.close();
    first = null;

    await carol.outbox.add({ conversationSid: conversation.sid, messageSid: stored.sid, index, envelope: sealed.text, orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), orgCard.boxPublicKey) });
    await new Promise((r) => setTimeout(r, 300));
    expect(await carol.outbox.pending()).toBe(1); // the server is down: kept, not dropped

    const second = await startLoopbackServer({ dataDir, port });
    try {
      await waitFor(async () => (await carol.outbox.pending()) === 0, 'the outbox to deliver after the restart');
      expect((await second.store.history(conversation.sid, -1, 10)).map((r) => r.messageSid)).toEqual([stored.sid]);
    } finally {
      carol.outbox.stop();
      await second.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
