/**
 * Hostile input against the local relay's media service: uploads over the limit (declared, and
 * counted as they arrive), by strangers and bad tokens, aborted or trickled; download URLs
 * expired, forged or moved to another sid; sids that are not the caller's. Every refusal leaves
 * the store as it was and no file behind.
 */
import { createHmac } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConversationsClient, type LocalConversation } from '../../client/node.js';
import { countedUpload } from '../../server/relay/media-routes.js';
import { relayTokenSecret, signRelayToken } from '../../server/relay-token.js';
import { deriveAppSecret, RELAY_MEDIA_URL_SECRET_LABEL } from '../../server/secrets.js';
import { ApiPath } from '../../shared/api.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { session } from '../support/app.js';
import { waitFor } from '../support/concurrency.js';
import { baseUrl, securityServer, type SecurityServer } from '../support/security.js';

let server: SecurityServer;
let base: string;
const clients: LocalConversationsClient[] = [];

async function relayToken(s: SecurityServer, identity: string): Promise<string> {
  const user = await session(s.app, identity);
  return (await s.app.inject({ url: ApiPath.twilioToken, headers: user.headers })).json<{ token: string }>().token;
}

async function connect(identity: string): Promise<{ client: LocalConversationsClient; token: string }> {
  const token = await relayToken(server, identity);
  const client = await LocalConversationsClient.connect({ relayUrl: base.replace(/^http/, 'ws') + ApiPath.relay, token });
  clients.push(client);
  return { client, token };
}

function upload(token: string | null, conversationSid: string, body: BodyInit, headers: Record<string, string> = {}) {
  return fetch(`${base}${ApiPath.relayMedia}?conversationSid=${encodeURIComponent(conversationSid)}&filename=x.bin`, {
    method: 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/octet-stream', ...headers },
    body,
  });
}

const code = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;
const mediaFiles = async (s: SecurityServer) => readdir(join(s.dataDir, 'media')).catch(() => [] as string[]);

let alice: { client: LocalConversationsClient; token: string };
let bob: { client: LocalConversationsClient; token: string };
let conversation: LocalConversation;

beforeAll(async () => {
  server = await securityServer({ listen: true });
  base = baseUrl(server.app);
  alice = await connect('alice');
  bob = await connect('bob');
  conversation = await alice.client.createConversation();
  await conversation.join();
  await conversation.add('bob');
});

afterAll(async () => {
  for (const c of clients) await c.shutdown();
  await server?.close();
});

/** Sends a request of `declared` bytes, writes `sent` of them, and hands back the request and its response (if any came). */
function partialUpload(s: SecurityServer, token: string, declared: number, sent: number): { request: http.ClientRequest; response: Promise<http.IncomingMessage | Error> } {
  const url = new URL(`${baseUrl(s.app)}${ApiPath.relayMedia}?conversationSid=${conversation.sid}`);
  const request = http.request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(declared) },
  });
  const response = new Promise<http.IncomingMessage | Error>((resolve) => {
    request.on('response', resolve);
    request.on('error', resolve);
  });
  request.write(Buffer.alloc(sent, 7));
  return { request, response };
}

describe('uploads', () => {
  it('refuses a declared Content-Length over 150,000,000 bytes at once (413), reading nothing and storing nothing', async () => {
    const before = await server.dump();
    const { request, response } = partialUpload(server, alice.token, RELAY_LIMITS.mediaBytes + 1, 1000);
    const answer = await response;
    expect(answer).toBeInstanceOf(http.IncomingMessage);
    const res = answer as http.IncomingMessage;
    expect(res.statusCode).toBe(413);
    const body = await new Promise<string>((resolve) => {
      let text = '';
      res.on('data', (c) => (text += c)).on('end', () => resolve(text));
    });
    expect(JSON.parse(body).error.code).toBe('ATTACHMENT_TOO_LARGE');
    request.destroy();
    expect(await server.dump()).toBe(before);
    expect(await mediaFiles(server)).toEqual([]);
  });

  it('counts the bytes as they arrive and stops at 150,000,000 (no Content-Length to trust)', async () => {
    // 144 views of one MiB (151 MB): counted without allocating them.
    const mib = new Uint8Array(1024 * 1024);
    let handed = 0;
    async function* body(views = 144) {
      for (let i = 0; i < views; i++) {
        handed += mib.length;
        yield Buffer.from(mib.buffer);
      }
    }
    let passed = 0;
    const consume = (async () => {
      for await (const chunk of countedUpload(body(), null)) passed += chunk.length;
    })();
    await expect(consume).rejects.toMatchObject({ code: 'ATTACHMENT_TOO_LARGE' });
    expect(passed).toBeLessThanOrEqual(RELAY_LIMITS.mediaBytes);
    expect(handed).toBeGreaterThan(RELAY_LIMITS.mediaBytes);
    // And a body shorter than its declared length is refused, not stored short.
    const short = (async () => {
      for await (const _ of countedUpload(body(2), 3 * mib.length)) void _;
    })();
    await expect(short).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('refuses strangers, bad and expired tokens, unknown conversations and bad parameters, storing nothing', async () => {
    const before = await server.dump();
    const mallory = await connect('mallory');
    const expired = signRelayToken(relayTokenSecret(server.config.appKey), 'alice', -10);
    const cases: Array<[Promise<Response>, number, string]> = [
      [upload(mallory.token, conversation.sid, 'x'), 403, 'FORBIDDEN'],
      [upload(null, conversation.sid, 'x'), 401, 'UNAUTHORIZED'],
      [upload('not.a.token', conversation.sid, 'x'), 401, 'UNAUTHORIZED'],
      [upload(expired, conversation.sid, 'x'), 401, 'TOKEN_EXPIRED'],
      [upload(alice.token, 'CH00000000000000000000000000000000', 'x'), 404, 'NOT_FOUND'],
      [upload(alice.token, '', 'x'), 400, 'BAD_REQUEST'],
      [upload(alice.token, conversation.uniqueName ?? conversation.sid.replace('CH', 'XX'), 'x'), 404, 'NOT_FOUND'],
      [upload(alice.token, conversation.sid, 'x', { 'content-type': `application/${'a'.repeat(300)}` }), 400, 'BAD_REQUEST'],
      [upload(alice.token, conversation.sid, 'x', { 'content-type': 'not a type' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ];
    for (const [response, status, errorCode] of cases) {
      const res = await response;
      expect([res.status, await code(res)]).toEqual([status, errorCode]);
    }
    expect(await server.dump()).toBe(before);
    expect(await mediaFiles(server)).toEqual([]);
  });

  it('leaves nothing behind when the client aborts an upload halfway', async () => {
    const before = await server.dump();
    const { request, response } = partialUpload(server, alice.token, 1_000_000, 300_000);
    await waitFor(async () => (await mediaFiles(server)).length === 1, 'the upload to reach the store');
    request.destroy();
    await response;
    await waitFor(async () => (await mediaFiles(server)).length === 0, 'the aborted upload to be cleaned up', 5000);
    expect(await server.dump()).toBe(before);
  });

  it('leaves nothing behind when an upload trickles past REQUEST_TIMEOUT (408, connection closed)', async () => {
    const slow = await securityServer({ listen: true, env: { REQUEST_TIMEOUT: '1' } });
    try {
      const token = await relayToken(slow, 'alice');
      const sid = (await slow.store.createConversation({ sid: conversation.sid, uniqueName: null, friendlyName: null, attributes: '{}', createdBy: 'alice', dateCreatedMs: Date.now() }))!.sid;
      await slow.store.addParticipant({ sid: 'MB0', conversationSid: sid, identity: 'alice', dateCreatedMs: Date.now() });
      const before = await slow.dump();
      const { request, response } = partialUpload(slow, token, 1000, 10);
      const timer = setInterval(() => request.write(Buffer.alloc(10)), 200);
      await waitFor(async () => (await mediaFiles(slow)).length === 1, 'the upload to reach the store');
      const answer = await response;
      clearInterval(timer);
      expect(answer instanceof Error || (answer as http.IncomingMessage).statusCode === 408).toBe(true);
      await waitFor(async () => (await mediaFiles(slow)).length === 0, 'the trickled upload to be cleaned up', 5000);
      expect(await slow.dump()).toBe(before);
    } finally {
      await slow.close();
    }
  });
});

describe('attaching and downloading', () => {
  async function uploaded(token: string, bytes = 'blob'): Promise<string> {
    const res = await upload(token, conversation.sid, bytes);
    expect(res.status).toBe(201);
    return ((await res.json()) as { sid: string }).sid;
  }

  it('attaches only the caller\'s own unattached uploads to this conversation, once; bad sids are refused', async () => {
    const bobs = await uploaded(bob.token);
    const mine = await uploaded(alice.token);
    const send = (mediaSids: unknown) => alice.client.request('sendMessage', { conversationSid: conversation.sid, body: 'e2ee1.x', mediaSids } as never);
    const refusals: Array<[unknown, string]> = [
      [[bobs], 'NOT_FOUND'],
      [['ME' + '0'.repeat(32)], 'NOT_FOUND'],
      [[mine, mine], 'BAD_REQUEST'],
      ['not a list', 'BAD_REQUEST'],
      [[42], 'BAD_REQUEST'],
      [Array.from({ length: RELAY_LIMITS.mediaPerMessage + 1 }, (_, i) => `ME${i}`), 'TOO_MANY_ATTACHMENTS'],
    ];
    for (const [sids, errorCode] of refusals) await expect(send(sids)).rejects.toMatchObject({ code: errorCode });
    expect(await conversation.getMessagesCount()).toBe(0);
    await send([mine]);
    await expect(send([mine])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await conversation.getMessagesCount()).toBe(1);
  });

  it('refuses download URLs that are expired, forged, altered or moved to another sid (403), and never serves an unattached upload', async () => {
    const sid = await uploaded(alice.token, 'attached bytes');
    await alice.client.request('sendMessage', { conversationSid: conversation.sid, body: 'e2ee1.y', mediaSids: [sid] });
    const unattached = await uploaded(alice.token, 'not sent');
    const [url] = [...(await alice.client.getTemporaryContentUrlsForMediaSids([sid])).values()];
    expect(await (await fetch(url!)).text()).toBe('attached bytes');

    const key = deriveAppSecret(server.config.appKey, RELAY_MEDIA_URL_SECRET_LABEL);
    const signed = (mediaSid: string, expires: number) =>
      `${base}${ApiPath.relayMediaContent(mediaSid)}?expires=${expires}&signature=${createHmac('sha256', key).update(`${mediaSid}\n${expires}`).digest('base64url')}`;
    const given = new URL(url!);
    const altered = (name: string, value: string) => {
      const u = new URL(given);
      u.searchParams.set(name, value);
      return u.href;
    };
    const forbidden = [
      signed(sid, Date.now() - 1), // validly signed, expired
      altered('expires', String(Number(given.searchParams.get('expires')) + 60_000)),
      altered('signature', 'A'.repeat(43)),
      altered('signature', ''),
      altered('expires', 'soon'),
      given.href.replace(sid, unattached), // another sid under this signature
      `${base}${ApiPath.relayMediaContent(sid)}`,
    ];
    for (const u of forbidden) {
      const res = await fetch(u);
      expect([u, res.status, await code(res)]).toEqual([u, 403, 'FORBIDDEN']);
    }
    // Validly signed but never attached, or not a media sid at all: nothing is served.
    for (const u of [signed(unattached, Date.now() + 60_000), signed('..%2Ftwilio-e2ee.sqlite', Date.now() + 60_000)]) {
      expect((await fetch(u)).status).toBe(404);
    }
    await expect(alice.client.getTemporaryContentUrlsForMediaSids([unattached])).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses bad getMediaUrls requests, and a participant removed since', async () => {
    const sid = await uploaded(alice.token);
    await alice.client.request('sendMessage', { conversationSid: conversation.sid, body: 'e2ee1.z', mediaSids: [sid] });
    const ask = (mediaSids: unknown) => bob.client.request('getMediaUrls', { mediaSids } as never);
    for (const bad of ['ME', [1], null, Array(RELAY_LIMITS.mediaUrlsPerRequest + 1).fill(sid)]) await expect(ask(bad)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(Object.keys((await ask([sid])).urls)).toEqual([sid]);
    const carol = await connect('carol');
    await conversation.add('carol');
    await conversation.removeParticipant('carol');
    await expect(carol.client.request('getMediaUrls', { mediaSids: [sid] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
