/**
 * Twilio mode: history authorization and checks against Twilio's Conversations REST API (served
 * by nock, answering exactly the requests the twilio package makes), the pre-event webhook with
 * X-Twilio-Signature, and a removed message's history copy deleted (the post-event webhook, the
 * DELETE route, a backup racing the removal). Our server, store and crypto are real; no request
 * leaves the machine.
 */
import nock from 'nock';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiPath, fromB64u, parseEnvelope, toB64u, type HistoryResponse } from '../../shared/index.js';
import { errorCode, type TestUser } from '../support/app.js';
import { holdNextPut } from '../support/hold.js';
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

type Form = Record<string, string | string[]>;
const WEBHOOK_URL = PUBLIC_URL + ApiPath.preEvent;
const POST_EVENT_URL = PUBLIC_URL + ApiPath.postEvent;

/** Twilio's signature of a request to `url` with these parameters (repeated ones as arrays). */
const signatureOf = (params: Form, url = WEBHOOK_URL, authToken = TWILIO.authToken) => twilio.getExpectedTwilioSignature(authToken, url, params);

function formBody(params: Form): string {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) for (const v of [value].flat()) form.append(key, v);
  return form.toString();
}

interface PostOptions {
  /** Default: Twilio's signature of `params` for the webhook's URL; null: no X-Twilio-Signature header. */
  signature?: string | null;
  contentType?: string;
  app?: HistoryServer['app'];
}

/** Posts `params` to the webhook at `path` as Twilio does. */
function webhook(path: string, params: Form, { signature = signatureOf(params, PUBLIC_URL + path), contentType = 'application/x-www-form-urlencoded', app = server.app }: PostOptions = {}) {
  return app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': contentType, ...(signature === null ? {} : { 'x-twilio-signature': signature }) },
    payload: formBody(params),
  });
}

describe('POST /v1/twilio/pre-event', () => {
  const preEvent = (params: Form, options?: PostOptions) => webhook(ApiPath.preEvent, params, options);

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
    ['a signature for another path', (p) => signatureOf(p, POST_EVENT_URL)],
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

describe('a removed message\'s history copy', () => {
  // The participants cache runs on Date.now(): frozen, one list per conversation serves every request.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
  });

  /** A conversation of alice and bob where Twilio holds alice's messages with these bodies, each backed up. */
  async function backedUp(...bodies: string[]): Promise<{ conversationSid: string; messages: TwilioMessage[] }> {
    const conversationSid = newSid('CH');
    participantsList(conversationSid, [[alice.identity, bob.identity]]);
    const messages = bodies.map((body, index) => {
      const sealed = seal(alice, conversationSid, body, [bob]);
      return { sealed, message: { sid: newSid('IM'), index, author: alice.identity, body: sealed.text } };
    });
    for (const { sealed, message } of messages) {
      messageFetch(conversationSid, message);
      const res = await postHistory(server.app, alice, backupOf(message, conversationSid, sealed, server.orgCard!));
      expect(res.statusCode, res.body).toBe(201);
    }
    return { conversationSid, messages: messages.map((m) => m.message) };
  }

  /** Withdraws messageFetch's answer for the message; returns the REST path, to answer it otherwise. */
  function withdrawMessageFetch(conversationSid: string, message: TwilioMessage): string {
    const path = `${conversationPath(conversationSid)}/Messages/${message.sid}`;
    nock.removeInterceptor({ proto: 'https', hostname: new URL(TWILIO_API).hostname, port: 443, path, method: 'GET' });
    return path;
  }

  /** Twilio removes the message: from now on a fetch of it answers 404 (and one is expected). */
  function removeAtTwilio(conversationSid: string, message: TwilioMessage): void {
    rest('get', withdrawMessageFetch(conversationSid, message)).reply(404, twilioError(404)).persist();
  }

  /** What bob reads from history, opened and verified against alice's card. */
  async function bobReads(conversationSid: string): Promise<string[]> {
    const res = await readHistory(server.app, bob, conversationSid, { cardId: bob.card.id });
    expect(res.statusCode, res.body).toBe(200);
    return openHistory(res.json<HistoryResponse>().messages, bob, conversationSid, [alice.card]);
  }

  /** The form of a Conversations post-event about `message` (Twilio's parameters for message events). */
  const postEventForm = (eventType: string, conversationSid: string, message: TwilioMessage): Form => ({
    AccountSid: TWILIO.accountSid,
    ChatServiceSid: TWILIO.serviceSid,
    ConversationSid: conversationSid,
    EventType: eventType,
    MessageSid: message.sid,
    Index: String(message.index),
    Author: alice.identity,
    Body: message.body ?? '',
    Attributes: '{}',
    Source: 'SDK',
    ClientIdentity: alice.identity,
    RetryCount: '0',
  });
  const postEvent = (params: Form, options?: PostOptions) => webhook(ApiPath.postEvent, params, options);

  describe('POST /v1/twilio/post-event', () => {
    it('deletes the copy of the message named by onMessageRemoved (200): bob reads the others; again, still 200', async () => {
      const { conversationSid, messages } = await backedUp('sent by mistake', 'the right one');
      const event = postEventForm('onMessageRemoved', conversationSid, messages[0]!);
      const res = await postEvent(event);
      expect(res.statusCode, res.body).toBe(200);
      expect(await bobReads(conversationSid)).toEqual(['the right one']);
      expect((await postEvent(event)).statusCode).toBe(200); // Twilio may deliver an event twice
      expect(await bobReads(conversationSid)).toEqual(['the right one']);
    });

    it.each(['onMessageAdded', 'onMessageUpdated', 'onConversationRemoved', 'onParticipantRemoved'])('answers %s 200 and deletes nothing', async (eventType) => {
      const { conversationSid, messages } = await backedUp('kept');
      const res = await postEvent(postEventForm(eventType, conversationSid, messages[0]!));
      expect(res.statusCode, res.body).toBe(200);
      expect(await bobReads(conversationSid)).toEqual(['kept']);
    });

    it.each<[string, (params: Form) => string | null]>([
      ['a wrong signature', (p) => signatureOf(p, POST_EVENT_URL, 'another-auth-token')],
      ['no signature', () => null],
      ['a signature for the pre-event URL', (p) => signatureOf(p, WEBHOOK_URL)],
      ['a signature over other parameters', (p) => signatureOf({ ...p, MessageSid: newSid('IM') }, POST_EVENT_URL)],
    ])('refuses %s (403 FORBIDDEN) and deletes nothing', async (_, signature) => {
      const { conversationSid, messages } = await backedUp('kept');
      const event = postEventForm('onMessageRemoved', conversationSid, messages[0]!);
      const res = await postEvent(event, { signature: signature(event) });
      expect(res.statusCode).toBe(403);
      expect(errorCode(res)).toBe('FORBIDDEN');
      expect(await bobReads(conversationSid)).toEqual(['kept']);
    });

    it.each<[string, (event: Form) => Form]>([
      ['without MessageSid', ({ MessageSid: _, ...rest }) => rest],
      ['with an empty ConversationSid', (event) => ({ ...event, ConversationSid: '' })],
      ['with MessageSid twice', (event) => ({ ...event, MessageSid: [event.MessageSid as string, newSid('IM')] })],
    ])('refuses a signed onMessageRemoved %s (400 BAD_REQUEST) and deletes nothing', async (_, change) => {
      const { conversationSid, messages } = await backedUp('kept');
      const res = await postEvent(change(postEventForm('onMessageRemoved', conversationSid, messages[0]!)));
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('BAD_REQUEST');
      expect(await bobReads(conversationSid)).toEqual(['kept']);
    });

    it('is unavailable without TWILIO_AUTH_TOKEN (503), as the pre-event webhook', async () => {
      const unconfigured = await historyServer(twilioEnv({ TWILIO_AUTH_TOKEN: undefined }));
      try {
        const res = await postEvent(postEventForm('onMessageRemoved', newSid('CH'), { sid: newSid('IM'), index: 0, author: 'alice', body: '' }), { app: unconfigured.app });
        expect(res.statusCode).toBe(503);
        expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
      } finally {
        await unconfigured.close();
      }
    });
  });

  describe('DELETE /v1/history/:conversationSid/:messageSid', () => {
    const deleteCopy = (user: TestUser, conversationSid: string, message: TwilioMessage) =>
      server.app.inject({ method: 'DELETE', url: ApiPath.historyMessage(conversationSid, message.sid), headers: user.headers });

    it('deletes the copy once Twilio no longer holds the message (200 {deleted: true}; again {deleted: false})', async () => {
      const { conversationSid, messages } = await backedUp('sent by mistake', 'the right one');
      removeAtTwilio(conversationSid, messages[0]!);
      const res = await deleteCopy(alice, conversationSid, messages[0]!);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ deleted: true });
      expect(await bobReads(conversationSid)).toEqual(['the right one']);
      expect((await deleteCopy(alice, conversationSid, messages[0]!)).json()).toEqual({ deleted: false });
    });

    it('refuses while Twilio holds the message (409 MESSAGE_NOT_REMOVED), and anyone not in the conversation (403 NOT_PARTICIPANT)', async () => {
      const { conversationSid, messages } = await backedUp('still here');
      const held = await deleteCopy(bob, conversationSid, messages[0]!);
      expect(held.statusCode).toBe(409);
      expect(errorCode(held)).toBe('MESSAGE_NOT_REMOVED');
      const outsiders = await deleteCopy(outsider, conversationSid, messages[0]!);
      expect(outsiders.statusCode).toBe(403);
      expect(errorCode(outsiders)).toBe('NOT_PARTICIPANT');
      expect(await bobReads(conversationSid)).toEqual(['still here']);
    });
  });

  it('a backup in flight when onMessageRemoved arrives keeps no copy (404 NOT_FOUND)', async () => {
    const conversationSid = newSid('CH');
    participantsList(conversationSid, [[alice.identity, bob.identity]]);
    const sealed = seal(alice, conversationSid, 'unsent at once', [bob]);
    const message: TwilioMessage = { sid: newSid('IM'), index: 0, author: alice.identity, body: sealed.text };
    messageFetch(conversationSid, message);
    const held = holdNextPut(server.store);
    const posting = postHistory(server.app, alice, backupOf(message, conversationSid, sealed, server.orgCard!));
    await held.reached; // Twilio held the message when the backup checked it; the copy is not stored yet
    removeAtTwilio(conversationSid, message);
    expect((await postEvent(postEventForm('onMessageRemoved', conversationSid, message))).statusCode).toBe(200); // nothing to delete yet
    held.release();
    const res = await posting;
    expect(res.statusCode, res.body).toBe(404);
    expect(errorCode(res)).toBe('NOT_FOUND');
    expect(await bobReads(conversationSid)).toEqual([]);
  });

  it('keeps no copy when Twilio fails to confirm the message after it was stored (503 TWILIO_UNAVAILABLE); the retry stores it', async () => {
    const conversationSid = newSid('CH');
    participantsList(conversationSid, [[alice.identity, bob.identity]]);
    const sealed = seal(alice, conversationSid, 'backed up on the second try', [bob]);
    const message: TwilioMessage = { sid: newSid('IM'), index: 0, author: alice.identity, body: sealed.text };
    const backup = backupOf(message, conversationSid, sealed, server.orgCard!);
    messageFetch(conversationSid, message);
    const held = holdNextPut(server.store);
    const posting = postHistory(server.app, alice, backup);
    await held.reached;
    rest('get', withdrawMessageFetch(conversationSid, message)).reply(502, 'Bad Gateway');
    held.release();
    const res = await posting;
    expect(res.statusCode, res.body).toBe(503);
    expect(errorCode(res)).toBe('TWILIO_UNAVAILABLE');
    expect(await bobReads(conversationSid)).toEqual([]);

    messageFetch(conversationSid, message);
    expect((await postHistory(server.app, alice, backup)).statusCode).toBe(201);
    expect(await bobReads(conversationSid)).toEqual(['backed up on the second try']);
  });
});

