/**
 * A lying card directory, caught through the transparency log (issue 16): each attack is scripted
 * against the real server and store, either by writing to the store or its database behind the
 * service's back, or by rewriting the service's answers on their way to one client (its `fetch`).
 * Each test names who detects it and when. Attacks 1 (by the recipient-set audit), 3 and 6 are
 * the audit's and gossip's, tested beside them.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Client, Conversation } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError, MemoryKeyStore, type DirectoryAlert, type E2EEClient, type PendingDevice, type E2EEClientOptions, type RejectedCard } from '../../client/index.js';
import type { FetchLike } from '../../client/api-client.js';
import { loadConfig, type Config } from '../../server/config.js';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import { SQLITE_FILENAME } from '../../server/store/sqlite.js';
import type { CardAuthorization } from '../../server/store/types.js';
import type { CardsLookupResponse } from '../../shared/api.js';
import { countersignCard, createCardRequest, generateDeviceKeys, KEY_ID_BYTES, parseCardRequest, parseEnvelope, RECIPIENT_SLOT_BYTES, RECIPIENTS_OFFSET, toHex, type CardWire } from '../../shared/index.js';
import { signCheckpoint, parseCheckpoint } from '../../shared/log-checkpoint.js';
import { parseNote } from '../../shared/signed-note.js';
import { nextEvents, sleep, waitFor } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

const INTERVAL = 1000;
let server: LoopbackServer;
let config: Config;
const chats: Client[] = [];
let n = 0;

beforeAll(async () => {
  server = await startLoopbackServer({ env: { NEW_DEVICE_POLICY: 'approval' } });
  config = await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' });
});

afterAll(async () => {
  for (const chat of chats) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

/** A device pinned to the server's LogKey, monitoring every second, its alerts and rejections recorded. */
async function pinned(identity: string, options: Partial<E2EEClientOptions> = {}) {
  const client = await device(server, identity, { log: { key: config.log.verifierKey }, monitorIntervalMs: INTERVAL, cardCacheTtlMs: 0, ...options });
  const alerts: DirectoryAlert[] = [];
  const rejected: RejectedCard[] = [];
  client.on('directoryAlert', (a) => alerts.push(a));
  client.on('cardRejected', (r) => rejected.push(r));
  return { client, alerts, rejected };
}

/** A further device of `owner`'s identity, approved by `owner` (so known to it). */
async function addDevice(owner: E2EEClient, options: Partial<E2EEClientOptions> = {}) {
  const added = await pinned(owner.identity, options);
  const pending = nextEvents<PendingDevice>(added.client, 'deviceApprovalPending');
  const registering = added.client.register({ approvalPollMs: 20 });
  await owner.approveDevice((await pending)[0]!.cardId);
  await registering;
  return added;
}

async function connect(client: E2EEClient): Promise<Client> {
  const chat = await client.connect();
  chats.push(chat);
  return chat;
}

/** Alice and bob in a conversation (alice's view), with the names of this test. */
async function pair(aliceOptions: Partial<E2EEClientOptions> = {}) {
  const id = ++n;
  const alice = await pinned(`alice-${id}`, aliceOptions);
  const bob = await pinned(`bob-${id}`);
  await alice.client.register();
  await bob.client.register();
  const [aliceChat, bobChat] = [await connect(alice.client), await connect(bob.client)];
  const conversation = await aliceChat.createConversation();
  await conversation.join();
  const added = nextEvents(bobChat, 'conversationAdded');
  await conversation.add(bob.client.identity);
  await added;
  return { alice, bob, aliceChat, bobChat, conversation };
}

/** A card for `identity` no device of it made, countersigned with the service's AppKey and registered in the store (so logged). */
async function rogueCard(identity: string): Promise<CardWire> {
  const card = parseCardRequest(createCardRequest(generateDeviceKeys(), { identity, deviceId: 'rogue', deviceName: 'new phone' }));
  const wire = countersignCard(card, config.appKey);
  const now = Math.floor(Date.now() / 1000);
  const { signKey, boxKey, deviceId, createdAt } = card.fields;
  await server.store.registerCard({ ...wire, identity, deviceId, signKey, boxKey, createdAt, registeredAt: now, revokedAt: null }, { maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY, now });
  return wire;
}

/** The 8-byte key ids (hex) of the recipient slots of a conversation's newest message, as the relay stores it. */
async function recipients(conversation: Conversation): Promise<string[]> {
  const [message] = await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 });
  const parsed = parseEnvelope(message!.body);
  return Array.from({ length: parsed.recipientCount }, (_, i) => {
    const offset = RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES;
    return toHex(parsed.binary.subarray(offset, offset + KEY_ID_BYTES));
  });
}
const slotOf = (cardId: string): string => cardId.slice(0, 2 * KEY_ID_BYTES);

/** A `fetch` that hands each answer of the real service to `rewrite` (path with query, body) first. */
function scripted(rewrite: (path: string, body: string) => string | Promise<string>): FetchLike {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input);
    const body = await rewrite(url.pathname + url.search, await res.text());
    return new Response(body, { status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? 'application/json' } });
  };
}

const alertsOf = (alerts: DirectoryAlert[], kind: DirectoryAlert['kind']) => alerts.filter((a) => a.kind === kind);

describe('1. a rogue card countersigned by the service for bob', () => {
  it('is reported by bob\'s monitoring within one interval, with nobody sending', async () => {
    const { bob } = await pair();
    await bob.client.checkOwnDevices(); // the account as bob's device found it
    const wire = await rogueCard(bob.client.identity);
    const started = Date.now();
    await waitFor(() => alertsOf(bob.alerts, 'rogue-device').length > 0, 'the rogue-device alert', 3 * INTERVAL + 2000);
    expect(Date.now() - started).toBeLessThan(INTERVAL + 1500); // one interval, plus the next checkpoint
    expect(bob.alerts).toEqual([expect.objectContaining({ kind: 'rogue-device', identity: bob.client.identity, cardId: wire.id, message: expect.stringContaining("don't recognise") })]);
  });
});

describe('2. a card hidden from the log', () => {
  it('is refused when served with no proof entry: never a recipient, an unlogged-card alert', async () => {
    let hidden: string | null = null;
    const fetchHiding = scripted((path, body) => {
      if (!path.startsWith('/v1/cards?') || hidden === null) return path.startsWith(`/v1/log/inclusion?cardId=${hidden}`) ? '{"error":{"code":"NOT_FOUND","message":"x"}}' : body;
      const answer = JSON.parse(body) as CardsLookupResponse;
      delete answer.log!.proofs[hidden];
      return JSON.stringify(answer);
    });
    const { alice, bob, conversation } = await pair({ fetch: fetchHiding });
    await conversation.sendMessage('before');
    const wire = await rogueCard(bob.client.identity);
    hidden = wire.id;
    await conversation.sendMessage('after');
    expect(await recipients(conversation)).not.toContain(slotOf(wire.id));
    expect(alice.rejected).toEqual([{ identity: bob.client.identity, cardId: wire.id, error: { code: 'CARD_UNLOGGED', message: expect.any(String) } }]);
    expect(alertsOf(alice.alerts, 'unlogged-card')).toEqual([expect.objectContaining({ identity: bob.client.identity, cardId: wire.id })]);
  });

  it('is refused when its proof does not hold (a hash changed)', async () => {
    let target: string | null = null;
    const fetchForging = scripted((path, body) => {
      if (!path.startsWith('/v1/cards?') || target === null) return body;
      const answer = JSON.parse(body) as CardsLookupResponse;
      const entry = answer.log!.proofs[target]!;
      if (entry.proof && entry.proof.length > 0) entry.proof[0] = entry.proof[0]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
      else entry.index += 1;
      return JSON.stringify(answer);
    });
    const { alice, bob, conversation } = await pair({ fetch: fetchForging });
    await conversation.sendMessage('before');
    const wire = await rogueCard(bob.client.identity);
    await sleep(300); // in a checkpoint, so the lookup carries its proof
    target = wire.id;
    await conversation.sendMessage('after');
    expect(await recipients(conversation)).not.toContain(slotOf(wire.id));
    expect(alertsOf(alice.alerts, 'unlogged-card').map((a) => a.cardId)).toEqual([wire.id]);
  });
});

describe('4. a rollback', () => {
  it('refuses an older checkpoint than one verified, stops sends until the app accepts the alert', async () => {
    let older: string | null = null;
    let replay = false;
    const fetchReplaying = scripted((path, body) => {
      if (path === '/v1/log/checkpoint') {
        older ??= body;
        return replay ? older : body;
      }
      if (path.startsWith('/v1/cards?') && replay) {
        const answer = JSON.parse(body) as CardsLookupResponse;
        return JSON.stringify({ ...answer, log: { ...answer.log!, checkpoint: older, size: parseCheckpoint(parseNote(older!).text).size } });
      }
      return body;
    });
    const { alice, conversation } = await pair({ fetch: fetchReplaying });
    await alice.client.checkOwnDevices(); // keeps the checkpoint the script will replay
    await rogueCard(`someone-${n}`); // the log grows
    await sleep(300);
    await conversation.sendMessage('grown'); // alice verifies the newer checkpoint
    replay = true;
    const err = await conversation.sendMessage('after the rollback').catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alertsOf(alice.alerts, 'log-rollback')).toHaveLength(1);
    const again = await conversation.sendMessage('still refused').catch((e: unknown) => e);
    expect(isE2EEError(again, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alertsOf(alice.alerts, 'log-rollback')).toHaveLength(1); // one per finding
    replay = false;
    await alice.client.acceptDirectoryAlert(alertsOf(alice.alerts, 'log-rollback')[0]!);
    await conversation.sendMessage('accepted');
  });

  it('refuses a shorter log after a reload, from the checkpoint kept in the key store', async () => {
    const keyStore = new MemoryKeyStore();
    const first = await pinned(`carol-${++n}`, { keyStore });
    const older = await (await fetch(`${server.url}/v1/log/checkpoint`)).text();
    await rogueCard(`someone-${n}`);
    await sleep(300);
    const kept = await first.client.trust.view.refresh();
    expect(kept.size).toBeGreaterThan(parseCheckpoint(parseNote(older).text).size);
    const reloaded = await pinned(first.client.identity, { keyStore, fetch: scripted((path, body) => (path === '/v1/log/checkpoint' ? older : body)) });
    expect(await reloaded.client.trust.view.latest()).toEqual(kept);
    const err = await reloaded.client.trust.view.refresh().catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alertsOf(reloaded.alerts, 'log-rollback')).toHaveLength(1);
  });

  it('refuses a checkpoint signed by the LogKey for a different tree (a fork)', async () => {
    let forged: string | null = null;
    const fetchForking = scripted((path, body) => (path === '/v1/log/checkpoint' && forged ? forged : body));
    const { alice } = await pair({ fetch: fetchForking });
    const head = (await alice.client.trust.view.latest())!;
    forged = signCheckpoint({ origin: config.log.origin, size: head.size + 1, rootHash: new Uint8Array(32).fill(7), extensions: [] }, config.log.key);
    const err = await alice.client.trust.view.refresh().catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alertsOf(alice.alerts, 'log-fork')).toHaveLength(1);
    expect((await alice.client.trust.view.latest())!.size).toBe(head.size); // kept its own
  });
});

describe('5. a suppressed revocation', () => {
  it('alice finds the revocation in bob\'s chain while the service still serves the card', async () => {
    let kept: CardWire | null = null;
    const aliceFetch: FetchLike = scripted(async (path, body) => {
      if (!path.startsWith('/v1/cards?') || kept === null) return body;
      const answer = JSON.parse(body) as CardsLookupResponse;
      const identity = Object.keys(answer.cards).find((i) => i.startsWith('bob-'))!;
      if (!answer.cards[identity]!.some((c) => c.id === kept!.id)) {
        // The service proves the card's registration (still in the log) and serves it as active.
        const proof = await (await fetch(`${server.url}/v1/log/inclusion?cardId=${kept.id}&size=${answer.log!.size}`, { headers: { authorization: `Bearer ${await server.session(identity)}` } })).json();
        answer.cards[identity]!.push({ ...kept, revokedAt: null });
        answer.log!.proofs[kept.id] = { index: proof.index, leaf: proof.leaf, proof: proof.proof };
      }
      return JSON.stringify(answer);
    });
    const { alice, bob, conversation } = await pair({ fetch: aliceFetch });
    const phoneCard = (await addDevice(bob.client)).client.card!.wire;
    await sleep(300);
    await conversation.sendMessage('to both of bob\'s devices');
    expect(await recipients(conversation)).toContain(slotOf(phoneCard.id));

    kept = phoneCard;
    await bob.client.revokeDevice(phoneCard.id);
    await sleep(INTERVAL + 300); // the next checkpoint, and alice's next read of bob's chain is due
    await conversation.sendMessage('the lookup that finds it');
    await waitFor(() => alertsOf(alice.alerts, 'suppressed-revocation').length > 0, 'alice\'s alert');
    expect(alertsOf(alice.alerts, 'suppressed-revocation')).toEqual([expect.objectContaining({ identity: bob.client.identity, cardId: phoneCard.id })]);
    await conversation.sendMessage('after');
    expect(await recipients(conversation)).not.toContain(slotOf(phoneCard.id));
    expect(bob.alerts).toEqual([]); // bob's own chain shows the revocation he made
  });

  it('bob finds that his revocation never reached the log', async () => {
    const bobFetch: FetchLike = async (input, init) =>
      init?.method === 'DELETE' && new URL(input).pathname.startsWith('/v1/cards/') ? new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } }) : fetch(input, init);
    const bob = await pinned(`bob-${++n}`, { fetch: bobFetch });
    await bob.client.register();
    await connect(bob.client);
    const phoneCard = (await addDevice(bob.client)).client.card!.wire;
    await bob.client.revokeDevice(phoneCard.id); // the service says yes, and keeps the card
    await waitFor(() => alertsOf(bob.alerts, 'suppressed-revocation').length > 0, 'bob\'s alert', 5 * INTERVAL);
    expect(alertsOf(bob.alerts, 'suppressed-revocation')).toEqual([expect.objectContaining({ identity: bob.client.identity, cardId: phoneCard.id })]);
  });
});

describe('7. a card inserted straight into the database', () => {
  it('is refused by every client: contacts and its own identity\'s devices', async () => {
    const { alice, bob, conversation } = await pair();
    await conversation.sendMessage('before');
    const card = parseCardRequest(createCardRequest(generateDeviceKeys(), { identity: bob.client.identity, deviceId: 'inserted', deviceName: 'inserted' }));
    const wire = countersignCard(card, config.appKey);
    const db = new Database(join(server.dataDir, SQLITE_FILENAME));
    const now = Math.floor(Date.now() / 1000);
    db.prepare('INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature, app_signature, app_key_id, created_at, registered_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)').run(
      wire.id, bob.client.identity, 'inserted', card.fields.signKey, card.fields.boxKey, wire.snapshot, wire.selfSignature, wire.appSignature, wire.appKeyId, card.fields.createdAt, now,
    );
    db.close();
    await conversation.sendMessage('after');
    expect(await recipients(conversation)).not.toContain(slotOf(wire.id));
    expect(alertsOf(alice.alerts, 'unlogged-card').map((a) => a.cardId)).toEqual([wire.id]);
    expect((await bob.client.devices()).map((c) => c.id)).not.toContain(wire.id);
    expect(alertsOf(bob.alerts, 'unlogged-card').map((a) => a.cardId)).toEqual([wire.id]);
  });
});

describe('the honest path', () => {
  it('raises no alert over a busy period: registrations, approvals and revocations on sibling devices, people joining and leaving, history reads', async () => {
    const { alice, bob, conversation } = await pair();
    const everyone = [alice, bob];
    // Bob adds a phone, approved on his desktop; the phone approves a tablet (the desktop never
    // sees that approval but in the log); the tablet then revokes the phone.
    const phone = await addDevice(bob.client);
    everyone.push(phone);
    await connect(phone.client);
    const tablet = await addDevice(phone.client);
    everyone.push(tablet);
    await connect(tablet.client);
    await conversation.sendMessage('hello all three of bob\'s devices');
    // Carol joins, talks, leaves; a new user dave appears later and reads history.
    const carol = await pinned(`carol-${n}`);
    everyone.push(carol);
    await carol.client.register();
    await connect(carol.client);
    await conversation.add(carol.client.identity);
    await conversation.sendMessage('hi carol');
    await conversation.removeParticipant(carol.client.identity);
    await conversation.sendMessage('carol left');
    await tablet.client.revokeDevice(phone.client.card!.id); // removed from another of bob's devices
    await conversation.sendMessage('after the phone was revoked');
    const dave = await pinned(`dave-${n}`);
    everyone.push(dave);
    await dave.client.register();
    const daveChat = await connect(dave.client);
    await conversation.add(dave.client.identity);
    const seen = await (await daveChat.getConversationBySid(conversation.sid)).getMessages();
    expect(seen.items.map((m) => m.e2ee?.status)).toEqual(seen.items.map(() => 'verified'));
    await sleep(2 * INTERVAL + 500); // every device's monitoring runs at least twice
    await Promise.all(everyone.filter((d) => d !== phone).map((d) => d.client.checkOwnDevices()));
    expect(everyone.flatMap((d) => d.alerts)).toEqual([]);
    expect(everyone.flatMap((d) => d.rejected)).toEqual([]);
  });
});

describe('a sibling\'s approval or revocation the service forged', () => {
  /** Bob's desktop and a phone it approved, both monitoring; the desktop's real approval proof, as the service keeps it. */
  async function bobWithPhone() {
    const bob = await pinned(`bob-${++n}`);
    await bob.client.register();
    await connect(bob.client);
    const phone = await addDevice(bob.client);
    await connect(phone.client);
    const [approval] = await server.store.cardAuthorizations([phone.client.card!.id]);
    await sleep(INTERVAL + 300);
    await Promise.all([bob.client.checkOwnDevices(), phone.client.checkOwnDevices()]);
    expect([...bob.alerts, ...phone.alerts]).toEqual([]);
    return { bob, phone, approval: approval! };
  }

  /** A rogue card of `identity` registered by the service in the store with `authorization`. */
  async function rogueWith(identity: string, authorization: CardAuthorization): Promise<CardWire> {
    const card = parseCardRequest(createCardRequest(generateDeviceKeys(), { identity, deviceId: 'rogue', deviceName: 'new phone' }));
    const wire = countersignCard(card, config.appKey);
    const now = Math.floor(Date.now() / 1000);
    const { signKey, boxKey, deviceId, createdAt } = card.fields;
    await server.store.registerCard({ ...wire, identity, deviceId, signKey, boxKey, createdAt, registeredAt: now, revokedAt: null }, { maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY, now, authorization });
    return wire;
  }

  it('a card registered with a forged approval (a signature no device made, or a real one replayed) alerts on every device', async () => {
    const { bob, phone, approval } = await bobWithPhone();
    const forged = await rogueWith(bob.client.identity, { ...approval, path: `/v1/device-requests/${'0'.repeat(64)}/approve`, signature: new Uint8Array(64).fill(7) });
    const replayed = await rogueWith(bob.client.identity, approval); // the desktop's proof, for the phone's card
    for (const device of [bob, phone]) {
      await waitFor(() => alertsOf(device.alerts, 'rogue-device').length === 2, 'rogue-device alerts', 5 * INTERVAL);
      expect(alertsOf(device.alerts, 'rogue-device').map((a) => a.cardId).sort()).toEqual([forged.id, replayed.id].sort());
    }
  });

  it('a revocation the service made without a device\'s proof alerts on the revoked device and its siblings', async () => {
    const { bob, phone } = await bobWithPhone();
    await server.store.revokeCard(phone.client.card!.id, Math.floor(Date.now() / 1000));
    for (const device of [bob, phone]) {
      await waitFor(() => alertsOf(device.alerts, 'unknown-event').length > 0, 'unknown-event alert', 5 * INTERVAL);
      expect(device.alerts).toEqual([expect.objectContaining({ kind: 'unknown-event', identity: bob.client.identity, cardId: phone.client.card!.id })]);
    }
  });
});
