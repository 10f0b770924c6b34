/**
 * The local relay's bounds on one client (security review findings 5, 6 and 7): a client that
 * stops reading is closed before the server buffers without limit, an answer holds a bounded
 * number of bytes, a socket is not read past a number of frames in flight, requests are
 * rate-limited per identity, a socket must authenticate in time, and a session ends when its
 * token expires unless the client refreshed it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2EEError, LocalConversationsClient } from '../../client/node.js';
import { relayHubOf } from '../../server/relay/routes.js';
import { relayTokenSecret, signRelayToken } from '../../server/relay-token.js';
import { ApiPath } from '../../shared/api.js';
import { RELAY_CLOSE, RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { session } from '../support/app.js';
import { RelaySocket } from '../support/relay-socket.js';
import { baseUrl, securityServer, type SecurityServer } from '../support/security.js';

const MiB = 1024 * 1024;
let server: SecurityServer;
let relayUrl: string;

beforeAll(async () => {
  server = await securityServer({ listen: true, env: { RATE_LIMIT_RELAY: '0' } });
  relayUrl = relayUrlOf(server);
});

afterAll(async () => {
  await server?.close();
});

function relayUrlOf(s: SecurityServer): string {
  return baseUrl(s.app).replace(/^http/, 'ws') + ApiPath.relay;
}

async function relayToken(s: SecurityServer, identity: string): Promise<string> {
  const user = await session(s.app, identity);
  return (await s.app.inject({ url: ApiPath.twilioToken, headers: user.headers })).json<{ token: string }>().token;
}

async function authed(s: SecurityServer, identity: string): Promise<RelaySocket> {
  const socket = await RelaySocket.open(relayUrlOf(s));
  expect((await socket.request('auth', { token: await relayToken(s, identity) })).ok).toBe(true);
  return socket;
}

/** A conversation of `identity` holding `count` messages of `bodyChars` characters each. */
async function conversationWith(socket: RelaySocket, count: number, bodyChars: number): Promise<string> {
  const conversationSid = ((await socket.request('createConversation', {})).result as { sid: string }).sid;
  await socket.request('join', { conversationSid });
  for (let i = 0; i < count; i++) {
    expect((await socket.request('sendMessage', { conversationSid, body: `${i}`.padEnd(bodyChars, 'A') })).ok).toBe(true);
  }
  return conversationSid;
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a client that does not read (finding 5)', () => {
  it(`is closed with ${RELAY_CLOSE.backlog} once ${RELAY_LIMITS.bufferedBytes / MiB} MiB wait for it; the server's memory stays bounded`, { timeout: 60_000 }, async () => {
    const owner = await authed(server, 'hoarder');
    const conversationSid = await conversationWith(owner, 100, RELAY_LIMITS.bodyChars);
    await owner.close();
    const hub = relayHubOf(server.app.server)!;
    const closedBefore = hub.stats.closed.backlog;

    const socket = await authed(server, 'hoarder');
    socket.pause();
    const frame = (id: number) => JSON.stringify({ id, op: 'getMessages', params: { conversationSid, pageSize: 100, direction: 'backwards' } });
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    try {
      for (let id = 2; id < 602; id++) socket.sendOnly(frame(id));
      await until(() => hub.stats.closed.backlog > closedBefore, 'the relay to close the socket');
    } finally {
      clearInterval(sampler);
    }
    // Reading again, the client gets what was queued for it, then the close code.
    socket.resume();
    expect(await socket.closedWith()).toBe(RELAY_CLOSE.backlog);
    const answered = socket.takeAnswers();
    console.info(
      `[security] relay backlog: 600 getMessages frames (${Buffer.byteLength(frame(600))} bytes each) unread; closed with ${socket.closeCode} after ` +
        `${answered.length} answers; peak bytes waiting for one socket: ${(hub.stats.peakBufferedBytes / MiB).toFixed(1)} MiB; ` +
        `server RSS ${(rssBefore / MiB).toFixed(0)} -> peak ${(rssPeak / MiB).toFixed(0)} MiB`,
    );
    expect(answered.length).toBeLessThan(600);
    expect(hub.stats.peakBufferedBytes).toBeLessThanOrEqual(RELAY_LIMITS.bufferedBytes);
    expect(rssPeak - rssBefore).toBeLessThan(200 * MiB);
    // The relay keeps serving everyone else.
    const other = await authed(server, 'hoarder');
    expect((await other.request('getMessages', { conversationSid, pageSize: 1 })).ok).toBe(true);
    await other.close();
  });

  it(`an answer holds at most ${RELAY_LIMITS.answerBytes / 1024} KiB of messages; the client pages on to get all of them, in order`, async () => {
    const socket = await authed(server, 'pager');
    const count = 20;
    const conversationSid = await conversationWith(socket, count, RELAY_LIMITS.bodyChars);
    const answer = await socket.request('getMessages', { conversationSid, pageSize: 100, direction: 'backwards' });
    const page = answer.result as { items: Array<{ index: number }>; hasPrev: boolean; hasNext: boolean };
    expect(Buffer.byteLength(JSON.stringify(page.items))).toBeLessThanOrEqual(RELAY_LIMITS.answerBytes);
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.length).toBeLessThan(count);
    expect(page.items.at(-1)!.index).toBe(count - 1); // the newest, nearest the anchor
    expect([page.hasPrev, page.hasNext]).toEqual([true, false]);
    await socket.close();

    const client = await LocalConversationsClient.connect({ relayUrl, token: await relayToken(server, 'pager') });
    try {
      const conversation = await client.getConversationBySid(conversationSid);
      const seen: number[] = [];
      let backwards = await conversation.getMessages(100);
      for (;;) {
        seen.unshift(...backwards.items.map((m) => m.index));
        if (!backwards.hasPrevPage) break;
        backwards = await backwards.prevPage();
      }
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
      const forward: number[] = [];
      let page2 = await conversation.getMessages(100, 0, 'forward');
      for (;;) {
        forward.push(...page2.items.map((m) => m.index));
        if (!page2.hasNextPage) break;
        page2 = await page2.nextPage();
      }
      expect(forward).toEqual(seen);
    } finally {
      await client.shutdown();
    }
  });

  it('conversations are listed a page at a time within the answer cap; paging gives each once', async () => {
    const socket = await authed(server, 'collector');
    const count = 80;
    const created = new Set<string>();
    for (let i = 0; i < count; i++) {
      const sid = ((await socket.request('createConversation', { attributes: { i, pad: 'x'.repeat(4000) } })).result as { sid: string }).sid;
      await socket.request('join', { conversationSid: sid });
      created.add(sid);
    }
    const first = (await socket.request('listConversations')).result as { items: unknown[]; nextPageToken: number | null };
    expect(Buffer.byteLength(JSON.stringify(first.items))).toBeLessThanOrEqual(RELAY_LIMITS.answerBytes);
    expect(first.items.length).toBeLessThan(count);
    expect(first.nextPageToken).toBe(first.items.length);
    await socket.close();

    const client = await LocalConversationsClient.connect({ relayUrl, token: await relayToken(server, 'collector') });
    try {
      const listed: string[] = [];
      for (let page = await client.getSubscribedConversations(); ; page = await page.nextPage()) {
        listed.push(...page.items.map((c) => c.sid));
        if (!page.hasNextPage) break;
      }
      expect(listed.length).toBe(count);
      expect(new Set(listed)).toEqual(created);
    } finally {
      await client.shutdown();
    }
  });

  it(`is not read past ${RELAY_LIMITS.framesInFlight} frames in flight; a client that reads gets every answer, in order`, { timeout: 30_000 }, async () => {
    const socket = await authed(server, 'pipeliner');
    const conversationSid = await conversationWith(socket, 0, 0);
    const hub = relayHubOf(server.app.server)!;
    hub.stats.peakFramesInFlight = 0;
    // Frames of 60 KB (so one read of the socket holds at most two), each waiting for its commit:
    // the client sends faster than the relay answers.
    const frames = 200;
    const body = 'é'.repeat(30_000);
    let unsentPeak = 0;
    for (let id = 1000; id < 1000 + frames; id++) {
      socket.sendOnly(JSON.stringify({ id, op: 'sendMessage', params: { conversationSid, body } }));
      unsentPeak = Math.max(unsentPeak, socket.bufferedAmount);
    }
    const sampler = setInterval(() => (unsentPeak = Math.max(unsentPeak, socket.bufferedAmount)), 5);
    try {
      await until(() => socket.unreadAnswers >= frames, 'every answer', 25_000);
    } finally {
      clearInterval(sampler);
    }
    const answers = socket.takeAnswers();
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: frames }, (_, i) => 1000 + i));
    expect(answers.map((a) => (a.result as { index: number }).index)).toEqual(Array.from({ length: frames }, (_, i) => i));
    expect(hub.stats.peakFramesInFlight).toBeLessThanOrEqual(RELAY_LIMITS.framesInFlight + 2);
    console.info(
      `[security] relay frames in flight: ${frames} sendMessage frames of ${(Buffer.byteLength(body) / 1000).toFixed(0)} KB sent at once; ` +
        `peak unanswered on the server: ${hub.stats.peakFramesInFlight}; peak unsent on the client: ${(unsentPeak / MiB).toFixed(1)} MiB; answered in order: ${answers.length}`,
    );
    await socket.close();
  });
});

describe('rate limits and deadlines (findings 6 and 7)', () => {
  let limited: SecurityServer;

  beforeAll(async () => {
    limited = await securityServer({ listen: true, env: { RATE_LIMIT_RELAY: '5', RELAY_AUTH_TIMEOUT: '1' } });
  });

  afterAll(async () => {
    await limited?.close();
  });

  it('RATE_LIMIT_RELAY requests a minute per identity, over all its sockets; then RATE_LIMITED', async () => {
    const first = await authed(limited, 'chatty');
    const second = await authed(limited, 'chatty');
    const codes: string[] = [];
    for (const socket of [first, second, first, second, first, second, first]) {
      const answer = await socket.request('listConversations');
      codes.push(answer.ok ? 'ok' : answer.error!.code);
    }
    expect(codes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED']);
    const refused = await first.request('createConversation', {});
    expect(refused.error).toEqual({ code: 'RATE_LIMITED', message: expect.stringMatching(/retry in \d+ s/) });
    // Another identity has its own budget; the limited sockets stay open.
    const quiet = await authed(limited, 'quiet');
    expect((await quiet.request('listConversations')).ok).toBe(true);
    expect([first.closed, second.closed]).toEqual([false, false]);
    for (const s of [first, second, quiet]) await s.close();
  });

  it('RATE_LIMIT_RELAY=0 turns the limit off', async () => {
    const socket = await authed(server, 'unlimited');
    for (let i = 0; i < 50; i++) expect((await socket.request('listConversations')).ok).toBe(true);
    await socket.close();
  });

  it(`a socket without a valid auth frame within RELAY_AUTH_TIMEOUT is closed with ${RELAY_CLOSE.authTimeout}`, async () => {
    const silent = await RelaySocket.open(relayUrlOf(limited));
    const refused = await RelaySocket.open(relayUrlOf(limited));
    expect((await refused.request('auth', { token: 'not-a-token' })).error?.code).toBe('UNAUTHORIZED');
    const valid = await authed(limited, 'punctual');
    const opened = Date.now();
    expect(await silent.closedWith(5_000)).toBe(RELAY_CLOSE.authTimeout);
    expect(await refused.closedWith(5_000)).toBe(RELAY_CLOSE.authTimeout);
    expect(Date.now() - opened).toBeLessThan(3_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(valid.closed).toBe(false);
    await valid.close();
  });

  it(`a session ends at its token's expiry (${RELAY_CLOSE.tokenExpired}) and gets no pushes after; updateToken keeps it going`, { timeout: 15_000 }, async () => {
    const secret = relayTokenSecret(server.config.appKey);
    const sender = await authed(server, 'sender');
    const conversationSid = ((await sender.request('createConversation', {})).result as { sid: string }).sid;
    await sender.request('join', { conversationSid });
    await sender.request('add', { conversationSid, identity: 'expiring' });
    await sender.request('add', { conversationSid, identity: 'refreshing' });

    const expiring = await RelaySocket.open(relayUrl);
    expect((await expiring.request('auth', { token: signRelayToken(secret, 'expiring', 2) })).ok).toBe(true);
    const refreshing = await RelaySocket.open(relayUrl);
    expect((await refreshing.request('auth', { token: signRelayToken(secret, 'refreshing', 2) })).ok).toBe(true);
    expect((await refreshing.request('updateToken', { token: signRelayToken(secret, 'refreshing', 60) })).ok).toBe(true);

    expect(await expiring.closedWith(5_000)).toBe(RELAY_CLOSE.tokenExpired);
    expect(expiring.pushes.map((p) => p.event)).toContain('tokenAboutToExpire');
    const pushesAtClose = expiring.pushes.length;
    await sender.request('sendMessage', { conversationSid, body: 'after expiry' });
    await until(() => refreshing.pushes.some((p) => p.event === 'messageAdded'), 'the refreshed session to get the push');
    expect(refreshing.closed).toBe(false);
    expect(expiring.pushes.length).toBe(pushesAtClose);
    expect(relayHubOf(server.app.server)!.connectedIdentities()).not.toContain('expiring');
    for (const s of [sender, refreshing]) await s.close();
  });

  it('the relay client reports tokenExpired, waits, and reconnects with the token given to updateToken', { timeout: 15_000 }, async () => {
    const secret = relayTokenSecret(server.config.appKey);
    const client = await LocalConversationsClient.connect({ relayUrl, token: signRelayToken(secret, 'late', 2) });
    try {
      const expired = new Promise<void>((resolve) => client.once('tokenExpired', () => resolve()));
      await expired;
      expect(client.connectionState).toBe('disconnected');
      const refused = await client.createConversation().catch((e: unknown) => e);
      expect((refused as E2EEError).code).toBe('DISCONNECTED');
      await client.updateToken(signRelayToken(secret, 'late', 60));
      expect(client.connectionState).toBe('connected');
      const conversation = await client.createConversation();
      await conversation.join();
      expect(await conversation.sendMessage('back again')).toBe(0);
    } finally {
      await client.shutdown();
    }
  });
});
