/**
 * Organization history: a conversation of 1000 messages backed up through the real history
 * webhook (POST /v1/history), then read by a device that joined later, through rewraps:
 * - on the server, GET /v1/history pages of 500 under load (each message: open the orgWrap,
 *   rewrap for the reader's card);
 * - on the client, the reader's MessageCrypto opening the whole page as the wrapper does
 *   (client/message-crypto.ts with client/history.ts's rewraps): unwrap the rewrap, check the
 *   commitment, decrypt, verify the ORIGINAL sender's signature against the directory's card.
 */
import { randomBytes } from 'node:crypto';
import { ApiClient } from '../client/api-client.js';
import { CardDirectory } from '../client/card-directory.js';
import type { BaseMessage } from '../client/conversations.js';
import { HistoryRewraps } from '../client/history.js';
import { MemoryKeyStore } from '../client/key-store.js';
import { DirectoryTrust } from '../client/log-trust.js';
import { MessageCrypto } from '../client/message-crypto.js';
import { ReplayMemory } from '../client/replay-memory.js';
import { openStore } from '../server/store/index.js';
import { ApiPath, type HistoryPostRequest, type HistoryResponse } from '../shared/api.js';
import { trustAppKeys, verifyCard, type CardWire, type VerifiedCard } from '../shared/card.js';
import { createRewrap, parseEnvelope, sealEnvelope } from '../shared/envelope.js';
import { asyncDeviceKeys, type DeviceKeys } from '../shared/keys.js';
import { MAX_HISTORY_PAGE_MESSAGES } from '../shared/limits.js';
import type { BenchServer } from './child.js';
import { messageBody, newRegistration } from './fixtures.js';
import { load, requireClean, type AutocannonRequest, type LoadResult } from './load.js';
import { inParallel } from '../test/support/concurrency.js';
import { api, registerCard, tokenFor, type ServerPlan } from './server.js';
import { round, summarize, timeMsAsync } from './stats.js';

/** The server's largest history page. */
export const HISTORY_PAGE = MAX_HISTORY_PAGE_MESSAGES;

interface Member {
  identity: string;
  token: string;
  keys: DeviceKeys;
  card: VerifiedCard;
}

export interface HistoryFixture {
  conversationSid: string;
  appPublicKey: string;
  /** The messages as the conversation (local relay) holds them, in order. */
  messages: BaseMessage[];
  sender: Member;
  /** Joined after the messages were sent: every message needs a rewrap. */
  reader: Member;
  /** Seeding time: sealing and appending to the relay's store, then the backups through POST /v1/history. */
  seedMs: { sealAndAppend: number; backups: number };
}

async function member(server: BenchServer, identity: string, trusted: ReturnType<typeof trustAppKeys>): Promise<Member> {
  const { keys, request } = newRegistration(identity, 'phone');
  const wire = await registerCard(server, identity, request);
  return { identity, token: tokenFor(server, identity), keys, card: verifyCard(wire, { trustedAppKeys: trusted, identity }) };
}

/**
 * A conversation of alice, carol and bob in the local relay's store; alice sends `count`
 * messages sealed for her and carol's devices and backs each up through POST /v1/history;
 * bob's device can read them only through the organization's rewraps.
 */
export async function seedHistory(server: BenchServer, count: number, bodyChars: number): Promise<HistoryFixture> {
  const appKey = (await (await fetch(`${server.appUrl}${ApiPath.appKey}`)).json()) as { publicKey: string };
  const trusted = trustAppKeys([appKey.publicKey]);
  const orgCard = verifyCard((await (await fetch(`${server.appUrl}${ApiPath.orgCard}`)).json()) as CardWire, { trustedAppKeys: trusted });
  const [alice, carol, bob] = await Promise.all(['bench-alice', 'bench-carol', 'bench-bob'].map((identity) => member(server, identity, trusted)));

  const conversationSid = `CH${randomBytes(16).toString('hex')}`;
  const store = await openStore({ dataDir: server.dataDir }); // the server's SQLite file (WAL: both processes may use it)
  const bodies: HistoryPostRequest[] = [];
  const messages: BaseMessage[] = [];
  const started = Date.now();
  try {
    const now = Date.now();
    await store.createConversation({ sid: conversationSid, uniqueName: null, friendlyName: null, attributes: '{}', createdBy: alice!.identity, dateCreatedMs: now });
    for (const m of [alice!, carol!, bob!]) {
      await store.addParticipant({ sid: `MB${randomBytes(16).toString('hex')}`, conversationSid, identity: m.identity, dateCreatedMs: now });
    }
    for (let i = 0; i < count; i++) {
      const sealed = sealEnvelope({
        sender: { cardId: alice!.card.id, signSecretKey: alice!.keys.signSecretKey },
        recipients: [alice!.card, carol!.card],
        conversationSid,
        body: messageBody(bodyChars),
      });
      const stored = await store.appendMessage({ sid: `IM${randomBytes(16).toString('hex')}`, conversationSid, author: alice!.identity, body: sealed.text, attributes: '{}', dateCreatedMs: now });
      bodies.push({
        conversationSid,
        messageSid: stored.sid,
        index: stored.index,
        envelope: sealed.text,
        orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), orgCard.boxPublicKey),
      });
      messages.push({
        sid: stored.sid,
        index: stored.index,
        author: stored.author,
        body: stored.body,
        attributes: {},
        dateCreated: new Date(stored.dateCreatedMs),
        dateUpdated: null,
        conversation: { sid: conversationSid },
        updateBody: async () => undefined,
      });
    }
  } finally {
    await store.close();
  }
  const appended = Date.now();
  await inParallel(bodies, 4, async (body) => {
    const { status, json } = await api(server, 'POST', ApiPath.history, alice!.token, body);
    if (status !== 201) throw new Error(`history backup: ${status} ${JSON.stringify(json)}`);
  });
  const seedMs = { sealAndAppend: appended - started, backups: Date.now() - appended };
  return { conversationSid, appPublicKey: appKey.publicKey, messages, sender: alice!, reader: bob!, seedMs };
}

function historyPath(fixture: HistoryFixture, after: number): string {
  return `${ApiPath.historyOf(fixture.conversationSid)}?cardId=${fixture.reader.card.id}&after=${after}&limit=${HISTORY_PAGE}`;
}

export interface HistoryRewrapResult extends LoadResult {
  messagesPerPage: number;
  rewrapsPerSec: number;
  connections: number;
}

/** GET /v1/history pages of 500 for the reader, the two pages of the conversation in turn. */
export async function benchHistoryRewrap(server: BenchServer, fixture: HistoryFixture, plan: ServerPlan, connections: number): Promise<HistoryRewrapResult> {
  const pages = Math.ceil(fixture.messages.length / HISTORY_PAGE);
  const requests: AutocannonRequest[] = Array.from({ length: pages }, (_, p) => ({
    method: 'GET',
    path: historyPath(fixture, p * HISTORY_PAGE - 1),
    headers: { authorization: `Bearer ${fixture.reader.token}` },
  }));
  const check = await api<HistoryResponse>(server, 'GET', requests[0]!.path!, fixture.reader.token);
  if (check.status !== 200 || check.json.messages.length !== HISTORY_PAGE) throw new Error(`history check: ${check.status}, ${check.json.messages?.length} messages`);
  await load({ url: server.appUrl, connections, duration: plan.warmupSeconds, requests }, plan.warmupSeconds + 60);
  const result = requireClean('history reads', await load({ url: server.appUrl, connections, duration: plan.seconds, requests }, plan.seconds + 60, server));
  return { ...result, messagesPerPage: HISTORY_PAGE, rewrapsPerSec: round(result.perSec * HISTORY_PAGE), connections };
}

export interface HistoryPageResult {
  messages: number;
  /** Opening (unwrap, commitment, decrypt, verify) every message of the page, once its rewraps are here. */
  ms: number;
  msPerMessage: number;
  /** Fetching the rewraps for the page: GET /v1/history, pages of 500 (the server's share of the work). */
  fetchMs: number;
  runs: number;
  msIqr: [number, number];
}

/**
 * The reader's client opening the conversation's history: MessageCrypto.open for every message,
 * its rewrap fetched once by HistoryRewraps.prefetch as the wrapper does before a page.
 */
export async function benchHistoryPage(server: BenchServer, fixture: HistoryFixture, runs: number): Promise<HistoryPageResult> {
  const { reader, conversationSid, messages } = fixture;
  const client = new ApiClient(server.appUrl, () => reader.token);
  const keyStore = new MemoryKeyStore();
  const trust = new DirectoryTrust(client, keyStore, reader.identity, {}, () => undefined, () => reader.card.id);
  const directory = new CardDirectory(client, [fixture.appPublicKey], keyStore, reader.identity, { keyChange() {}, cardRejected() {} }, trust.cards);
  const crypto = new MessageCrypto(reader.identity, asyncDeviceKeys(reader.keys), reader.card, directory, new ReplayMemory(keyStore, reader.identity));
  const rewraps = new HistoryRewraps(client, () => reader.card.id, (parsed) => !crypto.hasSlot(parsed));
  crypto.rewraps = rewraps;

  const fetchMs = await timeMsAsync(() => rewraps.prefetch(conversationSid, messages));
  const openAll = async () => {
    let verified = 0;
    for (const message of messages) {
      const opened = await crypto.open(conversationSid, message);
      if (opened.e2ee.status === 'verified' && opened.e2ee.via === 'history') verified++;
    }
    return verified;
  };
  const verified = await openAll(); // warm-up; also fetches the sender's card once
  if (verified !== messages.length) throw new Error(`history page: only ${verified} of ${messages.length} messages verified`);
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(await timeMsAsync(openAll));
  const s = summarize(samples);
  return {
    messages: messages.length,
    ms: round(s.median),
    msPerMessage: round(s.median / messages.length),
    fetchMs: round(fetchMs),
    runs,
    msIqr: [round(s.p25), round(s.p75)],
  };
}
