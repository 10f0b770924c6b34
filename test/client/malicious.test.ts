/**
 * A malicious service and malicious peers against real clients (issue #8):
 * - a card directory that slips in a card its user never made: countersigned by the real AppKey
 *   (the client cannot refuse it, so it must raise keyChange and change the safety number), or
 *   not (the AppKey pin refuses it: `cardRejected`, never a recipient, never a valid sender; the
 *   safety number still moves with the event the directory logged for it);
 * - a conversations service that replays, reorders or withholds messages. It stands in for
 *   Twilio's cloud: a scripted BaseClient that proxies a real relay client, connected to the
 *   real relay, and re-emits its messageAdded events as the script says;
 * - a peer that moves a valid envelope into another conversation.
 * The server, store, relay and E2EE clients are the real ones; nothing of the client is mocked.
 */
import { conversationWrapperOf } from '../../client/wrapper.js';
import type { Client, Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unwrap, e2eeClientOf, FAILED_BODY, GAP_WAIT_MS, LocalConversationsClient, type BackupFailure, type BaseClient, type BaseConversation, type BaseMessage, type BasePaginator, type E2EEClient, type KeyChange, type LocalMessage, type MessageGap, type RejectedCard } from '../../client/index.js';
import type { FetchLike } from '../../client/api-client.js';
import { loadConfig } from '../../server/config.js';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import {
  KEY_ID_BYTES,
  RECIPIENTS_OFFSET,
  RECIPIENT_SLOT_BYTES,
  ApiPath,
  countersignCard,
  createCardRequest,
  createRewrap,
  fromB64u,
  generateAppKey,
  generateDeviceKeys,
  leafHash,
  parseCardRequest,
  parseEnvelope,
  safetyNumber,
  sealEnvelope,
  toB64u,
  toHex,
  trustAppKeys,
  verifyCard,
  type AppKey,
  type CardWire,
  type DeviceKeys,
  type SelfSignedCard,
} from '../../shared/index.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { checkpointed, device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
/** The server's own AppKey, read from its key file: what a compromised directory holds. */
let appKey: AppKey;
const chats: Client[] = [];
let names = 0;

beforeAll(async () => {
  server = await startLoopbackServer();
  appKey = (await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' })).appKey;
});

afterAll(async () => {
  for (const chat of chats) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

// ---------------------------------------------------------------- fixtures

interface Pair {
  alice: E2EEClient;
  bob: E2EEClient;
  aliceChat: Client;
  bobChat: Client;
  /** Created by alice, bob added; alice's view. */
  conversation: Conversation;
}

/**
 * Two fresh identities, registered and connected, in a new conversation alice created. Bob is
 * connected through `bobService` when given (a misbehaving conversations service); alice's
 * conversation objects go through `aliceConversations` when given.
 */
interface PairOptions {
  aliceCacheTtlMs?: number;
  aliceConversations?: (c: BaseConversation) => BaseConversation;
  bobService?: Script;
  /** How bob's client reaches the card service (default: fetch). */
  bobFetch?: FetchLike;
}

async function pair(options: PairOptions = {}): Promise<Pair> {
  const n = ++names;
  const alice = await device(server, `alice-${n}`, { cardCacheTtlMs: options.aliceCacheTtlMs ?? 30_000 });
  const bob = await device(server, `bob-${n}`, options.bobFetch ? { fetch: options.bobFetch } : {});
  await alice.register();
  await bob.register();
  const aliceChat = options.aliceConversations
    ? alice.wrap(await scriptedService(alice, (message, deliver) => deliver(message), options.aliceConversations))
    : await alice.connect();
  const bobChat = options.bobService ? bob.wrap(await scriptedService(bob, options.bobService)) : await bob.connect();
  chats.push(aliceChat, bobChat);
  const conversation = await aliceChat.createConversation();
  await conversation.join();
  const added = nextEvents(bobChat, 'conversationAdded');
  await conversation.add(bob.identity);
  await added;
  return { alice, bob, aliceChat, bobChat, conversation };
}

/** The body the relay stores for the newest message of a conversation (what Twilio would hold). */
async function newestStoredBody(conversationSid: string): Promise<string> {
  const [message] = await server.store.messages(conversationSid, { direction: 'backwards', limit: 1 });
  if (!message) throw new Error(`no message in ${conversationSid}`);
  return message.body;
}

/** The 8-byte key ids (hex) of an envelope's recipient slots. */
function recipientKeyIds(envelopeText: string): string[] {
  const parsed = parseEnvelope(envelopeText);
  return Array.from({ length: parsed.recipientCount }, (_, i) => {
    const offset = RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES;
    return toHex(parsed.binary.subarray(offset, offset + KEY_ID_BYTES));
  });
}
const keyIdOf = (cardId: string): string => cardId.slice(0, 2 * KEY_ID_BYTES);

/** The safety number as the log tells it: each side's own registered card and its newest logged event. */
async function loggedSafetyNumber(a: E2EEClient, b: E2EEClient): Promise<string> {
  const side = async (client: E2EEClient) => {
    const events = await server.store.identityEvents(client.identity, 0, await server.store.logSize(), 100);
    return { identity: client.identity, signPublicKeys: [fromB64u(client.card!.fields.signKey)], chainHead: leafHash(events.at(-1)!.leaf) };
  };
  return safetyNumber(await side(a), await side(b));
}

/**
 * A card for `identity` that its user never made, written straight into the directory's store
 * (what a compromised service does), countersigned by `countersign`.
 */
async function implantCard(identity: string, countersign: (card: SelfSignedCard) => CardWire): Promise<{ wire: CardWire; keys: DeviceKeys }> {
  const keys = generateDeviceKeys();
  const card = parseCardRequest(createCardRequest(keys, { identity, deviceId: 'implant', deviceName: 'new phone' }));
  const wire = countersign(card);
  const now = Math.floor(Date.now() / 1000);
  const result = await server.store.registerCard(
    { ...wire, identity, deviceId: card.fields.deviceId, signKey: card.fields.signKey, boxKey: card.fields.boxKey, createdAt: card.fields.createdAt, registeredAt: now, revokedAt: null },
    { maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY, now },
  );
  expect(result).toEqual({ ok: true, superseded: null });
  return { wire, keys };
}

// ---------------------------------------------------------------- the misbehaving service

/** Decides what the app's client is told when the real service has a new message for it. */
type Script = (message: LocalMessage, deliver: (message: BaseMessage) => void) => void;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

/**
 * A conversations service that misbehaves at the one place a service can: what it tells the
 * client. Everything is the real relay client's, except that messageAdded goes through a script.
 */
class ScriptedService implements BaseClient {
  private readonly added = new Set<AnyListener>();

  constructor(
    private readonly inner: LocalConversationsClient,
    script: Script,
    /** What the service hands out as conversation objects (default: the real ones). */
    private readonly conversation: (c: BaseConversation) => BaseConversation = (c) => c,
  ) {
    inner.on('messageAdded', (message) =>
      script(message, (out) => {
        for (const listener of [...this.added]) listener(out);
      }),
    );
  }

  get connectionState(): string {
    return this.inner.connectionState;
  }
  on(event: string, listener: AnyListener): this {
    if (event === 'messageAdded') this.added.add(listener);
    else (this.inner as BaseClient).on(event, listener);
    return this;
  }
  removeListener(event: string, listener: AnyListener): this {
    if (event === 'messageAdded') this.added.delete(listener);
    else (this.inner as BaseClient).removeListener(event, listener);
    return this;
  }
  async createConversation(options?: Parameters<BaseClient['createConversation']>[0]): Promise<BaseConversation> {
    return this.conversation(await this.inner.createConversation(options));
  }
  async getConversationBySid(sid: string): Promise<BaseConversation> {
    return this.conversation(await this.inner.getConversationBySid(sid));
  }
  getSubscribedConversations(): Promise<BasePaginator<BaseConversation>> {
    return this.inner.getSubscribedConversations();
  }
  updateToken(token: string): Promise<unknown> {
    return this.inner.updateToken(token);
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

async function scriptedService(client: E2EEClient, script: Script, conversation?: (c: BaseConversation) => BaseConversation): Promise<ScriptedService> {
  const token = await client.api.twilioToken();
  if (token.mode !== 'local') throw new Error(`expected local mode, got ${token.mode}`);
  return new ScriptedService(await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token }), script, conversation);
}

/** The same message as the service would present it under another sid and/or index. */
function copyOf(message: LocalMessage, changes: { sid?: string; index?: number }): BaseMessage {
  return {
    sid: changes.sid ?? message.sid,
    index: changes.index ?? message.index,
    author: message.author,
    body: message.body,
    attributes: message.attributes,
    dateCreated: message.dateCreated,
    dateUpdated: message.dateUpdated,
    conversation: message.conversation,
    updateBody: (body: string) => message.updateBody(body),
  };
}

/** Everything the app's client reports, in order, with the time it was reported. */
function record(chat: Client) {
  const events: Array<{ at: number } & ({ kind: 'message'; message: Message } | { kind: 'gap'; gap: MessageGap })> = [];
  chat.on('messageAdded', (message) => events.push({ at: Date.now(), kind: 'message', message }));
  void e2eeClientOf(chat).then((e2ee) => e2ee.on('messageGap', (gap) => events.push({ at: Date.now(), kind: 'gap', gap })));
  return {
    events,
    messages: () => events.flatMap((e) => (e.kind === 'message' ? [e.message] : [])),
    gaps: () => events.flatMap((e) => (e.kind === 'gap' ? [e.gap] : [])),
  };
}

// ---------------------------------------------------------------- tests

describe('a directory that substitutes cards', () => {
  it('is caught when it adds a card countersigned by the real AppKey: keyChange on the next send, and a new safety number', async () => {
    const { alice, bob, conversation } = await pair({ aliceCacheTtlMs: 0 });
    await conversation.sendMessage('before'); // alice's first sight of bob's cards: the baseline
    await bob.devices(); // bob's first look at his own cards, too
    const safetyBefore = await alice.safetyNumber(bob.identity);
    const changes: KeyChange[] = [];
    const rejected: RejectedCard[] = [];
    alice.on('keyChange', (c) => changes.push(c));
    alice.on('cardRejected', (r) => rejected.push(r));

    const { wire } = await implantCard(bob.identity, (card) => countersignCard(card, appKey));
    await conversation.sendMessage('after');

    expect(changes).toEqual([{ identity: bob.identity, added: [wire.id], removed: [], unobserved: [] }]);
    expect(rejected).toEqual([]);
    // The card verifies under the pinned AppKey, so it did get a slot: the warning is the defence.
    expect(recipientKeyIds(await newestStoredBody(conversation.sid))).toContain(keyIdOf(wire.id));
    const safetyAfter = await alice.safetyNumber(bob.identity);
    expect(safetyAfter).not.toBe(safetyBefore);
    // Bob, comparing out of band, now disagrees with alice's old number; and his own client reports the device he never made.
    const bobChanges: KeyChange[] = [];
    bob.on('keyChange', (c) => bobChanges.push(c));
    expect(await bob.safetyNumber(alice.identity)).toBe(safetyAfter);
    expect(bobChanges).toEqual([{ identity: bob.identity, added: [wire.id], removed: [], unobserved: [] }]);
  });

  const untrusted: Record<string, { code: string; countersign: (card: SelfSignedCard) => CardWire }> = {
    'countersigned by another AppKey': { code: 'CARD_APP_KEY_UNTRUSTED', countersign: (card) => countersignCard(card, generateAppKey()) },
    'naming the pinned AppKey, signed by another key': {
      code: 'CARD_APP_SIGNATURE_INVALID',
      countersign: (card) => ({ ...countersignCard(card, generateAppKey()), appKeyId: appKey.appKeyId }),
    },
    'naming the pinned AppKey, unsigned (zero signature)': {
      code: 'CARD_APP_SIGNATURE_INVALID',
      countersign: (card) => ({ ...countersignCard(card, appKey), appSignature: toB64u(new Uint8Array(64)) }),
    },
  };

  it.each(Object.entries(untrusted))('refuses a card %s: cardRejected, never a recipient, never a valid sender', async (_, { code, countersign }) => {
    const { alice, bob, aliceChat, bobChat, conversation } = await pair({ aliceCacheTtlMs: 0 });
    await conversation.sendMessage('before');
    const safetyBefore = await alice.safetyNumber(bob.identity);
    const changes: KeyChange[] = [];
    const rejected: RejectedCard[] = [];
    alice.on('keyChange', (c) => changes.push(c));
    alice.on('cardRejected', (r) => rejected.push(r));

    const { wire, keys } = await implantCard(bob.identity, countersign);
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    await conversation.sendMessage('after');

    expect(rejected).toContainEqual({ identity: bob.identity, cardId: wire.id, error: { code, message: expect.any(String) } });
    expect(changes).toEqual([]);
    const slots = recipientKeyIds(await newestStoredBody(conversation.sid));
    expect(slots).not.toContain(keyIdOf(wire.id));
    expect(slots).toContain(keyIdOf(bob.card!.id));
    expect((await atBob)[0]!.e2ee?.status).toBe('verified'); // bob's real device still reads it
    // The directory logged the implant, so its registration is bob's chain head once a checkpoint
    // holds it: the number (version 2) moves with it, and bob, comparing, sees the same. Its key is in neither.
    await checkpointed(server);
    const safetyAfter = await alice.safetyNumber(bob.identity);
    expect(safetyAfter).not.toBe(safetyBefore);
    expect(safetyAfter).toBe(await loggedSafetyNumber(alice, bob));
    expect(await bob.safetyNumber(alice.identity)).toBe(safetyAfter);

    // Whoever holds the implant's keys posts as bob: alice's client does not accept its signature.
    const implantSays = sealEnvelope({ sender: { cardId: wire.id, signSecretKey: keys.signSecretKey }, recipients: [alice.card!, bob.card!], conversationSid: conversation.sid, body: 'trust me' });
    const atAlice = nextEvents<Message>(aliceChat, 'messageAdded');
    await (await (unwrap(bobChat) as unknown as BaseClient).getConversationBySid(conversation.sid)).sendMessage(implantSays.text);
    const [message] = await atAlice;
    expect(message!.e2ee?.status).toBe('failed');
    expect(message!.e2ee?.error!.code).toBe(code);
    expect(message!.body).toBe(FAILED_BODY);
  });
});

describe('a conversations service that misbehaves', () => {
  it.each([
    ['promptly', 0],
    ['slowly (the replay is decrypted first)', 300],
  ])('replays a message under a new sid, the directory answering %s: the original is shown, the replay flagged ENVELOPE_REPLAY', async (_, delayMs) => {
    let delayed = false;
    const { conversation, bobChat } = await pair({
      bobService: (message, deliver) => {
        deliver(message);
        if (message.index === 0) deliver(copyOf(message, { sid: `IM${'f'.repeat(32)}`, index: 1 }));
      },
      // The first lookup of a card by id (the original's sender card) takes delayMs.
      bobFetch: async (input, init) => {
        if (delayMs > 0 && !delayed && /\/v1\/cards\/[0-9a-f]{64}$/.test(input)) {
          delayed = true;
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
        return fetch(input, init);
      },
    });
    const seen = record(bobChat);
    await conversation.sendMessage('pay 10 euros');
    await waitFor(() => seen.messages().length === 2, 'the message and its replay');
    const [original, replay] = seen.messages();
    expect(original!).toMatchObject({ index: 0, body: 'pay 10 euros', e2ee: { status: 'verified' } });
    expect(replay!).toMatchObject({ index: 1, body: FAILED_BODY, e2ee: { status: 'failed', error: { code: 'ENVELOPE_REPLAY' } } });
    expect(seen.gaps()).toEqual([]);
  });

  it('reorders the first messages after the app opened the conversation (2, 0, 1): delivered 0, 1, 2', async () => {
    const held: LocalMessage[] = [];
    const { conversation, bobChat } = await pair({
      bobService: (message, deliver) => {
        held.push(message);
        if (held.length === 3) for (const index of [2, 0, 1]) deliver(held.find((m) => m.index === index)!);
      },
    });
    // What apps do on opening a conversation: load its newest page (here: empty).
    expect((await (await bobChat.getConversationBySid(conversation.sid)).getMessages()).items).toEqual([]);
    const seen = record(bobChat);
    for (const body of ['first', 'second', 'third']) await conversation.sendMessage(body);
    await waitFor(() => seen.messages().length === 3, 'three messages');
    expect(seen.messages().map((m) => [m.index, m.body, m.e2ee?.status])).toEqual([
      [0, 'first', 'verified'],
      [1, 'second', 'verified'],
      [2, 'third', 'verified'],
    ]);
    await new Promise((r) => setTimeout(r, GAP_WAIT_MS + 200));
    expect(seen.gaps()).toEqual([]); // nothing was missing, so no gap is reported
  });

  it('reorders later messages (3, 1, 2 after 0): delivered 1, 2, 3', async () => {
    const held: LocalMessage[] = [];
    const { conversation, bobChat } = await pair({
      bobService: (message, deliver) => {
        if (message.index === 0) return deliver(message);
        held.push(message);
        if (held.length === 3) for (const index of [3, 1, 2]) deliver(held.find((m) => m.index === index)!);
      },
    });
    const seen = record(bobChat);
    for (const body of ['zero', 'one', 'two', 'three']) await conversation.sendMessage(body);
    await waitFor(() => seen.messages().length === 4, 'four messages');
    expect(seen.messages().map((m) => [m.index, m.body])).toEqual([
      [0, 'zero'],
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
    ]);
    expect(seen.gaps()).toEqual([]);
  });

  it('withholds message 1: a messageGap {from: 1, to: 1} after GAP_WAIT_MS, then 2; the late message is still shown', async () => {
    let withheld: { message: LocalMessage; deliver: (m: BaseMessage) => void } | null = null;
    const deliveredAt = new Map<number, number>();
    const { conversation, bobChat } = await pair({
      bobService: (message, deliver) => {
        if (message.index === 1) {
          withheld = { message, deliver };
          return;
        }
        deliveredAt.set(message.index, Date.now());
        deliver(message);
      },
    });
    const bobConversation = await bobChat.getConversationBySid(conversation.sid);
    const conversationGaps: MessageGap[] = [];
    (await e2eeClientOf(bobChat)).on('messageGap', (gap) => gap.conversation === bobConversation && conversationGaps.push(gap));
    const seen = record(bobChat);
    for (const body of ['zero', 'one', 'two']) await conversation.sendMessage(body);
    await waitFor(() => seen.messages().length === 2, 'messages 0 and 2', GAP_WAIT_MS + 5_000);

    expect(seen.events.map((e) => (e.kind === 'gap' ? `gap ${e.gap.from}-${e.gap.to}` : `#${e.message.index} ${e.message.body}`))).toEqual([
      '#0 zero',
      'gap 1-1',
      '#2 two',
    ]);
    const gapEvent = seen.events[1]!;
    expect(gapEvent.at - deliveredAt.get(2)!).toBeGreaterThanOrEqual(GAP_WAIT_MS - 5); // timers may round down by a millisecond
    expect(seen.gaps()[0]!.conversation.sid).toBe(conversation.sid);
    expect(conversationGaps.map(({ from, to }) => ({ from, to }))).toEqual([{ from: 1, to: 1 }]);

    // The service hands it over after all: shown (never hidden), verified, after what came before.
    const late = withheld as { message: LocalMessage; deliver: (m: BaseMessage) => void } | null;
    late!.deliver(late!.message);
    await waitFor(() => seen.messages().length === 3, 'the late message');
    expect(seen.messages()[2]).toMatchObject({ index: 1, body: 'one', e2ee: { status: 'verified' } });
    // And the page the app reads shows everything in order.
    expect((await bobConversation.getMessages()).items.map((m) => m.body)).toEqual(['zero', 'one', 'two']);
  });
});

describe('a conversations service that fails briefly', () => {
  it('fails the lookup of a message just sent: the backup is retried, not dropped', async () => {
    let lookupsToFail = 1;
    const { alice, conversation } = await pair({
      // The wrapper finds a sent message again with getMessages(1, index, 'forward') to back it up.
      aliceConversations: (raw) =>
        new Proxy(raw, {
          get(target, property) {
            if (property === 'getMessages') {
              return (pageSize?: number, anchor?: number, direction?: 'backwards' | 'forward') =>
                pageSize === 1 && direction === 'forward' && lookupsToFail-- > 0
                  ? Promise.reject(new Error('service unavailable'))
                  : target.getMessages(pageSize, anchor, direction);
            }
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
    });
    const failures: BackupFailure[] = [];
    alice.on('backupFailed', (f) => failures.push(f));
    await conversation.sendMessage('back me up');
    await waitFor(async () => (await alice.pendingBackups()) === 0, 'the backup', 15_000);
    expect(failures).toEqual([]);
    expect(lookupsToFail).toBeLessThan(0); // the lookup failed, and was asked again
    expect((await server.store.history(conversation.sid, -1, 10)).map((r) => r.index)).toEqual([0]);
  });
});

describe('a peer that moves a valid envelope to another conversation', () => {
  it('is flagged for every reader, and the history service refuses its backup (reported, not retried)', async () => {
    const { alice, bob, aliceChat, bobChat, conversation } = await pair();
    const other = await aliceChat.createConversation();
    await other.join();
    const added = nextEvents(bobChat, 'conversationAdded');
    await other.add(bob.identity);
    await added;

    // Alice's message in the first conversation, sealed by her client...
    const sealed = await conversationWrapperOf(conversation).seal('for the first conversation only');
    const rawAlice = unwrap(aliceChat) as unknown as BaseClient;
    await (await rawAlice.getConversationBySid(conversation.sid)).sendMessage(sealed.text);
    // ...posted verbatim into the other one, by alice's own client and by bob's.
    const atBob = nextEvents<Message>(bobChat, 'messageAdded', 3);
    await (await rawAlice.getConversationBySid(other.sid)).sendMessage(sealed.text);
    await (await (unwrap(bobChat) as unknown as BaseClient).getConversationBySid(other.sid)).sendMessage(sealed.text);
    const live = (await atBob).filter((m) => m.conversation.sid === other.sid);
    const page = (await (await bobChat.getConversationBySid(other.sid)).getMessages()).items;
    for (const messages of [live, page]) {
      expect(messages.map((m) => [m.author, m.body, m.e2ee?.status, m.e2ee?.error?.code])).toEqual([
        [alice.identity, FAILED_BODY, 'failed', 'ENVELOPE_CONVERSATION_MISMATCH'],
        [bob.identity, FAILED_BODY, 'failed', 'ENVELOPE_SENDER_NOT_AUTHOR'],
      ]);
    }

    // Alice's client backs up the copy: the history service refuses it for good.
    const orgCardWire = (await (await fetch(`${server.url}${ApiPath.orgCard}`)).json()) as CardWire;
    const orgCard = verifyCard(orgCardWire, { trustedAppKeys: trustAppKeys([server.appPublicKey]) });
    const [copy] = await server.store.messages(other.sid, { direction: 'forward', limit: 1 });
    const failures: BackupFailure[] = [];
    alice.on('backupFailed', (f) => failures.push(f));
    await alice.outbox.add({
      conversationSid: other.sid,
      messageSid: copy!.sid,
      index: copy!.index,
      envelope: copy!.body,
      orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), orgCard.boxPublicKey),
    });
    await waitFor(() => failures.length === 1, 'the refusal to be reported');
    expect(failures[0]).toEqual({ conversationSid: other.sid, messageSid: copy!.sid, error: { code: 'ENVELOPE_CONVERSATION_MISMATCH', message: expect.any(String) } });
    await waitFor(async () => (await alice.outbox.pending()) === 0, 'the outbox to drop the refused entry');
    expect(await server.store.history(other.sid, -1, 10)).toEqual([]);
  });
});
