/**
 * A lying card directory, scripted against the real server and store (issue 16): devices pinned
 * to the server's LogKey with their alerts recorded, a conversation of two, a rogue card
 * countersigned with the service's own AppKey and registered in the store (so logged), a `fetch`
 * that rewrites the service's answers to one client, and a raw sender that seals with the shared
 * core for whatever recipients a test names (a compromised or outdated client).
 */
import type { Client, Conversation } from '@twilio/conversations';
import type { BaseClient, BaseConversation, BaseMessage, BasePaginator } from '../../client/conversations.js';
import { LocalConversationsClient, MemoryKeyStore, type DirectoryAlert, type E2EEClient, type E2EEClientOptions } from '../../client/node.js';
import type { FetchLike } from '../../client/api-client.js';
import { loadConfig, type Config } from '../../server/config.js';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../../server/limits.js';
import type { Store } from '../../server/store/types.js';
import { ApiPath, countersignCard, createCardRequest, generateDeviceKeys, parseCardRequest, sealEnvelope, verifyCard, trustAppKeys, type CardWire, type DeviceKeys, type VerifiedCard } from '../../shared/index.js';
import { nextEvents } from './concurrency.js';
import { relayToken } from './local-relay.js';
import { device, type LoopbackServer } from './loopback-server.js';

export interface Pinned {
  client: E2EEClient;
  alerts: DirectoryAlert[];
}

export class DirectoryScript {
  readonly chats: Client[] = [];
  private n = 0;

  private constructor(
    readonly server: LoopbackServer,
    readonly config: Config,
  ) {}

  static async on(server: LoopbackServer): Promise<DirectoryScript> {
    return new DirectoryScript(server, await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' }));
  }

  /** A unique name for this run. */
  name(prefix: string): string {
    return `${prefix}-${++this.n}-${Date.now().toString(36)}`;
  }

  /** A device pinned to the server's LogKey, its alerts recorded. */
  async pinned(identity: string, options: Partial<E2EEClientOptions> = {}): Promise<Pinned> {
    const client = await device(this.server, identity, { log: { key: this.config.log.verifierKey }, cardCacheTtlMs: 0, ...options });
    const alerts: DirectoryAlert[] = [];
    client.on('directoryAlert', (a) => alerts.push(a));
    return { client, alerts };
  }

  async connect(client: E2EEClient): Promise<Client> {
    const chat = await client.connect();
    this.chats.push(chat);
    return chat;
  }

  /** Alice and bob registered, connected, in one conversation (alice's object, and bob's). */
  async pair(aliceOptions: Partial<E2EEClientOptions> = {}, bobOptions: Partial<E2EEClientOptions> = {}) {
    const alice = await this.pinned(this.name('alice'), aliceOptions);
    const bob = await this.pinned(this.name('bob'), bobOptions);
    const [aliceChat, bobChat] = [await this.connect(alice.client), await this.connect(bob.client)];
    const conversation = await aliceChat.createConversation();
    await conversation.join();
    const added = nextEvents<Conversation>(bobChat, 'conversationAdded');
    await conversation.add(bob.client.identity);
    const bobConversation = (await added)[0]!;
    return { alice, bob, aliceChat, bobChat, conversation, bobConversation };
  }

  /** A card for `identity` no device of it made, countersigned with the service's AppKey and registered in the store (so logged). */
  rogueCard(identity: string): Promise<CardWire> {
    return registerRogueCard(this.server.store, this.config, identity);
  }

  /** A user whose device seals with the shared core for the recipients the test names, and sends the text as is. */
  async rawSender(identity: string): Promise<RawSender> {
    const keys = generateDeviceKeys();
    const authorization = `Bearer ${await this.server.session(identity)}`;
    const request = createCardRequest(keys, { identity, deviceId: 'raw', deviceName: 'raw sender' });
    const response = await fetch(this.server.url + ApiPath.cards, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(request) });
    const wire = (await response.json()) as CardWire;
    const card = verifyCard(wire, { trustedAppKeys: trustAppKeys([this.server.appPublicKey]), identity });
    const token = await relayToken(this.server, identity);
    const relay = await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token });
    return new RawSender(identity, keys, card, relay);
  }
}

export class RawSender {
  constructor(
    readonly identity: string,
    readonly keys: DeviceKeys,
    readonly card: VerifiedCard,
    readonly relay: LocalConversationsClient,
  ) {}

  /** Seals `body` for exactly `recipients` (id and box key each) and posts it to the conversation. */
  async send(conversationSid: string, body: string, recipients: ReadonlyArray<{ id: string; boxPublicKey: Uint8Array }>): Promise<void> {
    const sealed = sealEnvelope({ sender: { cardId: this.card.id, signSecretKey: this.keys.signSecretKey }, recipients, conversationSid, body, content: { attributes: {} } });
    const conversation = await this.relay.getConversationBySid(conversationSid);
    await conversation.sendMessage(sealed.text);
  }
}

/**
 * Attack 1's card: for `identity`, made by no device of it, countersigned with the service's own
 * AppKey and registered through the store (so it is logged, like any card the service makes).
 */
export async function registerRogueCard(store: Store, config: Config, identity: string): Promise<CardWire> {
  const card = parseCardRequest(createCardRequest(generateDeviceKeys(), { identity, deviceId: 'rogue', deviceName: 'new phone' }));
  const wire = countersignCard(card, config.appKey);
  const now = Math.floor(Date.now() / 1000);
  const { signKey, boxKey, deviceId, createdAt } = card.fields;
  await store.registerCard({ ...wire, identity, deviceId, signKey, boxKey, createdAt, registeredAt: now, revokedAt: null }, { maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY, now });
  return wire;
}

/** A forged answer with its own status (a plain string keeps the real answer's status). */
export interface Answer {
  status: number;
  body: string;
}

/** A `fetch` that hands each answer of the real service to `rewrite` (path with query, body) first. */
export function scripted(rewrite: (path: string, body: string) => string | Answer | Promise<string | Answer>): FetchLike {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(input);
    const answer = await rewrite(url.pathname + url.search, await res.text());
    const { status, body } = typeof answer === 'string' ? { status: res.status, body: answer } : answer;
    const type = body.startsWith('{') ? 'application/json' : (res.headers.get('content-type') ?? 'text/plain; charset=utf-8');
    return new Response(body, { status, headers: { 'content-type': type } });
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

/**
 * The conversations service (Twilio's stand-in) withholding from one client the new messages
 * `withhold` picks: everything else is the real relay client's.
 */
export class WithholdingService implements BaseClient {
  private readonly added = new Set<AnyListener>();

  private constructor(
    private readonly inner: LocalConversationsClient,
    withhold: (message: BaseMessage) => boolean,
  ) {
    inner.on('messageAdded', (message: BaseMessage) => {
      if (!withhold(message)) for (const listener of [...this.added]) listener(message);
    });
  }

  static async for(client: E2EEClient, withhold: (message: BaseMessage) => boolean): Promise<WithholdingService> {
    const token = await client.api.twilioToken();
    if (token.mode !== 'local') throw new Error(`expected local mode, got ${token.mode}`);
    return new WithholdingService(await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token }), withhold);
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
  createConversation(options?: Parameters<BaseClient['createConversation']>[0]): Promise<BaseConversation> {
    return this.inner.createConversation(options);
  }
  getConversationBySid(sid: string): Promise<BaseConversation> {
    return this.inner.getConversationBySid(sid);
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

export const alertsOf = (alerts: readonly DirectoryAlert[], kind: DirectoryAlert['kind']) => alerts.filter((a) => a.kind === kind);

export { MemoryKeyStore };
