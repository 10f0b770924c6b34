/**
 * Twilio mode: history authorization and checks against Twilio's Conversations REST API (served
 * by nock, answering exactly the requests the twilio package makes), and the pre-event webhook
 * with X-Twilio-Signature. Our server, store and crypto are real; no request leaves the machine.
 */
import nock from 'nock';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiPath, fromB64u, parseEnvelope, toB64u, type HistoryResponse } from '../../shared/index.js';
import { errorCode } from '../support/app.js';
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
} from '../support/history.js';
import {
  JWT_SECRET,
  PUBLIC_URL,
  TWILIO,
  TWILIO_API,
  conversationPath,
  messageFetch,
  newSid,
  participantsList,
  rest,
  twilioEnv,
  twilioError,
  type TwilioMessage,
} from '../support/twilio.js';

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
  const member = (identity: string) => withDevice(server, tokenUser(identity, JWT_SECRET));
  [alice, bob, outsider] = await Promise.all([member('alice'), member('bob'), member('outsider')]);
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

describe('Twilio mode', () => {
  it('registers cards with app tokens from the identity provider (beforeAll), and has no demo sessions', async () => {
    expect(server.config.twilio?.conversationsServiceSid).toBe(TWILIO.serviceSid);
    expect([alice, bob, outsider].map((m) => m.card.identity)).toEqual(['alice', 'bob', 'outsider']);
    expect((await server.app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } })).statusCode).toBe(404);
  });
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

  // The participants cache runs on Date.now(): the clock stands still unless a test moves it.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
  });

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
    const conversationSid = await storedConversation(); // the post fetched the list
    vi.setSystemTime(Date.now() + 29_000);
    expect((await read(bob, conversationSid)).statusCode).toBe(200);
    expect(unmatched, 'the cached list answers: no REST call').toEqual([]);

    vi.setSystemTime(Date.now() + 2_000);
    const again = participantsList(conversationSid, [[alice.identity]]); // bob has left meanwhile
    const res = await read(bob, conversationSid);
    expect(res.statusCode).toBe(403);
    expect(again.isDone()).toBe(true);
  });

  it('asks again about a caller missing from the list once 2 s have passed (someone just added)', async () => {
    const conversationSid = await storedConversation();
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

  it.each(['.', '..'])('refuses the conversation sid "%s" in a backup (400) before asking Twilio anything', async (sid) => {
    // As a segment of the REST path it would address another resource (…/Services/IS…/Participants).
    // (In GET /v1/history/:conversationSid the router already resolves dot segments.)
    const res = await postHistory(server.app, alice, { ...aliceMessage().backup, conversationSid: sid });
    expect(res.statusCode, res.body).toBe(400);
    expect(errorCode(res)).toBe('BAD_REQUEST');
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

  interface PostOptions {
    /** Default: Twilio's signature of `params`; null: no X-Twilio-Signature header. */
    signature?: string | null;
    contentType?: string;
    app?: HistoryServer['app'];
  }

  /** Posts `params` as Twilio does. */
  function preEvent(params: Form, { signature = signatureOf(params), contentType = 'application/x-www-form-urlencoded', app = server.app }: PostOptions = {}) {
    return app.inject({
      method: 'POST',
      url: ApiPath.preEvent,
      headers: { 'content-type': contentType, ...(signature === null ? {} : { 'x-twilio-signature': signature }) },
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
    const body = envelope();
    expect(parseEnvelope(body).recipientCount).toBe(1);
    const res = await preEvent(event('onMessageAdd', body));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('reads the form with a charset parameter in its content type', async () => {
    const res = await preEvent(event('onMessageAdd', 'hello in the clear, ünïcödé'), { contentType: 'application/x-www-form-urlencoded; charset=UTF-8' });
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('ENVELOPE_REQUIRED'); // the signature matched: the form was read as sent
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
    const res = await preEvent(params, { signature: signature(params) });
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('FORBIDDEN');
  });

  describe('a repeated parameter', () => {
    it('is covered by the signature: an unsigned repeat appended to a signed request is refused (403 FORBIDDEN)', async () => {
      const signed = event('onMessageAdd', envelope());
      const res = await preEvent({ ...signed, Body: [signed.Body as string, 'hello in the clear'] }, { signature: signatureOf(signed) });
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
      const res = await preEvent(event('onMessageAdd', envelope()), { app: unconfigured.app });
      expect(res.statusCode).toBe(503);
      expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
    } finally {
      await unconfigured.close();
    }
  });
});
