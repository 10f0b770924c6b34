/**
 * A seeded world for the long tests (npm run test:long), on a server process
 * (test/support/server-process.ts):
 * - identities with cards registered through POST /v1/cards, conversations on the local relay,
 *   and messages sealed by the shared core and sent through the relay, whose backups (envelope +
 *   orgWrap for the served OrgCard) are valid, distinct history posts;
 * - reading back what the store holds, and writing the figures to test/long/results/.
 * Everything talks to the real server over loopback; nothing of ours is mocked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LocalConversationsClient } from '../../client/node.js';
import type { Store } from '../../server/store/types.js';
import {
  ApiPath,
  appKeyFromB64u,
  createCardRequest,
  createRewrap,
  generateDeviceKeys,
  parseEnvelope,
  ready,
  sealEnvelope,
  toB64u,
  trustAppKeys,
  verifyCard,
  type DeviceKeys,
  type HistoryPostRequest,
  type TrustedAppKey,
  type VerifiedCard,
} from '../../shared/index.js';
import { inParallel } from './concurrency.js';
import { TEST_APP_KEY } from './env.js';

export const RESULTS_DIR = fileURLToPath(new URL('../long/results/', import.meta.url));

await ready();
export const TRUSTED: TrustedAppKey[] = trustAppKeys([toB64u(appKeyFromB64u(TEST_APP_KEY).publicKey)]);

export interface Identity {
  name: string;
  /** `Bearer <demo session token>` */
  authorization: string;
  keys: DeviceKeys;
  card: VerifiedCard;
}

export interface Conversation {
  sid: string;
  members: Identity[];
}

export interface World {
  identities: Identity[];
  conversations: Conversation[];
  orgCard: VerifiedCard;
}

/** A history post ready to send: who sends it, and the body. */
export interface Post {
  authorization: string;
  body: HistoryPostRequest;
  /** "conversationSid/messageSid": what the store must hold once the post was acknowledged. */
  key: string;
}

async function json<T>(url: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

async function identity(url: string, name: string): Promise<Identity> {
  const { token } = await json<{ token: string }>(url + ApiPath.session, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ identity: name }),
  });
  const authorization = `Bearer ${token}`;
  const keys = generateDeviceKeys();
  const wire = await json<unknown>(url + ApiPath.cards, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(createCardRequest(keys, { identity: name, deviceId: 'load', deviceName: 'load generator' })),
  });
  return { name, authorization, keys, card: verifyCard(wire, { trustedAppKeys: TRUSTED, identity: name }) };
}

async function relayClient(url: string, who: Identity): Promise<LocalConversationsClient> {
  const token = await json<{ mode: string; token: string; relayUrl?: string }>(url + ApiPath.twilioToken, { headers: { authorization: who.authorization } });
  if (token.mode !== 'local' || !token.relayUrl) throw new Error(`expected local mode, got ${token.mode}`);
  return LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token });
}

/**
 * Identities `prefix-0..n-1` with one registered card each, and `conversationCount` relay
 * conversations of `membersPerConversation` consecutive identities, created by the first member.
 */
export async function createWorld(url: string, options: { prefix: string; identities: number; conversations: number; membersPerConversation: number }): Promise<World> {
  await ready();
  const identities = await Promise.all(Array.from({ length: options.identities }, (_, i) => identity(url, `${options.prefix}-${i}`)));
  const orgCard = verifyCard(await json<unknown>(url + ApiPath.orgCard), { trustedAppKeys: TRUSTED });
  const conversations: Conversation[] = [];
  const creators = new Map<string, LocalConversationsClient>();
  try {
    for (let c = 0; c < options.conversations; c++) {
      const members = Array.from({ length: options.membersPerConversation }, (_, k) => identities[(c + k) % identities.length]!);
      const creator = members[0]!;
      let client = creators.get(creator.name);
      if (!client) creators.set(creator.name, (client = await relayClient(url, creator)));
      const conversation = await client.createConversation({ friendlyName: `load ${c}` });
      await conversation.join();
      for (const member of members.slice(1)) await conversation.add(member.name);
      conversations.push({ sid: conversation.sid, members });
    }
  } finally {
    for (const client of creators.values()) await client.shutdown();
  }
  return { identities, conversations, orgCard };
}

/**
 * Sends `perConversation` messages into every conversation through the relay, each sealed by its
 * author for every member's card, and returns their backups as history posts (not posted).
 * Authors take turns; each author's requests are pipelined on its relay connection. `bodyChars`
 * pads each plaintext to that length (bigger envelopes).
 */
export async function seedMessages(url: string, world: World, perConversation: number, options: { bodyChars?: number } = {}): Promise<Post[]> {
  const clients = new Map<string, LocalConversationsClient>();
  try {
    for (const who of world.identities) clients.set(who.name, await relayClient(url, who));
    const posts: Post[][] = world.conversations.map(() => []);
    await inParallel(world.conversations, world.conversations.length, async (conversation, c) => {
      const PIPELINE = 16;
      for (let start = 0; start < perConversation; start += PIPELINE) {
        const batch = Array.from({ length: Math.min(PIPELINE, perConversation - start) }, (_, k) => start + k);
        const sent = await Promise.all(
          batch.map(async (m) => {
            const author = conversation.members[m % conversation.members.length]!;
            const sealed = sealEnvelope({
              sender: { cardId: author.card.id, signSecretKey: author.keys.signSecretKey },
              recipients: conversation.members.map((member) => member.card),
              conversationSid: conversation.sid,
              body: `load message ${m} in ${conversation.sid} from ${author.name}`.padEnd(options.bodyChars ?? 0, '.'),
            });
            const message = await clients.get(author.name)!.request('sendMessage', { conversationSid: conversation.sid, body: sealed.text });
            const orgWrap = createRewrap(sealed.cek, parseEnvelope(sealed.text), world.orgCard.boxPublicKey);
            const body: HistoryPostRequest = { conversationSid: conversation.sid, messageSid: message.sid, index: message.index, envelope: sealed.text, orgWrap };
            return { authorization: author.authorization, body, key: `${conversation.sid}/${message.sid}` };
          }),
        );
        posts[c]!.push(...sent);
      }
    });
    // Interleave the conversations, so that consecutive posts go to different ones.
    const out: Post[] = [];
    for (let i = 0; i < perConversation; i++) for (const list of posts) out.push(list[i]!);
    return out;
  } finally {
    for (const client of clients.values()) await client.shutdown();
  }
}

/** POST /v1/history; resolves with the status, rejects on a network error or timeout. */
export async function postHistory(url: string, post: Post, timeoutMs = 30_000): Promise<number> {
  const response = await fetch(url + ApiPath.history, {
    method: 'POST',
    headers: { authorization: post.authorization, 'content-type': 'application/json' },
    body: JSON.stringify(post.body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Every "conversationSid/messageSid" the store's history holds for these conversations. */
export async function storedKeys(store: Store, conversationSids: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const sid of conversationSids) {
    let after = -1;
    for (let page = 0; page < 100_000; page++) {
      const records = await store.history(sid, after, 500);
      for (const r of records) keys.add(`${r.conversationSid}/${r.messageSid}`);
      if (records.length < 500) break;
      after = records[records.length - 1]!.index;
    }
  }
  return keys;
}

/** Every "conversationSid/messageSid" the server's history API returns to `reader` (a member of each). */
export async function servedKeys(url: string, conversations: readonly Conversation[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const { sid, members } of conversations) {
    const reader = members[0]!;
    let after = -1;
    for (let page = 0; page < 100_000; page++) {
      const query = `cardId=${reader.card.id}&after=${after}&limit=500`;
      const { messages } = await json<{ messages: Array<{ messageSid: string; index: number }> }>(`${url}${ApiPath.historyOf(sid)}?${query}`, {
        headers: { authorization: reader.authorization },
      });
      for (const m of messages) keys.add(`${sid}/${m.messageSid}`);
      if (messages.length < 500) break;
      after = messages[messages.length - 1]!.index;
    }
  }
  return keys;
}

/** Writes `test/long/results/<name>.json` (gitignored) and returns its path. */
export function writeResult(name: string, result: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = `${RESULTS_DIR}${name}.json`;
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

/** Percentile (0..100) of unsorted samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
