/**
 * Attack 3 of issue 16, a split view: the service shows alice and bob two different logs, both
 * signed by its LogKey (each consistent on its own, so neither's checks of the service catch it).
 * The checkpoint each message carries (gossip, PROTOCOL.md 5.3 and 17.9) catches it at the first
 * message between them, whoever sends it. Scripted against the real server and store: bob's
 * `fetch` answers every log question from a forked tree (the real leaves, then a leaf of the
 * service's choosing where the real log has another), proofs and all.
 */
import type { Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError } from '../../client/index.js';
import type { CardsLookupResponse, LogEventsResponse } from '../../shared/api.js';
import { toB64u, toHex, randomBytes } from '../../shared/index.js';
import { signCheckpoint } from '../../shared/log-checkpoint.js';
import { encodeCardEvent } from '../../shared/log-event.js';
import { leafHash, MerkleTree } from '../../shared/merkle.js';
import { nextEvents, sleep } from '../support/concurrency.js';
import { alertsOf, DirectoryScript, scripted } from '../support/directory-attacks.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let script: DirectoryScript;

beforeAll(async () => {
  server = await startLoopbackServer();
  script = await DirectoryScript.on(server);
});

afterAll(async () => {
  for (const chat of script?.chats ?? []) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

/** A fork of the real log: its first `size - 1` leaves, then one the service made up. Answers bob's log questions from it once `on`. */
class ForkedView {
  on = false;
  private tree = new MerkleTree();
  private leaves: Uint8Array[] = [];
  private note = '';

  async fork(): Promise<void> {
    const real = await server.store.logSize();
    this.leaves = [];
    for (let i = 0; i < real; i++) this.leaves.push((await server.store.logEvent(i))!.leaf);
    const ghost = { kind: 'registration' as const, identity: script.name('ghost'), seq: 0, time: Math.floor(Date.now() / 1000), previous: new Uint8Array(32), cardId: toHex(randomBytes(32)) };
    this.leaves.push(encodeCardEvent(ghost));
    this.tree = new MerkleTree(this.leaves.map(leafHash));
    this.note = signCheckpoint({ origin: script.config.log.origin, size: this.tree.size, rootHash: this.tree.root(), extensions: [] }, script.config.log.key);
    this.on = true;
  }

  private proof(index: number): string[] {
    return this.tree.inclusionProof(index).map(toB64u);
  }

  readonly fetch = scripted(async (path, body) => {
    if (!this.on) return body;
    const url = new URL(path, 'http://x');
    const size = this.tree.size;
    // Cards registered after the fork are not in bob's view: the service hides them from him.
    if (url.pathname === '/v1/log/checkpoint') return { status: 200, body: this.note };
    if (url.pathname === '/v1/cards' && url.search) {
      const answer = JSON.parse(body) as CardsLookupResponse;
      const proofs = Object.fromEntries(
        Object.entries(answer.log!.proofs)
          .filter(([, e]) => e.index < size - 1)
          .map(([id, e]) => [id, { index: e.index, leaf: e.leaf, proof: this.proof(e.index) }]),
      );
      return JSON.stringify({ ...answer, log: { checkpoint: this.note, size, proofs } });
    }
    if (url.pathname === '/v1/log/events') {
      const identity = url.searchParams.get('identity')!;
      const events = await server.store.identityEvents(identity, Number(url.searchParams.get('since') ?? 0), size - 1, 100);
      const answer: LogEventsResponse = { identity, size, events: events.map((e) => ({ index: e.index, seq: e.seq, leaf: toB64u(e.leaf), proof: this.proof(e.index) })), more: false };
      return { status: 200, body: JSON.stringify(answer) };
    }
    if (url.pathname === '/v1/log/inclusion') {
      const event = (await server.store.cardEvents([url.searchParams.get('cardId')!])).values().next().value;
      if (!event || event.index >= size - 1) return { status: 404, body: '{"error":{"code":"NOT_FOUND","message":"no such event"}}' };
      return { status: 200, body: JSON.stringify({ index: event.index, size, leaf: toB64u(event.leaf), proof: this.proof(event.index) }) };
    }
    if (url.pathname === '/v1/log/consistency' && Number(url.searchParams.get('to')) === size) {
      const from = Number(url.searchParams.get('from'));
      return { status: 200, body: JSON.stringify({ from, to: size, proof: this.tree.consistencyProof(from).map(toB64u) }) };
    }
    return body;
  });
}

/** Alice and bob in a conversation, bob's log forked from alice's, and the real log grown past the fork so alice's checkpoint differs. */
async function splitView() {
  const view = new ForkedView();
  const pair = await script.pair({}, { fetch: view.fetch });
  await pair.conversation.sendMessage('before the fork'); // both verified checkpoints of the one real log
  await pair.bob.client.trust.view.refresh();
  await view.fork();
  expect((await pair.bob.client.trust.view.refresh()).size).toBe(await server.store.logSize() + 1); // bob adopts the fork: consistent with what he held
  await script.rogueCard(script.name('someone')); // the real log's next leaf is another
  await sleep(300);
  await pair.alice.client.trust.view.refresh();
  expect(pair.alice.alerts).toEqual([]);
  expect(pair.bob.alerts).toEqual([]);
  return pair;
}

async function received(conversation: Conversation, send: () => Promise<unknown>): Promise<Message> {
  const next = nextEvents<Message>(conversation, 'messageAdded');
  await send();
  return (await next)[0]!;
}

describe('attack 3: a split view', () => {
  it('bob catches it on alice\'s first message: log-fork, the message marked, his sends in the conversation stopped', async () => {
    const { alice, bob, conversation, bobConversation } = await splitView();
    const message = await received(bobConversation, () => conversation.sendMessage('hi bob'));
    expect(message.body).toBe('hi bob');
    expect(message.e2ee?.alerts?.map((a) => a.kind)).toContain('log-fork');
    expect(alertsOf(bob.alerts, 'log-fork')).toEqual([expect.objectContaining({ identity: alice.client.identity, conversationSid: conversation.sid, messageSid: message.sid })]);
    const refused = await bobConversation.sendMessage('reply').catch((e: unknown) => e);
    expect(isE2EEError(refused, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
  });

  it('alice catches it on bob\'s first message', async () => {
    const { alice, bob, conversation, bobConversation } = await splitView();
    const message = await received(conversation, () => bobConversation.sendMessage('hi alice'));
    expect(message.body).toBe('hi alice');
    expect(alertsOf(alice.alerts, 'log-fork')).toEqual([expect.objectContaining({ identity: bob.client.identity, conversationSid: conversation.sid, messageSid: message.sid })]);
    expect(message.e2ee?.alerts?.map((a) => a.kind)).toContain('log-fork');
  });

  it('an honest log: many messages both ways, checkpoints moving on, no alert', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair();
    for (let i = 0; i < 4; i++) {
      await script.rogueCard(script.name('newcomer')); // the log grows between messages
      await sleep(150);
      await received(bobConversation, () => conversation.sendMessage(`to bob ${i}`));
      await received(conversation, () => bobConversation.sendMessage(`to alice ${i}`));
    }
    expect([...alice.alerts, ...bob.alerts]).toEqual([]);
  });
});
