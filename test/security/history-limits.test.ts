/**
 * History routes under load (the security review's finding 6: looping readers starved /healthz):
 * a byte cap per history page (the client follows truncated pages), a bounded queue of pages
 * being built (429 beyond it), and per-identity rate limits on reading and backing up. The
 * /healthz figure under 8 looping readers is measured by the long suite
 * (test/long/history-readers.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../client/api-client.js';
import type { BaseMessage } from '../../client/conversations.js';
import { HistoryRewraps } from '../../client/history.js';
import { HISTORY_PAGES_AT_ONCE, HISTORY_PAGES_WAITING, HISTORY_PAGE_MAX_BYTES } from '../../server/limits.js';
import { MAX_HISTORY_PAGE_MESSAGES } from '../../shared/limits.js';
import { openEnvelope, type HistoryPostRequest, type HistoryResponse, type VerifiedCard } from '../../shared/index.js';
import { errorCode, session, uid } from '../support/app.js';
import {
  backupOf,
  historyServer,
  joinLocal,
  localConversation,
  localMessage,
  openHistory,
  postHistory,
  readHistory,
  seal,
  withDevice,
  type HistoryServer,
  type Member,
} from '../support/history.js';

let server: HistoryServer;
let orgCard: VerifiedCard;

beforeAll(async () => {
  server = await historyServer();
  orgCard = server.orgCard!;
});
afterAll(() => server?.close());

/** A new user of the demo server with one registered device. */
async function member(name: string): Promise<Member> {
  return withDevice(server, await session(server.app, uid(name)));
}

describe('history pages: byte cap, rate limits, bounded page work', () => {
  /** Plaintext that seals (for two cards) to an envelope of about 30 KB of text, near the 32 KB maximum. */
  const BIG_BODY_CHARS = 22_000;
  const BIG_MESSAGES = 40;
  let alice: Member;
  let bob: Member;
  let agent: Member;
  let conversationSid: string;
  let bodies: string[];

  beforeAll(async () => {
    [alice, bob, agent] = await Promise.all([member('alice'), member('bob'), member('agent')]);
    conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
    bodies = Array.from({ length: BIG_MESSAGES }, (_, i) => `message ${i} `.padEnd(BIG_BODY_CHARS, String.fromCharCode(97 + (i % 26))));
    for (const body of bodies) {
      const sealed = seal(alice, conversationSid, body, [bob]);
      const message = await localMessage(server.store, conversationSid, alice.identity, sealed.text);
      expect((await postHistory(server.app, alice, backupOf(message, conversationSid, sealed, orgCard))).statusCode).toBe(201);
    }
    await joinLocal(server.store, conversationSid, agent.identity);
  });

  const read = (user: Member, query: Record<string, string | number>) => readHistory(server.app, user, conversationSid, query);

  it(`stops a page at ${HISTORY_PAGE_MAX_BYTES} bytes of envelopes with truncated: true, and the next page continues after its last index`, async () => {
    const first = await read(agent, { cardId: agent.card.id, after: -1, limit: MAX_HISTORY_PAGE_MESSAGES });
    expect(first.statusCode, first.body).toBe(200);
    const page1 = first.json<HistoryResponse>();
    const envelopeChars = page1.messages[0]!.envelope.length;
    expect(envelopeChars).toBeGreaterThan(29_000);
    expect(page1.truncated).toBe(true);
    expect(page1.messages.length).toBe(Math.floor(HISTORY_PAGE_MAX_BYTES / envelopeChars));
    expect(page1.messages.reduce((n, m) => n + m.envelope.length, 0)).toBeLessThanOrEqual(HISTORY_PAGE_MAX_BYTES);

    const second = await read(agent, { cardId: agent.card.id, after: page1.messages.at(-1)!.index, limit: MAX_HISTORY_PAGE_MESSAGES });
    expect(second.statusCode, second.body).toBe(200);
    const page2 = second.json<HistoryResponse>();
    expect(page2.truncated).toBe(false);
    const messages = [...page1.messages, ...page2.messages];
    expect(messages.map((m) => m.index)).toEqual(bodies.map((_, i) => i));
    expect(openHistory(messages, agent, conversationSid, [alice.card])).toEqual(bodies);
  });

  it('does not mark a page truncated when it holds `limit` messages within the cap', async () => {
    const res = await read(agent, { cardId: agent.card.id, after: 9, limit: 5 });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<HistoryResponse>()).toMatchObject({ truncated: false });
    expect(res.json<HistoryResponse>().messages.map((m) => m.index)).toEqual([10, 11, 12, 13, 14]);
  });

  it('the client (HistoryRewraps) follows truncated pages: every rewrap of the range, one request per page', async () => {
    let requests = 0;
    const api = new ApiClient('http://history.test', () => agent.token, async (input, init) => {
      requests++;
      const url = new URL(input);
      const res = await server.app.inject({ method: 'GET', url: url.pathname + url.search, headers: init?.headers as Record<string, string> });
      return new Response(res.body, { status: res.statusCode, headers: { 'content-type': 'application/json' } });
    });
    const stored = await server.store.messages(conversationSid, { direction: 'forward', limit: BIG_MESSAGES });
    const rewraps = new HistoryRewraps(api, () => agent.card.id, () => true);
    const asClientMessages = stored.map((m) => ({ sid: m.sid, index: m.index, author: m.author, body: m.body }) as unknown as BaseMessage);
    await rewraps.prefetch(conversationSid, asClientMessages);
    expect(requests).toBe(Math.ceil(BIG_MESSAGES / Math.floor(HISTORY_PAGE_MAX_BYTES / stored[0]!.body.length)));
    const opened = [];
    for (const m of asClientMessages) {
      const rewrap = await rewraps.rewrapFor(conversationSid, m);
      expect(rewrap, `message ${m.index}`).not.toBeNull();
      opened.push(openEnvelope(m.body!, { recipient: agent.opener, rewrap: rewrap!, senderCard: alice.card, conversationSid, author: alice.identity }).payload.body);
    }
    expect(opened).toEqual(bodies);
    expect(requests).toBe(2); // everything came from the prefetched pages
  });

  it('turns readers away with 429 RATE_LIMITED and Retry-After while too many pages wait, and serves the rest whole', async () => {
    const readers = HISTORY_PAGES_AT_ONCE + HISTORY_PAGES_WAITING + 16;
    const answers = await Promise.all(Array.from({ length: readers }, () => read(agent, { cardId: agent.card.id, after: -1, limit: 16 })));
    const busy = answers.filter((res) => res.statusCode === 429);
    const served = answers.filter((res) => res.statusCode === 200);
    expect(busy.length + served.length).toBe(readers);
    expect(busy.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThanOrEqual(HISTORY_PAGES_AT_ONCE + HISTORY_PAGES_WAITING);
    for (const res of busy) {
      expect(errorCode(res)).toBe('RATE_LIMITED');
      expect(res.headers['retry-after']).toBe('1');
    }
    for (const res of served) expect(res.json<HistoryResponse>().messages.map((m) => m.index)).toEqual(bodies.slice(0, 16).map((_, i) => i));
  });
});

describe('history rate limits (per identity)', () => {
  let limited: HistoryServer;
  let alice: Member;
  let bob: Member;
  let conversationSid: string;

  beforeAll(async () => {
    limited = await historyServer({ RATE_LIMIT_HISTORY_READ: '3', RATE_LIMIT_HISTORY_BACKUP: '2' });
    [alice, bob] = await Promise.all([withDevice(limited, await session(limited.app, uid('alice'))), withDevice(limited, await session(limited.app, uid('bob')))]);
    conversationSid = await localConversation(limited.store, [alice.identity, bob.identity]);
  });
  afterAll(() => limited?.close());

  async function aliceBackup(body: string): Promise<HistoryPostRequest> {
    const sealed = seal(alice, conversationSid, body, [bob]);
    const message = await localMessage(limited.store, conversationSid, alice.identity, sealed.text);
    return backupOf(message, conversationSid, sealed, limited.orgCard!);
  }

  it('limits POST /v1/history per identity (429 RATE_LIMITED, Retry-After), storing nothing over the limit', async () => {
    const backups = [await aliceBackup('one'), await aliceBackup('two'), await aliceBackup('three')];
    expect((await postHistory(limited.app, alice, backups[0])).statusCode).toBe(201);
    expect((await postHistory(limited.app, alice, backups[1])).statusCode).toBe(201);
    const over = await postHistory(limited.app, alice, backups[2]);
    expect(over.statusCode).toBe(429);
    expect(errorCode(over)).toBe('RATE_LIMITED');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect((await limited.store.history(conversationSid, -1, 10)).map((r) => r.messageSid)).toEqual([backups[0]!.messageSid, backups[1]!.messageSid]);
    // bob (another identity, a participant too) has his own budget.
    expect((await postHistory(limited.app, bob, backups[2])).statusCode).toBe(201);
  });

  it('limits GET /v1/history/:conversationSid per identity (429 RATE_LIMITED, Retry-After)', async () => {
    const read = (who: Member) => readHistory(limited.app, who, conversationSid, { cardId: who.card.id });
    for (let i = 0; i < 3; i++) expect((await read(alice)).statusCode).toBe(200);
    const over = await read(alice);
    expect(over.statusCode).toBe(429);
    expect(errorCode(over)).toBe('RATE_LIMITED');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect((await read(bob)).statusCode).toBe(200);
  });
});
