/**
 * Who may read history (docs/API.md "Who may read history"): by default every participant,
 * whatever its identity looks like; with the plugin's `canReadHistory`, the organization's own
 * rule decides, asked with the reader and the conversation before a page is served. A refusal is
 * 403 FORBIDDEN; a rule that throws or answers something else is 503 HISTORY_ACCESS_CHECK_FAILED,
 * logged without the reader's token. Real plugin in a Fastify app, real store and crypto.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { twilioE2ee, type CanReadHistory, type HistoryReader } from '../../server/index.js';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';
import { ApiPath, toB64u, trustAppKeys, verifyCard, type CardWire, type HistoryResponse, type VerifiedCard } from '../../shared/index.js';
import { errorCode, session, testEnv, uid } from '../support/app.js';
import { backupOf, localConversation, localMessage, openHistory, postHistory, readHistory, seal, withDevice, type Member } from '../support/history.js';

let dataDir: string;
let store: Store;
/** The rule of the app under test: tests swap it; every call is recorded. */
let rule: CanReadHistory = () => true;
const asked: Array<[HistoryReader, string]> = [];
const logLines: string[] = [];
let app: FastifyInstance;
let alice: Member;
let agent: Member;
let conversationSid: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'e2ee-history-access-'));
  store = await openStore({ dataDir });
  const config = await loadConfig(testEnv({ DEMO_MODE: 'true' }));
  app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => logLines.push(line) } } });
  await app.register(twilioE2ee, {
    config,
    store,
    canReadHistory: (reader, conversation) => {
      asked.push([reader, conversation]);
      return rule(reader, conversation);
    },
  });
  await app.ready();
  const trusted = trustAppKeys([toB64u(config.appKey.publicKey)]);
  const member = async (name: string) => withDevice({ app, trusted }, await session(app, uid(name)));
  // No "agent-" prefix: the demo's naming grants nothing; the rule below decides.
  [alice, agent] = await Promise.all([member('alice'), member('support')]);
  conversationSid = await localConversation(store, [alice.identity, agent.identity]);
  const orgCard: VerifiedCard = verifyCard((await app.inject({ url: ApiPath.orgCard })).json<CardWire>(), { trustedAppKeys: trusted });
  const sealed = seal(alice, conversationSid, 'the history');
  const message = await localMessage(store, conversationSid, alice.identity, sealed.text);
  expect((await postHistory(app, alice, backupOf(message, conversationSid, sealed, orgCard))).statusCode).toBe(201);
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const read = (reader: Member) => readHistory(app, reader, conversationSid, { cardId: reader.card.id });

describe('canReadHistory', () => {
  it('is asked with the reader (identity and card) and the conversation, and what it allows is served', async () => {
    rule = () => true;
    asked.length = 0;
    const res = await read(agent);
    expect(res.statusCode, res.body).toBe(200);
    expect(openHistory(res.json<HistoryResponse>().messages, agent, conversationSid, [alice.card])).toEqual(['the history']);
    expect(asked).toEqual([[{ identity: agent.identity, cardId: agent.card.id }, conversationSid]]);
  });

  it('refuses with 403 FORBIDDEN what it does not allow, answered in a promise too', async () => {
    rule = async ({ identity }) => identity === agent.identity;
    expect((await read(agent)).statusCode).toBe(200);
    const refused = await read(alice);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'the organization does not let you read the history of this conversation' } });
  });

  it('is asked only after the participant and card checks', async () => {
    rule = () => true;
    asked.length = 0;
    const outsider = await withDevice({ app, trusted: trustAppKeys([toB64u(app.e2ee.appKey.publicKey)]) }, await session(app, uid('outsider')));
    expect(errorCode(await read(outsider))).toBe('NOT_PARTICIPANT');
    expect(errorCode(await readHistory(app, agent, conversationSid, { cardId: alice.card.id }))).toBe('FORBIDDEN');
    expect(asked).toEqual([]);
  });

  it('serves nothing when it throws (503 HISTORY_ACCESS_CHECK_FAILED), and logs why without the token', async () => {
    rule = () => {
      throw new Error('the staff directory is down');
    };
    logLines.length = 0;
    const res = await read(agent);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: { code: 'HISTORY_ACCESS_CHECK_FAILED', message: "the organization's history access check failed: try again later" } });
    const log = logLines.join('\n');
    expect(log).toContain('canReadHistory threw: no history served');
    expect(log).toContain('the staff directory is down');
    expect(log).not.toContain(agent.token);
  });

  it('serves nothing when it answers neither true nor false (503), as when a rule forgets to return', async () => {
    rule = (() => undefined) as unknown as CanReadHistory;
    logLines.length = 0;
    const res = await read(agent);
    expect(res.statusCode).toBe(503);
    expect(errorCode(res)).toBe('HISTORY_ACCESS_CHECK_FAILED');
    expect(logLines.join('\n')).toContain('canReadHistory answered neither true nor false');
  });

  it('governs reading only: backups are still taken while it refuses everyone', async () => {
    rule = () => false;
    const orgCard = verifyCard(app.e2ee.orgCard, { trustedAppKeys: trustAppKeys([toB64u(app.e2ee.appKey.publicKey)]) });
    const sealed = seal(alice, conversationSid, 'kept anyway');
    const message = await localMessage(store, conversationSid, alice.identity, sealed.text);
    expect((await postHistory(app, alice, backupOf(message, conversationSid, sealed, orgCard))).statusCode).toBe(201);
    expect((await read(alice)).statusCode).toBe(403);
  });
});

describe('the canReadHistory option', () => {
  it('must be a function', async () => {
    const config = await loadConfig(testEnv({ DEMO_MODE: 'true' }));
    const other = Fastify();
    await expect(other.register(twilioE2ee, { config, store, canReadHistory: 'agents only' as unknown as CanReadHistory })).rejects.toThrow(
      'twilio-e2ee: options.canReadHistory must be a function (reader, conversationSid) => boolean',
    );
    await other.close();
  });
});
