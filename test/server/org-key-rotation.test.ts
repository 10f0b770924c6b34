/**
 * Rotating the OrgKey (docs/API.md "Rotating keys"): ORG_KEY_PREVIOUS as the configuration reads
 * it, and the history routes of a service switched from one OrgKey to the next: the OrgCard is the
 * new key's, copies stored under the old key are read and edited, backups wrapped for the old
 * OrgCard are still taken (and stored under the new key), and a service that dropped the old key
 * before the re-wrap says which key it lacks. Real server, real stores, real crypto.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { orgKeyIdOf } from '../../server/org-key-ring.js';
import { rewrapHistory } from '../../server/rewrap-history.js';
import {
  ApiPath,
  openRewrap,
  orgKeyFromB64u,
  parseEnvelope,
  randomBytes,
  ready,
  sealEnvelope,
  seedToB64u,
  toB64u,
  trustAppKeys,
  verifyCard,
  type CardWire,
  type HistoryResponse,
  type TrustedAppKey,
  type VerifiedCard,
} from '../../shared/index.js';
import { errorCode, session, testApp, testEnv, uid, type ServerApp } from '../support/app.js';
import { TEST_APP_KEY, TEST_LOG_KEY } from '../support/env.js';
import { backupOf, localConversation, localMessage, openHistory, postHistory, readHistory, withDevice, type Member } from '../support/history.js';
import { describeEachStore } from '../support/stores.js';

await ready();
const OLD = seedToB64u(randomBytes(32));
const NEW = seedToB64u(randomBytes(32));
const OTHER = seedToB64u(randomBytes(32));
const oldKey = orgKeyFromB64u(OLD);
const newKey = orgKeyFromB64u(NEW);

/** The configuration problems loadConfig reports for `env` (none: []). */
async function problems(env: Record<string, string | undefined>): Promise<string[]> {
  try {
    await loadConfig(env);
    return [];
  } catch (err) {
    return (err as { details?: { problems?: string[] } }).details?.problems ?? [String(err)];
  }
}

describe('ORG_KEY_PREVIOUS', () => {
  it('reads a comma-separated list of earlier OrgKeys, in order, beside ORG_KEY', async () => {
    const config = await loadConfig(testEnv({ ORG_KEY: NEW, ORG_KEY_PREVIOUS: ` ${OLD} ,${OTHER},` }));
    expect(config.orgKey && seedToB64u(config.orgKey.seed)).toBe(NEW);
    expect(config.previousOrgKeys.map((k) => seedToB64u(k.seed))).toEqual([OLD, OTHER]);
    expect((await loadConfig(testEnv({ ORG_KEY: NEW }))).previousOrgKeys).toEqual([]);
  });

  it('refuses an entry that is not a key, ORG_KEY itself or a repeat, naming the entry and never its value', async () => {
    const found = await problems(testEnv({ ORG_KEY: NEW, ORG_KEY_PREVIOUS: `${OLD},bm90LWEta2V5,${NEW},${OLD}` }));
    expect(found).toEqual([
      'ORG_KEY_PREVIOUS is invalid: "ORG_KEY_PREVIOUS entry 2" expected 32 bytes, got 9',
      'ORG_KEY_PREVIOUS entry 3 is ORG_KEY itself: list only the keys used before it',
      'ORG_KEY_PREVIOUS entry 4 repeats an earlier entry',
    ]);
    for (const secret of [OLD, NEW, 'bm90LWEta2V5']) expect(found.join('\n')).not.toContain(secret);
  });

  it('needs ORG_KEY', async () => {
    const production = { NODE_ENV: 'production', APP_KEY: TEST_APP_KEY, LOG_KEY: TEST_LOG_KEY, AUTH_JWT_SECRET: 'a-production-secret-of-at-least-32-chars' };
    expect(await problems({ ...production, ORG_KEY_PREVIOUS: OLD })).toEqual([
      'ORG_KEY_PREVIOUS is set but there is no ORG_KEY: previous OrgKeys are read beside a current one',
    ]);
  });
});

describeEachStore('history across an OrgKey rotation', (stores) => {
  /** The service after the switch: ORG_KEY=new, ORG_KEY_PREVIOUS=old. */
  let switched: ServerApp;
  let trusted: TrustedAppKey[];
  let alice: Member;
  let agent: Member;
  let conversationSid: string;
  let oldCard: VerifiedCard;
  let newCard: VerifiedCard;
  /** The messages sent, in index order, with their current bodies: what a reader must find. */
  const sent: { sid: string; index: number; body: string; messageId: string }[] = [];

  const orgCardOf = async (server: ServerApp) => verifyCard((await server.app.inject({ url: ApiPath.orgCard })).json<CardWire>(), { trustedAppKeys: trusted });

  /** alice sends `body` on the relay and backs it up with an orgWrap for `card`; the backup's answer. */
  async function send(server: ServerApp, body: string, card: VerifiedCard) {
    const sealed = sealEnvelope({ sender: alice.sender, recipients: [alice.card], conversationSid, body });
    const message = await localMessage(server.store, conversationSid, alice.identity, sealed.text);
    const backup = backupOf(message, conversationSid, sealed, card);
    const response = await postHistory(server.app, alice, backup);
    if (response.statusCode === 201) sent.push({ sid: message.sid, index: message.index, body, messageId: sealed.payload.messageId });
    return { sealed, backup, response };
  }

  /** The whole history as `agent` reads it from `server`, opened and verified as a client does. */
  async function agentReads(server: ServerApp): Promise<string[]> {
    const res = await readHistory(server.app, agent, conversationSid, { cardId: agent.card.id, limit: 500 });
    expect(res.statusCode, res.body).toBe(200);
    return openHistory(res.json<HistoryResponse>().messages, agent, conversationSid, [alice.card]);
  }

  beforeAll(async () => {
    const before = await testApp(stores(), { env: { ORG_KEY: OLD } });
    trusted = trustAppKeys([toB64u(before.config.appKey.publicKey)]);
    const member = async (name: string) => withDevice({ app: before.app, trusted }, await session(before.app, uid(name)));
    [alice, agent] = await Promise.all([member('alice'), member('agent')]);
    conversationSid = await localConversation(before.store, [alice.identity, agent.identity]);
    oldCard = await orgCardOf(before);
    for (const body of ['one', 'two']) expect((await send(before, body, oldCard)).response.statusCode).toBe(201);
    await before.app.close();
    switched = await testApp(stores(), { env: { ORG_KEY: NEW, ORG_KEY_PREVIOUS: OLD } });
    newCard = await orgCardOf(switched);
  });
  afterAll(() => switched?.app.close());

  const bodies = () => sent.map((m) => m.body);

  it("serves the new key's OrgCard", () => {
    expect(toB64u(oldCard.boxPublicKey)).toBe(toB64u(oldKey.keys.boxPublicKey));
    expect(toB64u(newCard.boxPublicKey)).toBe(toB64u(newKey.keys.boxPublicKey));
  });

  it('serves readers the copies stored under the old key', async () => {
    expect(await agentReads(switched)).toEqual(['one', 'two']);
  });

  it('takes a backup wrapped for the old OrgCard (a client that has not fetched the new one) and stores it under the new key', async () => {
    const { sealed, backup, response } = await send(switched, 'three', oldCard);
    expect(response.statusCode, response.body).toBe(201);
    const stored = (await switched.store.getHistory(conversationSid, backup.messageSid))!;
    expect(stored.orgKeyId).toBe(orgKeyIdOf(newKey));
    expect(stored.orgWrap).not.toBe(backup.orgWrap);
    expect(toB64u(openRewrap(stored.orgWrap, parseEnvelope(stored.envelope), newKey.keys))).toBe(toB64u(sealed.cek));
  });

  it('stores a backup wrapped for the new OrgCard as posted', async () => {
    const { backup, response } = await send(switched, 'four', newCard);
    expect(response.statusCode, response.body).toBe(201);
    expect(await switched.store.getHistory(conversationSid, backup.messageSid)).toMatchObject({ orgWrap: backup.orgWrap, orgKeyId: orgKeyIdOf(newKey) });
  });

  it('refuses a backup wrapped for a key it does not hold (400 ENVELOPE_DECRYPT_FAILED)', async () => {
    const stranger = { ...newCard, boxPublicKey: orgKeyFromB64u(OTHER).keys.boxPublicKey };
    const { response } = await send(switched, 'never stored', stranger);
    expect(response.statusCode).toBe(400);
    expect(errorCode(response)).toBe('ENVELOPE_DECRYPT_FAILED');
  });

  it('replaces a copy stored under the old key with an edit of it, checked against that copy', async () => {
    const first = sent[0]!;
    expect((await switched.store.getHistory(conversationSid, first.sid))?.orgKeyId).toBe(orgKeyIdOf(oldKey));
    const edit = sealEnvelope({ sender: alice.sender, recipients: [alice.card], conversationSid, body: 'one, edited', content: { edit: { of: first.messageId, n: 1 } } });
    await switched.store.updateMessage(conversationSid, first.sid, { body: edit.text }, Date.now());
    const res = await postHistory(switched.app, alice, backupOf(first, conversationSid, edit, oldCard));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ stored: true, replaced: true });
    first.body = 'one, edited';
    expect(await agentReads(switched)).toEqual(bodies());
  });

  it('cannot serve copies of a key dropped before the re-wrap (500, the missing key id logged), and serves all of them after it', async () => {
    const lines: string[] = [];
    const dropped = await testApp(stores(), { env: { ORG_KEY: NEW }, log: { level: 'error', stream: { write: (line) => lines.push(line) } } });
    try {
      const res = await readHistory(dropped.app, agent, conversationSid, { cardId: agent.card.id });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
      expect(lines.join('\n')).toContain(`wrapped for OrgKey ${orgKeyIdOf(oldKey)}, which is neither ORG_KEY nor in ORG_KEY_PREVIOUS`);

      const result = await rewrapHistory({ store: switched.store, orgKey: newKey, previousOrgKeys: [oldKey] });
      expect(result).toMatchObject({ done: 1, rewrapped: 1, unopened: 0, stopped: false }); // 'two' (the edit replaced 'one' under the new key)
      expect(await agentReads(dropped)).toEqual(bodies());
    } finally {
      await dropped.app.close();
    }
  });
});
