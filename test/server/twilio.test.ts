/**
 * Twilio mode: history authorization and checks against Twilio's Conversations REST API (served
 * by nock, answering exactly the requests the twilio package makes), and the pre-event webhook
 * with X-Twilio-Signature. Our server, store and crypto are real; no request leaves the machine.
 */
import nock from 'nock';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiPath, fromB64u, parseEnvelope, toB64u, type HistoryResponse } from '../../shared/index.js';
import { TEST_APP_KEY, TEST_ORG_KEY, errorCode } from '../helpers/app.js';
import {
  backupOf,
  historyServer,
  openHistory,
  postHistory,
  readHistory,
  seal,
  tokenUser,
  withDevice,
  type HistoryServer,
  type Member,
} from '../helpers/history.js';

const TWILIO = {
  accountSid: `AC${'a1'.repeat(16)}`,
  apiKey: `SK${'b2'.repeat(16)}`,
  apiSecret: 'api-secret-for-the-tests',
  serviceSid: `IS${'c3'.repeat(16)}`,
  authToken: 'auth-token-for-the-tests',
};
const PUBLIC_URL = 'https://chat.example.com';
const JWT_SECRET = 'twilio-mode-test-secret-0123456789abcdef';

/** Twilio mode: Twilio credentials, app tokens from the team's identity provider (no demo mode). */
function twilioEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    APP_KEY: TEST_APP_KEY,
    ORG_KEY: TEST_ORG_KEY,
    AUTH_JWT_SECRET: JWT_SECRET,
    TWILIO_ACCOUNT_SID: TWILIO.accountSid,
    TWILIO_API_KEY: TWILIO.apiKey,
    TWILIO_API_SECRET: TWILIO.apiSecret,
    TWILIO_CONVERSATIONS_SERVICE_SID: TWILIO.serviceSid,
    TWILIO_AUTH_TOKEN: TWILIO.authToken,
    PUBLIC_URL,
    ...overrides,
  };
}

// --- Twilio's Conversations REST API, as nock serves it -------------------------------------

const TWILIO_API = 'https://conversations.twilio.com';
let sidCounter = 0;
const newSid = (prefix: string): string => `${prefix}${(++sidCounter).toString(16).padStart(32, '0')}`;
const conversationPath = (conversationSid: string): string => `/v1/Services/${TWILIO.serviceSid}/Conversations/${conversationSid}`;
const twilioDate = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A request to the REST API with the configured API key (the one thing every route checks). */
function rest(method: 'get', path: string): nock.Interceptor {
  return nock(TWILIO_API)[method](path).basicAuth({ user: TWILIO.apiKey, pass: TWILIO.apiSecret });
}

/** The participants list, as the twilio package asks for it (PageSize=1000), on one or more pages. */
function participantsList(conversationSid: string, pages: readonly (readonly string[])[]): nock.Scope {
  const url = `${TWILIO_API}${conversationPath(conversationSid)}/Participants`;
  let scope: nock.Scope | undefined;
  pages.forEach((identities, page) => {
    const query = page === 0 ? { PageSize: '1000' } : { PageSize: '1000', Page: String(page), PageToken: `PT${page}` };
    const next = page + 1 < pages.length ? `${url}?PageSize=1000&Page=${page + 1}&PageToken=PT${page + 1}` : null;
    scope = rest('get', `${conversationPath(conversationSid)}/Participants`)
      .query(query)
      .reply(200, {
        participants: identities.map((identity) => ({
          account_sid: TWILIO.accountSid,
          chat_service_sid: TWILIO.serviceSid,
          conversation_sid: conversationSid,
          sid: newSid('MB'),
          identity,
          attributes: '{}',
          messaging_binding: null,
          role_sid: newSid('RL'),
          date_created: twilioDate(Date.now()),
          date_updated: twilioDate(Date.now()),
          url: `${url}/${newSid('MB')}`,
          last_read_message_index: null,
          last_read_timestamp: null,
        })),
        meta: { page, page_size: 1000, first_page_url: `${url}?PageSize=1000&Page=0`, previous_page_url: null, url, next_page_url: next, key: 'participants' },
      });
  });
  return scope!;
}

interface TwilioMessage {
  sid: string;
  index: number;
  author: string | null;
  body: string | null;
  dateCreatedMs?: number;
}

function messageFetch(conversationSid: string, m: TwilioMessage): nock.Scope {
  const date = twilioDate(m.dateCreatedMs ?? Date.now());
  return rest('get', `${conversationPath(conversationSid)}/Messages/${m.sid}`).reply(200, {
    account_sid: TWILIO.accountSid,
    chat_service_sid: TWILIO.serviceSid,
    conversation_sid: conversationSid,
    sid: m.sid,
    index: m.index,
    author: m.author,
    body: m.body,
    media: null,
    attributes: '{}',
    participant_sid: newSid('MB'),
    date_created: date,
    date_updated: date,
    url: `${TWILIO_API}${conversationPath(conversationSid)}/Messages/${m.sid}`,
    delivery: null,
    links: {},
    content_sid: null,
  });
}

/** Twilio's error body for `status`. */
function twilioError(status: number) {
  return { code: status === 404 ? 20404 : 20500, message: status === 404 ? 'The requested resource was not found' : 'Internal Server Error', more_info: 'https://www.twilio.com/docs/errors', status };
}

// --- the suite --------------------------------------------------------------------------------

let server: HistoryServer;
let alice: Member;
let bob: Member;
let outsider: Member;
/** Requests nock had no answer for (it refuses them: net connect is off). */
const unmatched: string[] = [];
const recordUnmatched = (req: { method?: string; href?: string; path?: string }) => unmatched.push(`${req.method} ${req.href ?? req.path}`);

beforeAll(async () => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  nock.emitter.on('no match', recordUnmatched);
  server = await historyServer(twilioEnv());
  // Card registration and app tokens work as in local mode, with tokens from the identity provider.
  [alice, bob, outsider] = await Promise.all(['alice', 'bob', 'outsider'].map((identity) => withDevice(server, tokenUser(identity, JWT_SECRET))));
});

afterEach(() => {
  vi.useRealTimers();
  try {
    expect(unmatched, 'requests to Twilio nobody expected').toEqual([]);
    expect(nock.pendingMocks(), 'expected Twilio requests that were not made').toEqual([]);
  } finally {
    unmatched.length = 0;
    nock.cleanAll();
  }
});

afterAll(async () => {
  nock.emitter.off('no match', recordUnmatched);
  nock.enableNetConnect();
  await server?.close();
});

it('runs in Twilio mode, without demo sessions', async () => {
  expect(server.config.twilio?.conversationsServiceSid).toBe(TWILIO.serviceSid);
  expect((await server.app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } })).statusCode).toBe(404);
});

describe('history with Twilio as the authority', () => {
  /** Alice's message in a new conversation: the backup, and the message as Twilio holds it. */
  function aliceMessage(body = 'hello bob') {
    const conversationSid = newSid('CH');
    const sealed = seal(alice, conversationSid, body, [bob]);
    const message: TwilioMessage = { sid: newSid('IM'), index: 0, author: alice.identity, body: sealed.text };
    return { conversationSid, sealed, message, backup: backupOf(message, conversationSid, sealed, server.orgCard!) };
  }

  /** A conversation of alice and bob with alice's message backed up. */
  async function storedConversation(): Promise<string> {
    const { conversationSid, message, backup } = aliceMessage();
    participantsList(conversationSid, [[alice.identity, bob.identity]]);
    messageFetch(conversationSid, message);
    const res = await postHistory(server.app, alice, backup);
    expect(res.statusCode, res.body).toBe(201);
    return conversationSid;
  }

  const read = (user: Member, conversationSid: string) => readHistory(server.app, user, conversationSid, { cardId: user.card.id });

  it('decides participation from Twilio\'s participants list: a participant reads (200), anyone else gets 403', async () => {
    const { conversationSid, message, backup } = aliceMessage('read me');
    const list = participantsList(conversationSid, [[alice.identity, bob.identity]]);
    messageFetch(conversationSid, message);
    expect((await postHistory(server.app, alice, backup)).statusCode).toBe(201);

    const res = await read(bob, conversationSid);
    expect(res.statusCode, res.body).toBe(200);
    expect(openHistory(res.json<HistoryResponse>().messages, bob, conversationSid, [alice.card])).toEqual(['read me']);
    const refused = await read(outsider, conversationSid);
    expect(refused.statusCode).toBe(403);
    expect(errorCode(refused)).toBe('NOT_PARTICIPANT');
    expect(list.isDone()).toBe(true); // one list served the post and both reads
  });

  it('caches the list: a read within 30 s asks Twilio nothing, a read after 30 s asks again', async () => {
    const conversationSid = await storedConversation();
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    vi.setSystemTime(Date.now() + 29_000);
    expect((await read(bob, conversationSid)).statusCode).toBe(200); // no interceptor left: a REST call would be unmatched

    vi.setSystemTime(Date.now() + 2_000);
    const again = participantsList(conversationSid, [[alice.identity]]); // bob has left meanwhile
    const res = await read(bob, conversationSid);
    expect(res.statusCode).toBe(403);
    expect(again.isDone()).toBe(true);
  });

  it('asks again about a caller missing from the list once 2 s have passed (someone just added)', async () => {
    const conversationSid = await storedConversation();
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    expect((await read(outsider, conversationSid)).statusCode).toBe(403); // from the cached list

    vi.setSystemTime(Date.now() + 2_500);
    const updated = participantsList(conversationSid, [[alice.identity, bob.identity, outsider.identity]]);
    expect((await read(outsider, conversationSid)).statusCode).toBe(200);
    expect(updated.isDone()).toBe(true);
  });

  it('reads every page of the participants list', async () => {
    const { conversationSid, message, backup } = aliceMessage();
    const pages = participantsList(conversationSid, [[bob.identity], [alice.identity]]);
    messageFetch(conversationSid, message);
    expect((await postHistory(server.app, alice, backup)).statusCode).toBe(201);
    expect(pages.isDone()).toBe(true);
  });

  it('treats a conversation Twilio does not know (404) as one without participants (403)', async () => {
    const conversationSid = newSid('CH');
    rest('get', `${conversationPath(conversationSid)}/Participants`).query({ PageSize: '1000' }).reply(404, twilioError(404));
    const res = await read(bob, conversationSid);
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('NOT_PARTICIPANT');
  });

  it.each<[string, (m: TwilioMessage) => TwilioMessage | null, number, string | null]>([
    ['the body Twilio holds is the envelope', (m) => m, 201, null],
    ['Twilio holds another body (the message was edited)', (m) => ({ ...m, body: 'e2ee1.edited' }), 400, 'HISTORY_MISMATCH'],
    ['Twilio holds it at another index', (m) => ({ ...m, index: 7 }), 400, 'HISTORY_MISMATCH'],
    ['Twilio names another author', (m) => ({ ...m, author: bob.identity }), 400, 'ENVELOPE_SENDER_NOT_AUTHOR'],
    ['Twilio has no such message', () => null, 404, 'NOT_FOUND'],
  ])('checks a backup against the message Twilio holds: %s', async (_, twilioHolds, status, code) => {
    const { conversationSid, message, backup } = aliceMessage();
    participantsList(conversationSid, [[alice.identity, bob.identity]]);
    const held = twilioHolds(message);
    if (held) messageFetch(conversationSid, held);
    else rest('get', `${conversationPath(conversationSid)}/Messages/${message.sid}`).reply(404, twilioError(404));
    const res = await postHistory(server.app, alice, backup);
    expect(res.statusCode, res.body).toBe(status);
    if (code) expect(errorCode(res)).toBe(code);
    expect((await server.store.history(conversationSid, -1, 10)).length).toBe(status === 201 ? 1 : 0);
  });

  it.each<[string, (conversationSid: string, message: TwilioMessage) => void]>([
    ['the participants list fails (500)', (c) => rest('get', `${conversationPath(c)}/Participants`).query(true).reply(500, twilioError(500))],
    ['the participants list is unavailable (503)', (c) => rest('get', `${conversationPath(c)}/Participants`).query(true).reply(503, twilioError(503))],
    [
      'the message fetch fails (502)',
      (c, m) => {
        participantsList(c, [[alice.identity]]);
        rest('get', `${conversationPath(c)}/Messages/${m.sid}`).reply(502, 'Bad Gateway');
      },
    ],
  ])('answers 503 TWILIO_UNAVAILABLE when %s', async (_, twilioFails) => {
    const { conversationSid, message, backup } = aliceMessage();
    twilioFails(conversationSid, message);
    const res = await postHistory(server.app, alice, backup);
    expect(res.statusCode, res.body).toBe(503);
    expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
  });

  it('answers 503 TWILIO_UNAVAILABLE when Twilio cannot be reached (and nothing left the machine)', async () => {
    const res = await read(bob, newSid('CH'));
    expect(res.statusCode).toBe(503);
    expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
    expect(unmatched.splice(0)).toEqual([expect.stringContaining(`${TWILIO_API}${conversationPath('CH')}`)]);
  });

  it('refuses a conversation sid that is a dot segment (400) before asking Twilio anything', async () => {
    // "." or ".." in the REST path would address another resource (…/Services/IS…/Participants).
    for (const sid of ['.', '..']) {
      const res = await server.app.inject({ url: `${ApiPath.history}/${sid.replaceAll('.', '%2E')}?cardId=${bob.card.id}`, headers: bob.headers });
      expect(res.statusCode, res.body).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
      const posted = await postHistory(server.app, alice, { ...aliceMessage().backup, conversationSid: sid });
      expect(posted.statusCode, posted.body).toBe(400);
    }
  });
});

describe('POST /v1/twilio/pre-event', () => {
  type Form = Record<string, string | string[]>;
  const WEBHOOK_URL = PUBLIC_URL + ApiPath.preEvent;

  /** Twilio's signature of a request to `url` with these parameters (repeated ones as arrays). */
  const signatureOf = (params: Form, url = WEBHOOK_URL, authToken = TWILIO.authToken) => twilio.getExpectedTwilioSignature(authToken, url, params);

  function formBody(params: Form): string {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) for (const v of [value].flat()) form.append(key, v);
    return form.toString();
  }

  /** Posts `params` as Twilio does, signed correctly unless a signature (or null: none) is given. */
  function preEvent(params: Form, signature: string | null = signatureOf(params), app = server.app) {
    return app.inject({
      method: 'POST',
      url: ApiPath.preEvent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(signature === null ? {} : { 'x-twilio-signature': signature }) },
      payload: formBody(params),
    });
  }

  /** The parameters of a Conversations pre-event (body only when given). */
  function event(eventType: string, body?: string | string[]): Form {
    return {
      AccountSid: TWILIO.accountSid,
      ChatServiceSid: TWILIO.serviceSid,
      ConversationSid: newSid('CH'),
      EventType: eventType,
      Source: 'SDK',
      ClientIdentity: 'alice',
      RetryCount: '0',
      ...(body === undefined ? {} : { Author: 'alice', Attributes: '{}', Body: body }),
    };
  }

  const envelope = () => seal(alice, newSid('CH'), 'secret').text;

  /** The envelope with its version byte changed (well-formed base64url, unsupported format). */
  const otherVersion = () => {
    const binary = fromB64u(envelope().slice('e2ee1.'.length));
    binary[0] = 2;
    return `e2ee1.${toB64u(binary)}`;
  };

  it('lets onMessageAdd through when the body is an envelope (200)', async () => {
    expect(parseEnvelope(envelope()).recipientCount).toBe(1);
    const res = await preEvent(event('onMessageAdd', envelope()));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('rejects onMessageAdd with a plaintext body (403 ENVELOPE_REQUIRED)', async () => {
    const res = await preEvent(event('onMessageAdd', 'hello in the clear'));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('ENVELOPE_REQUIRED');
  });

  it.each<[string, () => string]>([
    ['truncated', () => envelope().slice(0, -40)],
    ['not base64url', () => `${envelope().slice(0, -8)}!!!!!!!!`],
    ['of another version', otherVersion],
    ['empty', () => ''],
  ])('rejects onMessageUpdate with an envelope that is %s (403 ENVELOPE_REQUIRED)', async (_, body) => {
    const res = await preEvent(event('onMessageUpdate', body()));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('ENVELOPE_REQUIRED');
  });

  it('lets events without a message body through (onConversationAdd: 200)', async () => {
    const res = await preEvent(event('onConversationAdd'));
    expect(res.statusCode, res.body).toBe(200);
  });

  it.each<[string, (params: Form) => string | null]>([
    ['a wrong signature', (p) => signatureOf(p, WEBHOOK_URL, 'another-auth-token')],
    ['no signature', () => null],
    ['a signature for another URL', (p) => signatureOf(p, 'https://evil.example.com/v1/twilio/pre-event')],
    ['a signature for another path', (p) => signatureOf(p, `${PUBLIC_URL}/v1/twilio/post-event`)],
    ['a signature over other parameters', (p) => signatureOf({ ...p, Body: envelope() })],
  ])('refuses %s (403 FORBIDDEN)', async (_, signature) => {
    const params = event('onMessageAdd', 'hello in the clear');
    const res = await preEvent(params, signature(params));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('FORBIDDEN');
  });

  describe('a repeated parameter', () => {
    it('is covered by the signature: an unsigned repeat appended to a signed request is refused (403 FORBIDDEN)', async () => {
      const signed = event('onMessageAdd', envelope());
      const res = await preEvent({ ...signed, Body: [signed.Body as string, 'hello in the clear'] }, signatureOf(signed));
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('FORBIDDEN');
    });

    it('is checked as Twilio signs it (all values): a repeat of another parameter passes (200)', async () => {
      const res = await preEvent({ ...event('onMessageAdd', envelope()), Attributes: ['{}', '{"a":1}'] });
      expect(res.statusCode, res.body).toBe(200);
    });

    it('of Body is refused even when signed: a message has one body (403 ENVELOPE_REQUIRED)', async () => {
      const res = await preEvent(event('onMessageAdd', [envelope(), envelope()]));
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('ENVELOPE_REQUIRED');
    });

    it('of EventType is refused (400)', async () => {
      const res = await preEvent({ ...event('onMessageAdd', 'hello in the clear'), EventType: ['onConversationAdd', 'onMessageAdd'] });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
    });
  });

  it.each<[string, Record<string, string | undefined>]>([
    ['in local mode', {}],
    ['without TWILIO_AUTH_TOKEN', twilioEnv({ TWILIO_AUTH_TOKEN: undefined })],
    ['without PUBLIC_URL', twilioEnv({ PUBLIC_URL: undefined })],
  ])('is unavailable %s (503)', async (_, env) => {
    const unconfigured = await historyServer(env);
    try {
      const params = event('onMessageAdd', envelope());
      const res = await preEvent(params, signatureOf(params), unconfigured.app);
      expect(res.statusCode).toBe(503);
      expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
    } finally {
      await unconfigured.close();
    }
  });
});
