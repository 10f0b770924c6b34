/**
 * Shared pieces of the long tests (npm run test:long):
 * - the standalone server as a child process (server/main.ts through tsx, as `npm start` runs
 *   it), so the load generator and the server do not share an event loop;
 * - a seeded world: identities with cards registered through POST /v1/cards, conversations on
 *   the local relay, and messages sealed by the shared core and sent through the relay, whose
 *   backups (envelope + orgWrap for the served OrgCard) are valid, distinct history posts;
 * - reading back what the store holds, and writing the figures to test/long/results/.
 * Everything talks to the real server over loopback; nothing of ours is mocked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LocalConversationsClient } from '../../client/local/relay-client.js';
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
  seedToB64u,
  toB64u,
  trustAppKeys,
  verifyCard,
  type DeviceKeys,
  type HistoryPostRequest,
  type TrustedAppKey,
  type VerifiedCard,
} from '../../shared/index.js';

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** One AppKey and OrgKey per test process: every server process of a test shares them. */
export const KEYS = { APP_KEY: seedToB64u(randomBytes(32)), ORG_KEY: seedToB64u(randomBytes(32)) };

/** The environment of a server process: demo sessions, explicit keys, rate limits off, no web client. */
export function serverEnv(extra: Record<string, string>): Record<string, string> {
  return {
    ...KEYS,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_SESSION: '0',
    RATE_LIMIT_CARD_REGISTRATION: '0',
    RATE_LIMIT_LOOKUP: '0',
    RATE_LIMIT_HISTORY_READ: '0',
    RATE_LIMIT_HISTORY_BACKUP: '0',
    RATE_LIMIT_RELAY: '0',
    SERVE_DEMO: 'false',
    ...extra,
  };
}

export interface ServerChild {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  child: ChildProcess;
  /** The last 64 KB the process wrote (stdout and stderr). */
  output(): string;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
}

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
// tsx as a loader of this node: signals (SIGKILL included) reach the server itself, not a wrapper.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts server/main.ts in a child process (nothing inherited from this environment but PATH)
 * on `port` (default a free one), and resolves once GET /healthz answers. At LOG_LEVEL=warn the
 * server does not log its address, so readiness is polled, at most `timeoutMs`.
 */
export async function startServerProcess(extra: Record<string, string>, port?: number, timeoutMs = 60_000): Promise<ServerChild> {
  const listenOn = port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', ...serverEnv(extra), PORT: String(listenOn), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-65_536);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: ServerChild = { url: `http://127.0.0.1:${listenOn}`, port: listenOn, child, output: () => text, exited };
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited while starting:\n${text}`);
    try {
      const response = await fetch(server.url + ApiPath.healthz, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || attempt > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`server did not become healthy within ${timeoutMs} ms:\n${text}`);
    }
    await sleep(100);
  }
}

/** Kills a server process with `signal` and waits for it to exit. */
export async function killServerProcess(server: ServerChild, signal: NodeJS.Signals): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill(signal);
  await server.exited;
}

/** Stops a server process if it still runs: SIGTERM (graceful), SIGKILL after 15 s. */
export async function stopServerProcess(server: ServerChild | null | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  try {
    await killServerProcess(server, 'SIGTERM');
  } finally {
    clearTimeout(timer);
  }
}

await ready();
export const TRUSTED: TrustedAppKey[] = trustAppKeys([toB64u(appKeyFromB64u(KEYS.APP_KEY).publicKey)]);

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

/** Runs `work` on every item with at most `limit` at a time. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
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

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
