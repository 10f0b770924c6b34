/**
 * No secret in any log line (issue #8), at LOG_LEVEL=trace, across the whole server surface:
 * a complete realistic session in local demo mode through the real client (sessions, app and
 * relay tokens, card registration, lookups, revocation, relay chat with edits, history backups
 * from the outbox, history reads by a support agent added later, safety numbers) and in Twilio
 * mode through the HTTP API (Twilio access tokens, history with Twilio's REST API served by nock,
 * the pre-event webhook with X-Twilio-Signature), plus failures that carry secrets: bad and
 * tampered tokens, tokens in query strings, malformed bodies, a malformed HTTP request with an
 * Authorization header, a relay login with a wrong token, a 500.
 *
 * Every value the run handled that must stay secret is collected, in every encoding the server
 * could write it in (as sent, b64u, base64, hex): app JWTs, relay tokens, Twilio access tokens,
 * Authorization header values, X-Twilio-Signature values, the APP_KEY and ORG_KEY seeds and their
 * secret keys and derived secrets, the identity provider's secret, the Twilio API secret and auth
 * token, device secrets, every message's content key (CEK), and every plaintext body. Then every
 * log line is scanned for each.
 */
import type { Client, Message } from '@twilio/conversations';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';
import twilio from 'twilio';
import { afterAll, describe, expect, it } from 'vitest';
import { E2EEClient, MemoryKeyStore } from '../../client/node.js';
import { relayTokenSecret } from '../../server/relay-token.js';
import { DEMO_SESSION_SECRET_LABEL, RELAY_TOKEN_SECRET_LABEL, deriveAppSecret } from '../../server/secrets.js';
import {
  ApiPath,
  appKeyFromB64u,
  deviceKeysFromSecrets,
  fromB64u,
  openRewrap,
  orgKeyFromB64u,
  parseEnvelope,
  toB64u,
  trustAppKeys,
  unwrapContentKey,
  verifyCard,
  type AppKey,
  type OrgKey,
} from '../../shared/index.js';
import { newDevice } from '../support/app.js';
import { backupOf, seal, tokenUser, withDevice, type HistoryServer } from '../support/history.js';
import { rawRequest } from '../support/raw-http.js';
import { RelaySocket } from '../support/relay-socket.js';
import { baseUrl, captureLog, securityServer, type CapturedLog } from '../support/security.js';
import { JWT_SECRET, PUBLIC_URL, TWILIO, messageFetch, newSid, participantsList, twilioEnv } from '../support/twilio.js';

/** label → value; each value must appear in no log line. */
const secrets = new Map<string, string>();

/** Records a secret string (and, for JWT-like tokens, the signature part alone). */
function secret(label: string, value: string): string {
  if (value.length < 8) throw new Error(`secret "${label}" is too short to scan for reliably`);
  secrets.set(`${label}: ${value.slice(0, 12)}…`, value);
  const parts = value.replace(/^Bearer /, '').split('.');
  if (parts.length === 3 && parts[2]!.length >= 16) secrets.set(`${label} (signature part)`, parts[2]!);
  if (value.startsWith('Bearer ')) secrets.set(`${label} (token)`, value.slice(7));
  return value;
}

/** Records secret bytes in every encoding the server could write them in. */
function secretBytes(label: string, bytes: Uint8Array): void {
  const b = Buffer.from(bytes);
  secret(`${label} (b64u)`, b.toString('base64url'));
  secret(`${label} (base64)`, b.toString('base64'));
  secret(`${label} (hex)`, b.toString('hex'));
}

function keySecrets(appKey: AppKey, orgKey: OrgKey | null): void {
  secretBytes('AppKey seed', appKey.seed);
  secretBytes('AppKey secret key', appKey.secretKey);
  secretBytes('demo session secret', deriveAppSecret(appKey, DEMO_SESSION_SECRET_LABEL));
  secretBytes('relay token secret', deriveAppSecret(appKey, RELAY_TOKEN_SECRET_LABEL));
  if (orgKey) {
    secretBytes('OrgKey seed', orgKey.seed);
    secretBytes('OrgKey sign secret key', orgKey.keys.signSecretKey);
    secretBytes('OrgKey box secret key', orgKey.keys.boxSecretKey);
  }
}

/** A fetch that records every Authorization header sent and every token received. */
function recordingFetch(): (input: string, init?: RequestInit) => Promise<Response> {
  return async (input, init) => {
    const auth = new Headers(init?.headers).get('authorization');
    if (auth) secret('Authorization header (client)', auth);
    const res = await fetch(input, init);
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      const body = (await res.clone().json().catch(() => null)) as { token?: unknown } | null;
      if (typeof body?.token === 'string') secret(`token from ${new URL(input).pathname}`, body.token);
    }
    return res;
  };
}

const logs: { mode: string; log: CapturedLog }[] = [];
const plaintexts: string[] = [];
const plaintext = (text: string): string => {
  const unique = `${text} ${randomBytes(6).toString('hex')}`;
  plaintexts.push(unique);
  secrets.set(`plaintext "${text}"`, unique);
  return unique;
};

async function nextMessage(chat: Client): Promise<Message> {
  return new Promise((resolve) => {
    const listener = (m: Message) => {
      chat.off('messageAdded', listener);
      resolve(m);
    };
    chat.on('messageAdded', listener);
  });
}

async function waitFor(predicate: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('LOG_LEVEL=trace: a complete session logs no secret', () => {
  afterAll(() => {
    let lines = 0;
    for (const { mode, log } of logs) {
      lines += log.lines.length;
      console.info(`[security] ${mode}: ${log.lines.length} log lines at trace level`);
    }
    console.info(`[security] secrets in logs: ${lines} lines scanned for ${secrets.size} secret values; found: 0`);
  });

  it('local demo mode: the real client through sessions, cards, relay chat, edits, backups, history reads and failures', { timeout: 60_000 }, async () => {
    const log = captureLog();
    logs.push({ mode: 'local demo mode', log });
    // Checkpoints every 100 ms (the security suite's servers publish none by timer): clients use a card only once a checkpoint includes it.
    const server = await securityServer({ env: { LOG_CHECKPOINT_INTERVAL_MS: '100' }, log: { level: 'trace', stream: log.stream }, listen: true });
    const url = baseUrl(server.app);
    const port = Number(new URL(url).port);
    const keyStores = new Map<string, MemoryKeyStore>();
    const clients: E2EEClient[] = [];
    const chats: Client[] = [];
    try {
      const keys = JSON.parse(readFileSync(join(server.dataDir, 'keys.json'), 'utf8')) as { appKey: string; orgKey: string };
      secret('APP_KEY (keys.json)', keys.appKey);
      secret('ORG_KEY (keys.json)', keys.orgKey);
      secretBytes('LogKey seed (log-key.json)', fromB64u((JSON.parse(readFileSync(join(server.dataDir, 'log-key.json'), 'utf8')) as { logKey: string }).logKey));
      keySecrets(appKeyFromB64u(keys.appKey), orgKeyFromB64u(keys.orgKey));
      secretBytes('relay token secret (as used)', relayTokenSecret(server.config.appKey));

      const appPublicKey = toB64u(server.config.appKey.publicKey);
      const device = async (identity: string, name: string, backup: 'send' | 'send+receive' = 'send') => {
        const res = await fetch(`${url}${ApiPath.session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity }) });
        const token = secret(`app JWT of ${identity}`, ((await res.json()) as { token: string }).token);
        const keyStore = new MemoryKeyStore();
        keyStores.set(`${identity}/${name}`, keyStore);
        const client = await E2EEClient.create({ serverUrl: url, getAuthToken: () => token, appPublicKeys: [appPublicKey], keyStore, deviceName: name, fetch: recordingFetch(), backup, cardCacheTtlMs: 0 });
        clients.push(client);
        await client.register();
        const chat = await client.connect();
        chats.push(chat);
        return { client, chat, token };
      };

      const alice = await device('alice', 'laptop');
      const alicePhone = await device('alice', 'phone');
      const bob = await device('bob', 'desktop', 'send+receive');
      const conversation = await alice.chat.createConversation({ friendlyName: 'plans' });
      await conversation.join();
      const bobAdded = new Promise((resolve) => bob.chat.once('conversationAdded', resolve));
      await conversation.add('bob');
      await bobAdded;
      const bobConversation = await bob.chat.getConversationBySid(conversation.sid);

      for (let i = 0; i < 3; i++) {
        const atBob = nextMessage(bob.chat);
        await conversation.sendMessage(plaintext(`alice says ${i}`));
        expect((await atBob).e2ee?.status).toBe('verified');
        const atAlice = nextMessage(alice.chat);
        await bobConversation.sendMessage(plaintext(`bob answers ${i}`), { mood: 'fine' });
        await atAlice;
      }
      const last = (await bobConversation.getMessages(1)).items[0]!; // bob's: only the author may edit
      await last.updateBody(plaintext('an edited body'));
      await waitFor(async () => (await Promise.all(clients.map((c) => c.pendingBackups()))).every((n) => n === 0), 'the outboxes to drain');

      // A support agent added later reads the earlier messages through history rewraps.
      const agent = await device('support-agent', 'desk');
      const agentAdded = new Promise((resolve) => agent.chat.once('conversationAdded', resolve));
      await conversation.add('support-agent');
      await agentAdded;
      const page = await (await agent.chat.getConversationBySid(conversation.sid)).getMessages(50);
      expect(page.items.filter((m) => m.e2ee?.via === 'history').length).toBeGreaterThan(0);
      expect(page.items.map((m) => m.body)).toContain(plaintexts[0]);

      // Devices, safety numbers, revocation.
      expect(await alice.client.safetyNumber('bob')).toMatch(/^\d{60}$/);
      await alice.client.revokeDevice(alicePhone.client.card!.id);
      expect((await alice.client.devices()).length).toBe(1);

      // Failures that carry secrets.
      const tampered = secret('tampered app JWT', `${alice.token.slice(0, -6)}AAAAAA`);
      await fetch(`${url}${ApiPath.twilioToken}`, { headers: { authorization: `Bearer ${tampered}` } });
      await fetch(`${url}/v1/nothing?token=${secret('token in a query string', 'query-token-value-0123456789')}`);
      await fetch(`${url}${ApiPath.twilioToken}?access_token=${alice.token}`, { headers: { authorization: `Bearer ${alice.token}` } });
      await fetch(`${url}${ApiPath.cards}`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' }, body: `{"snapshot":"${secret('a malformed body', 'broken-body-secret-0123456789')}"` });
      await fetch(`${url}${ApiPath.session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity: secret('an identity over the limit', 'x'.repeat(300)) }) });
      await fetch(`${url}/v1/cards/%zz`, { headers: { authorization: `Bearer ${alice.token}` } }); // refused by the router
      // Node's parser refuses this before any route; the raw bytes include the Authorization header.
      const overflow = await rawRequest(port, `GET /v1/app-key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(overflow.statusCode).toBe(431);
      const garbled = await rawRequest(port, `GET /v1/app-key HTTP/1.1\r\nAuthorization: Bearer ${alice.token}\r\nno colon\r\n\r\n`);
      expect(garbled.statusCode).toBe(400);
      // The relay: a wrong token, then a frame carrying a plaintext body to a conversation the sender is not in.
      const relayUrl = `${url.replace(/^http/, 'ws')}${ApiPath.relay}`;
      const socket = await RelaySocket.open(relayUrl);
      expect((await socket.request('auth', { token: secret('wrong relay token', `${alice.token.slice(0, -4)}AAAA`) })).ok).toBe(false);
      const malloryToken = (await (await fetch(`${url}${ApiPath.session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"identity":"mallory"}' })).json()) as { token: string };
      secret('app JWT of mallory', malloryToken.token);
      const malloryRelay = (await (await fetch(`${url}${ApiPath.twilioToken}`, { headers: { authorization: `Bearer ${malloryToken.token}` } })).json()) as { token: string };
      secret('relay token of mallory', malloryRelay.token);
      expect((await socket.request('auth', { token: malloryRelay.token })).ok).toBe(true);
      expect((await socket.request('sendMessage', { conversationSid: conversation.sid, body: plaintext('mallory tries to post') })).ok).toBe(false);
      await socket.close();

      // What the devices hold and what each message was encrypted with.
      for (const [name, keyStore] of keyStores) {
        const record = (await keyStore.loadDevice(name.split('/')[0]!))!;
        secretBytes(`${name} sign seed`, record.signSeed);
        secretBytes(`${name} box secret key`, record.boxSecretKey);
        secretBytes(`${name} sign secret key`, deviceKeysFromSecrets(record.signSeed, record.boxSecretKey).signSecretKey);
      }
      const orgKey = orgKeyFromB64u(keys.orgKey);
      const aliceRecord = (await keyStores.get('alice/laptop')!.loadDevice('alice'))!;
      const aliceKeys = deviceKeysFromSecrets(aliceRecord.signSeed, aliceRecord.boxSecretKey);
      let ceks = 0;
      for (const m of await server.store.messages(conversation.sid, { direction: 'forward', limit: 100 })) {
        if (!m.body.startsWith('e2ee1.')) continue;
        const cek = unwrapContentKey(parseEnvelope(m.body), { cardId: alice.client.card!.id, boxSecretKey: aliceKeys.boxSecretKey, boxPublicKey: aliceKeys.boxPublicKey });
        secretBytes(`CEK of message ${m.index}`, cek);
        ceks++;
      }
      for (const r of await server.store.history(conversation.sid, -1, 100)) {
        secretBytes(`CEK of backup ${r.index}`, openRewrap(r.orgWrap, parseEnvelope(r.envelope), orgKey.keys));
      }
      expect(ceks).toBeGreaterThanOrEqual(6);

      // Last, a 500: the store goes away under the running server (its error and stack are logged).
      await server.store.close();
      const failed = await fetch(`${url}${ApiPath.cards}?identity=alice`, { headers: { authorization: `Bearer ${alice.token}` } });
      expect(failed.status).toBe(500);
    } finally {
      for (const chat of chats) await chat.shutdown().catch(() => {});
      for (const client of clients) client.outbox.stop();
      await server.close().catch(() => {});
    }
    scan(log, 'local demo mode');
  });

  it('Twilio mode: Twilio access tokens, history against Twilio\'s REST API, the pre-event webhook', async () => {
    const log = captureLog();
    logs.push({ mode: 'Twilio mode', log });
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    const server = await securityServer({ env: twilioEnv(), log: { level: 'trace', stream: log.stream } });
    try {
      secret('AUTH_JWT_SECRET', JWT_SECRET);
      secret('TWILIO_API_SECRET', TWILIO.apiSecret);
      secret('TWILIO_AUTH_TOKEN', TWILIO.authToken);
      secret('Twilio REST basic auth', Buffer.from(`${TWILIO.apiKey}:${TWILIO.apiSecret}`).toString('base64'));
      keySecrets(server.config.appKey, server.config.orgKey);
      const trusted = trustAppKeys([toB64u(server.config.appKey.publicKey)]);
      const orgCard = verifyCard((await server.app.inject({ url: ApiPath.orgCard })).json(), { trustedAppKeys: trusted });
      const asHistoryServer = { ...server, orgCard, trusted } as unknown as HistoryServer;
      const member = async (identity: string) => {
        const user = tokenUser(identity, JWT_SECRET);
        secret(`app JWT of ${identity} (Twilio mode)`, user.token);
        const m = await withDevice(asHistoryServer, user);
        secretBytes(`${identity} sign secret key (Twilio mode)`, m.keys.signSecretKey);
        secretBytes(`${identity} box secret key (Twilio mode)`, m.keys.boxSecretKey);
        return m;
      };
      const alice = await member('alice');
      const bob = await member('bob');

      const token = await server.app.inject({ url: ApiPath.twilioToken, headers: alice.headers });
      expect(token.json<{ mode: string }>().mode).toBe('twilio');
      secret('Twilio access token', token.json<{ token: string }>().token);

      // History: alice's message as Twilio holds it, backed up and read back by bob.
      const conversationSid = newSid('CH');
      const sealed = seal(alice, conversationSid, plaintext('a message through Twilio'), [bob]);
      secretBytes('CEK (Twilio mode)', sealed.cek);
      const message = { sid: newSid('IM'), index: 0, author: 'alice', body: sealed.text };
      participantsList(conversationSid, [['alice', 'bob']]);
      messageFetch(conversationSid, message);
      const posted = await server.app.inject({ method: 'POST', url: ApiPath.history, headers: alice.headers, payload: backupOf(message, conversationSid, sealed, orgCard) });
      expect(posted.statusCode, posted.body).toBe(201);
      const read = await server.app.inject({ url: `${ApiPath.historyOf(conversationSid)}?cardId=${bob.card.id}`, headers: bob.headers });
      expect(read.statusCode, read.body).toBe(200);
      // Twilio failing: a 503 whose error is logged.
      const down = newSid('CH');
      nock('https://conversations.twilio.com').get(/Participants/).reply(500, {});
      const unavailable = await server.app.inject({ url: `${ApiPath.historyOf(down)}?cardId=${bob.card.id}`, headers: bob.headers });
      expect(unavailable.statusCode).toBe(503);

      // The pre-event webhook: a signed plaintext message (refused), a signed envelope, a bad signature.
      const preEvent = async (body: string, signature: string) =>
        server.app.inject({
          method: 'POST',
          url: ApiPath.preEvent,
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': secret('X-Twilio-Signature', signature) },
          payload: new URLSearchParams({ EventType: 'onMessageAdd', ConversationSid: conversationSid, Author: 'alice', Body: body }).toString(),
        });
      const sign = (body: string) =>
        twilio.getExpectedTwilioSignature(TWILIO.authToken, PUBLIC_URL + ApiPath.preEvent, { EventType: 'onMessageAdd', ConversationSid: conversationSid, Author: 'alice', Body: body });
      const clear = plaintext('a plaintext message past the wrapper');
      expect((await preEvent(clear, sign(clear))).statusCode).toBe(403);
      expect((await preEvent(sealed.text, sign(sealed.text))).statusCode).toBe(200);
      expect((await preEvent(clear, sign('something else'))).statusCode).toBe(403);

      // Bad tokens.
      await server.app.inject({ url: ApiPath.twilioToken, headers: { authorization: `Bearer ${secret('tampered app JWT (Twilio mode)', `${alice.token.slice(0, -6)}AAAAAA`)}` } });
      await server.app.inject({ url: `${ApiPath.twilioToken}?jwt=${alice.token}`, headers: alice.headers });
      const { request } = await newDevice('alice');
      await server.app.inject({ method: 'POST', url: ApiPath.cards, headers: bob.headers, payload: request });
    } finally {
      nock.cleanAll();
      nock.enableNetConnect();
      await server.close();
    }
    scan(log, 'Twilio mode');
  });
});

/**
 * The line, plus what its byte arrays say: a logged Buffer is `{"type":"Buffer","data":[...]}` and
 * a logged Uint8Array `{"0":..,"1":..}`, so a secret in one would not show as text. Each array of
 * bytes is added as latin1 text, base64url and hex.
 */
function views(line: string): string[] {
  const out = [line];
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    const entries = Array.isArray(value) ? value : Object.keys(value).every((k) => /^\d+$/.test(k)) ? Object.values(value) : null;
    if (entries && entries.length >= 8 && entries.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) < 256)) {
      const bytes = Buffer.from(entries as number[]);
      out.push(bytes.toString('latin1'), bytes.toString('base64url'), bytes.toString('hex'));
      return;
    }
    for (const v of Object.values(value)) visit(v);
  };
  visit(JSON.parse(line));
  return out;
}

/** Every line is JSON (pino), and no line holds any secret (nor the word "authorization"). */
function scan(log: CapturedLog, mode: string): void {
  expect(log.lines.length, `${mode}: trace level logs every request`).toBeGreaterThan(20);
  for (const line of log.lines) expect(() => JSON.parse(line), line.slice(0, 200)).not.toThrow();
  const texts = log.lines.map((line) => views(line));
  const found: string[] = [];
  for (const [label, value] of secrets) {
    const escaped = JSON.stringify(value).slice(1, -1);
    const i = texts.findIndex((t) => t.some((text) => text.includes(value) || text.includes(escaped)));
    if (i >= 0) found.push(`${label} in: ${log.lines[i]!.slice(0, 300)}`);
  }
  expect(found, `${mode}: secrets in the log`).toEqual([]);
  expect(texts.filter((t) => t.some((text) => /authorization/i.test(text))).map((t) => t[0]!.slice(0, 300))).toEqual([]);
  // Requests were logged (with ids), and the query-string secrets were replaced.
  const requests = log.lines.map((l) => JSON.parse(l) as { req?: unknown; reqId?: string }).filter((l) => l.req);
  expect(requests.length).toBeGreaterThan(10);
  expect(requests.every((l) => typeof l.reqId === 'string')).toBe(true);
}
