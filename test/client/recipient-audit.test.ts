/**
 * The recipient-set audit (docs/PROTOCOL.md 17.7) against the real server and store: each
 * recipient checks every slot of every message it opens. Attack 1 of issue 16 (a rogue card for
 * bob, countersigned and logged by the service, served to alice) is caught by bob on receipt of
 * alice's message, before his monitoring runs; slots no card explains and cards of outsiders are
 * reported too. The message still shows, verified and marked.
 */
import type { Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countersignCard, createCardRequest, generateDeviceKeys, KEY_ID_BYTES, parseCardRequest, randomBytes, toHex, type PendingDevice } from '../../shared/index.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { GAP_WAIT_MS } from '../../client/wrapper.js';
import { e2eeClientOf, type MessageGap } from '../../client/index.js';
import type { CardsLookupResponse } from '../../shared/api.js';
import { alertsOf, DirectoryScript, scripted, WithholdingService } from '../support/directory-attacks.js';
import { checkpointed, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let script: DirectoryScript;
/** Monitoring far off, so what a test sees is the audit's. */
const QUIET = { monitorIntervalMs: 3_600_000 };

beforeAll(async () => {
  server = await startLoopbackServer({ env: { NEW_DEVICE_POLICY: 'approval' } });
  script = await DirectoryScript.on(server);
});

afterAll(async () => {
  for (const chat of script?.chats ?? []) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

/** The next message `conversation` shows, as the app sees it. */
async function received(conversation: Conversation, send: () => Promise<unknown>): Promise<Message> {
  const next = nextEvents<Message>(conversation, 'messageAdded');
  await send();
  return (await next)[0]!;
}

const slotOf = (cardId: string) => cardId.slice(0, 2 * KEY_ID_BYTES);

describe('attack 1: a rogue card for bob, served to alice', () => {
  it('bob\'s audit reports it on receipt of alice\'s message, before any monitoring; the message shows, marked', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    const rogue = await script.rogueCard(bob.client.identity);
    await checkpointed(server); // so alice accepts it

    const message = await received(bobConversation, () => conversation.sendMessage('hello bob'));
    expect(message.body).toBe('hello bob');
    expect(message.e2ee?.status).toBe('verified');
    expect(message.e2ee?.alerts).toEqual([expect.objectContaining({ kind: 'rogue-device', identity: bob.client.identity, cardId: rogue.id })]);
    // The audit's alert names the message; reading bob's chain for it may let his monitoring report the card as well.
    const fromAudit = () => bob.alerts.filter((a) => a.messageSid !== undefined);
    expect(fromAudit()).toEqual([
      expect.objectContaining({ kind: 'rogue-device', identity: bob.client.identity, cardId: rogue.id, conversationSid: conversation.sid, messageSid: message.sid, message: expect.stringContaining("don't recognise") }),
    ]);
    expect(bob.alerts.every((a) => a.kind === 'rogue-device' && a.cardId === rogue.id)).toBe(true);
    // One alert for the card, however many messages carry it; alice, who cannot tell, sees nothing.
    const second = await received(bobConversation, () => conversation.sendMessage('again'));
    expect(second.e2ee?.alerts?.map((a) => a.kind)).toEqual(['rogue-device']);
    expect(fromAudit()).toHaveLength(1);
    expect(alice.alerts).toEqual([]);
  });

  it('a device bob approved himself is his own: no alert', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    const phone = await script.pinned(bob.client.identity, QUIET);
    const pending = nextEvents<PendingDevice>(phone.client, 'deviceApprovalPending');
    const registering = phone.client.register({ approvalPollMs: 20 });
    await bob.client.approveDevice((await pending)[0]!.cardId);
    await registering;
    await checkpointed(server);
    const message = await received(bobConversation, () => conversation.sendMessage('to both devices'));
    expect(message.e2ee?.alerts).toBeUndefined();
    expect([...bob.alerts, ...alice.alerts]).toEqual([]);
  });
});

describe('devices my other devices added', () => {
  it('a tablet approved on bob\'s phone (itself approved on his desktop) is his on the desktop too: no alert', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    const approve = async (owner: typeof bob) => {
      const added = await script.pinned(bob.client.identity, QUIET);
      const pending = nextEvents<PendingDevice>(added.client, 'deviceApprovalPending');
      const registering = added.client.register({ approvalPollMs: 20 });
      await owner.client.approveDevice((await pending)[0]!.cardId);
      await registering;
      return added;
    };
    const phone = await approve(bob);
    const tablet = await approve(phone);
    await checkpointed(server);
    const message = await received(bobConversation, () => conversation.sendMessage('to all three'));
    expect(message.e2ee?.alerts).toBeUndefined();
    expect([...bob.alerts, ...alice.alerts, ...phone.alerts, ...tablet.alerts]).toEqual([]);
  });
});

describe('slots a lying directory or a rogue sender adds', () => {
  it('a slot no card explains: unattributed-slot, for every recipient', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    const carol = await script.rawSender(script.name('carol'));
    await conversation.add(carol.identity);
    const cards = [...(await alice.client.devices()), ...(await bob.client.devices()), carol.card];
    const ghost = { id: toHex(randomBytes(32)), boxPublicKey: generateDeviceKeys().boxPublicKey };
    const message = await received(bobConversation, () => carol.send(conversation.sid, 'from carol', [...cards, ghost]));
    expect(message.body).toBe('from carol');
    expect(message.e2ee?.status).toBe('verified');
    expect(message.e2ee?.alerts).toEqual([expect.objectContaining({ kind: 'unattributed-slot', keyId: slotOf(ghost.id) })]);
    expect(alertsOf(bob.alerts, 'unattributed-slot')).toEqual([expect.objectContaining({ conversationSid: conversation.sid, messageSid: message.sid })]);
    await carol.relay.shutdown();
  });

  it('a slot for a device of someone outside the conversation: unexpected-recipient', async () => {
    const { alice, bob, bobChat, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    // Bob knows eve from another conversation.
    const eve = await script.rawSender(script.name('eve'));
    const other = await bobChat.createConversation();
    await other.join();
    await other.add(eve.identity);
    const bobCards = await bob.client.devices();
    await received(other, () => eve.send(other.sid, 'hi bob', [...bobCards, eve.card]));

    const carol = await script.rawSender(script.name('carol'));
    await conversation.add(carol.identity);
    const cards = [...(await alice.client.devices()), ...bobCards, carol.card];
    const message = await received(bobConversation, () => carol.send(conversation.sid, 'eve listens', [...cards, eve.card]));
    expect(message.e2ee?.alerts).toEqual([expect.objectContaining({ kind: 'unexpected-recipient', identity: eve.identity, cardId: eve.card.id })]);
    expect(alertsOf(bob.alerts, 'unexpected-recipient')).toHaveLength(1);
    await eve.relay.shutdown();
    await carol.relay.shutdown();
  });
});

describe('a revoked card still sealed for', () => {
  it('a slot for a member\'s card the log shows revoked an hour before: suppressed-revocation', async () => {
    const { alice, bob, conversation, bobConversation } = await script.pair(QUIET, QUIET);
    // Dana's card, registered two hours ago and revoked an hour ago, in the log with those times.
    const dana = script.name('dana');
    const now = Math.floor(Date.now() / 1000);
    const keys = generateDeviceKeys();
    const request = parseCardRequest(createCardRequest(keys, { identity: dana, deviceId: 'old', deviceName: 'old phone' }));
    const wire = countersignCard(request, script.config.appKey);
    const { signKey, boxKey, deviceId, createdAt } = request.fields;
    await server.store.registerCard({ ...wire, identity: dana, deviceId, signKey, boxKey, createdAt, registeredAt: now - 7200, revokedAt: null }, { maxActivePerIdentity: 20, now: now - 7200 });
    await server.store.revokeCard(wire.id, now - 3600);
    await conversation.add(dana);
    const carol = await script.rawSender(script.name('carol'));
    await conversation.add(carol.identity);
    await checkpointed(server);
    const cards = [...(await alice.client.devices()), ...(await bob.client.devices()), carol.card, { id: wire.id, boxPublicKey: keys.boxPublicKey }];
    const message = await received(bobConversation, () => carol.send(conversation.sid, 'the old phone too', cards));
    expect(message.e2ee?.status).toBe('verified');
    expect(message.e2ee?.alerts).toEqual([expect.objectContaining({ kind: 'suppressed-revocation', identity: dana, cardId: wire.id })]);
    expect(alertsOf(bob.alerts, 'suppressed-revocation')).toEqual([expect.objectContaining({ identity: dana, cardId: wire.id, messageSid: message.sid })]);
    await carol.relay.shutdown();
  });
});

describe('attack 6: Twilio withholds the message that carries the evidence', () => {
  it('bob\'s gap report fires for the withheld index, and the messages around it still show', async () => {
    let hideRogue: string | null = null;
    // The service serves alice the rogue card for one message, then hides it again.
    const aliceFetch = scripted((path, body) => {
      if (!path.startsWith('/v1/cards?') || hideRogue === null) return body;
      const answer = JSON.parse(body) as CardsLookupResponse;
      for (const list of Object.values(answer.cards)) list.splice(0, list.length, ...list.filter((c) => c.id !== hideRogue));
      return JSON.stringify(answer);
    });
    const alice = await script.pinned(script.name('alice'), { ...QUIET, fetch: aliceFetch });
    const bob = await script.pinned(script.name('bob'), QUIET);
    await bob.client.register();
    const aliceChat = await script.connect(alice.client);
    // Twilio, for bob, drops index 1: the one message sealed for the rogue card.
    const bobChat = bob.client.wrap(await WithholdingService.for(bob.client, (m) => m.index === 1));
    script.chats.push(bobChat);
    const conversation = await aliceChat.createConversation();
    await conversation.join();
    const added = nextEvents<Conversation>(bobChat, 'conversationAdded');
    await conversation.add(bob.client.identity);
    const bobConversation = (await added)[0]!;
    const gaps: MessageGap[] = [];
    (await e2eeClientOf(bobChat)).on('messageGap', (gap) => gaps.push(gap));
    const shown: Message[] = [];
    bobConversation.on('messageAdded', (m: Message) => shown.push(m));

    await conversation.sendMessage('zero');
    const rogue = await script.rogueCard(bob.client.identity);
    await checkpointed(server);
    await conversation.sendMessage('one, also to the rogue card');
    hideRogue = rogue.id;
    await conversation.sendMessage('two');
    await waitFor(() => gaps.length > 0 && shown.length === 2, 'the gap report', GAP_WAIT_MS + 5_000);

    expect(gaps.map(({ from, to }) => ({ from, to }))).toEqual([{ from: 1, to: 1 }]);
    expect(shown.map((m) => [m.index, m.body, m.e2ee?.status])).toEqual([
      [0, 'zero', 'verified'],
      [2, 'two', 'verified'],
    ]);
    // The audit never saw the rogue slot (no alert names a message); bob's chain still holds the card for his monitoring.
    expect(bob.alerts.filter((a) => a.messageSid !== undefined)).toEqual([]);
  });
});

