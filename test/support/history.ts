/**
 * Organization history fixtures: a real server (real config loader, plugin, crypto, and a SQLite
 * store in a temporary directory) driven with app.inject; devices whose cards are registered
 * through POST /v1/cards; envelopes, backups and history reads made by the shared core exactly
 * as a client makes them. Nothing of ours is mocked.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import type { RelayMessage, Store } from '../../server/store/types.js';
import {
  ApiPath,
  createRewrap,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
  toB64u,
  trustAppKeys,
  verifyCard,
  type CardWire,
  type DeviceKeys,
  type EnvelopeOpener,
  type EnvelopeSender,
  type HistoryMessage,
  type HistoryPostRequest,
  type SealedEnvelope,
  type TrustedAppKey,
  type VerifiedCard,
} from '../../shared/index.js';
import { bearer, newDevice, postCard, type ServerApp, type TestUser } from './app.js';
import { RATE_LIMITS_OFF } from './env.js';
import { signJwt } from './jwt.js';

export interface HistoryServer extends ServerApp {
  /** The served OrgCard, verified against the AppKey; null when history is disabled. */
  orgCard: VerifiedCard | null;
  /** The AppKey as a client pins it. */
  trusted: TrustedAppKey[];
  close(): Promise<void>;
}

/**
 * A server on the embedded SQLite store in a fresh temporary directory. With no `env` it is the
 * local demo (keys generated into that directory); rate limits are off (their own tests turn them on).
 */
export async function historyServer(env: Record<string, string | undefined> = {}): Promise<HistoryServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'e2ee-history-'));
  const config = await loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...RATE_LIMITS_OFF,
    ...env,
  });
  const store = await openStore({ dataDir });
  const app = await buildApp({ config, store, logger: false });
  await app.ready();
  const trusted = trustAppKeys([toB64u(config.appKey.publicKey)]);
  const served = await app.inject({ url: ApiPath.orgCard });
  const orgCard = served.statusCode === 200 ? verifyCard(served.json(), { trustedAppKeys: trusted }) : null;
  return {
    app,
    config,
    store,
    orgCard,
    trusted,
    async close() {
      await app.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A user with an app token signed by the team's identity provider (HS256 with AUTH_JWT_SECRET). */
export function tokenUser(identity: string, secret: string): TestUser {
  const token = signJwt({ sub: identity }, 'HS256', secret);
  return { identity, token, headers: bearer(token) };
}

/** A user's device with a registered card: what it needs to seal, and to open rewraps. */
export interface Member extends TestUser {
  keys: DeviceKeys;
  card: VerifiedCard;
  sender: EnvelopeSender;
  opener: EnvelopeOpener;
}

/** Registers a new device of `user` through POST /v1/cards. */
export async function withDevice(server: Pick<HistoryServer, 'app' | 'trusted'>, user: TestUser): Promise<Member> {
  const device = await newDevice(user.identity);
  const res = await postCard(server.app, user, device.request);
  expect(res.statusCode, res.body).toBe(201);
  const card = verifyCard(res.json<CardWire>(), { trustedAppKeys: server.trusted, identity: user.identity });
  return {
    ...user,
    keys: device.keys,
    card,
    sender: { cardId: card.id, signSecretKey: device.keys.signSecretKey },
    opener: { cardId: card.id, boxSecretKey: device.keys.boxSecretKey, boxPublicKey: device.keys.boxPublicKey },
  };
}

/** Seals `body` from `from`'s device for its own card and the given members' cards. */
export function seal(from: Member, conversationSid: string, body: string, to: readonly Member[] = []): SealedEnvelope {
  return sealEnvelope({ sender: from.sender, recipients: [from.card, ...to.map((m) => m.card)], conversationSid, body });
}

/** The orgWrap a client makes: the message's CEK rewrapped to the OrgCard's box key. */
export function orgWrapFor(sealed: SealedEnvelope, orgCard: VerifiedCard): string {
  return createRewrap(sealed.cek, parseEnvelope(sealed.text), orgCard.boxPublicKey);
}

/** The history webhook body for a message the conversation holds. */
export function backupOf(
  message: { sid: string; index: number },
  conversationSid: string,
  sealed: SealedEnvelope,
  orgCard: VerifiedCard,
): HistoryPostRequest {
  return { conversationSid, messageSid: message.sid, index: message.index, envelope: sealed.text, orgWrap: orgWrapFor(sealed, orgCard) };
}

/** POST /v1/history with `body` as JSON (whatever it is), as `user` (null: no Authorization header). */
export function postHistory(app: FastifyInstance, user: { headers: Record<string, string> } | null, body: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: ApiPath.history, headers: { 'content-type': 'application/json', ...user?.headers }, payload: JSON.stringify(body) });
}

export function readHistory(
  app: FastifyInstance,
  user: { headers: Record<string, string> },
  conversationSid: string,
  query: Record<string, string | number>,
): Promise<LightMyRequestResponse> {
  const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  return app.inject({ url: `${ApiPath.historyOf(conversationSid)}?${search}`, headers: user.headers });
}

/**
 * Opens each history message the way a client does: through its rewrap for `reader`'s card,
 * checking the commitment and the ORIGINAL sender's signature (the card looked up by the id the
 * envelope names), the conversation and the author. Returns the bodies in order.
 */
export function openHistory(messages: readonly HistoryMessage[], reader: Member, conversationSid: string, senderCards: readonly VerifiedCard[]): string[] {
  return messages.map((m) => {
    const senderCard = senderCards.find((c) => c.id === parseEnvelope(m.envelope).senderCardId);
    if (!senderCard) throw new Error(`message ${m.messageSid} names a sender card the test does not know`);
    return openEnvelope(m.envelope, { recipient: reader.opener, rewrap: m.rewrap, senderCard, conversationSid, author: m.author }).payload.body;
  });
}

const sid = (prefix: string): string => `${prefix}${randomBytes(16).toString('hex')}`;

/** A conversation in the local relay's store with these participants. */
export async function localConversation(store: Store, identities: readonly string[]): Promise<string> {
  const conversationSid = sid('CH');
  await store.createConversation({ sid: conversationSid, uniqueName: null, friendlyName: null, attributes: '{}', createdBy: identities[0] ?? 'system', dateCreatedMs: Date.now() });
  for (const identity of identities) await joinLocal(store, conversationSid, identity);
  return conversationSid;
}

/** Adds a participant to a local conversation (someone who joins later). */
export async function joinLocal(store: Store, conversationSid: string, identity: string): Promise<void> {
  await store.addParticipant({ sid: sid('MB'), conversationSid, identity, dateCreatedMs: Date.now() });
}

/** A message as the local relay stores it when `author` sends `body` (at `dateCreatedMs`, default now). */
export function localMessage(store: Store, conversationSid: string, author: string, body: string, dateCreatedMs = Date.now()): Promise<RelayMessage> {
  return store.appendMessage({ sid: sid('IM'), conversationSid, author, body, attributes: '{}', dateCreatedMs });
}
