/**
 * The pre-event webhook on media messages (onMessageAdd with Twilio's Media parameter), signed as
 * Twilio signs: accepted when the body is an envelope and every blob is opaque
 * (application/octet-stream), refused (403 ENVELOPE_REQUIRED, so Twilio rejects the message)
 * when the body is plaintext or missing, or a blob carries its real type.
 */
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPath } from '../../shared/index.js';
import { errorCode } from '../support/app.js';
import { historyServer, seal, tokenUser, withDevice, type HistoryServer, type Member } from '../support/history.js';
import { JWT_SECRET, PUBLIC_URL, TWILIO, newSid, twilioEnv } from '../support/twilio.js';

type Form = Record<string, string | string[]>;
let server: HistoryServer;
let alice: Member;

beforeAll(async () => {
  server = await historyServer(twilioEnv());
  alice = await withDevice(server, tokenUser('alice', JWT_SECRET));
});

afterAll(async () => {
  await server?.close();
});

function preEvent(params: Form) {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) for (const v of [value].flat()) form.append(name, v);
  return server.app.inject({
    method: 'POST',
    url: ApiPath.preEvent,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO.authToken, PUBLIC_URL + ApiPath.preEvent, params),
    },
    payload: form.toString(),
  });
}

/** Twilio's Media parameter: one item per blob. */
const media = (...types: unknown[]) =>
  JSON.stringify(types.map((ContentType, i) => ({ Sid: newSid('ME'), Filename: `${String(i).padStart(32, '0')}.bin`, ContentType, Size: 1024, Category: 'media' })));

/** An onMessageAdd with media (and a body when given). */
function mediaMessage(mediaParam: string | string[], body?: string): Form {
  const conversationSid = newSid('CH');
  return {
    AccountSid: TWILIO.accountSid,
    ChatServiceSid: TWILIO.serviceSid,
    ConversationSid: conversationSid,
    EventType: 'onMessageAdd',
    Source: 'SDK',
    ClientIdentity: 'alice',
    Author: 'alice',
    Attributes: '{}',
    Media: mediaParam,
    ...(body === undefined ? {} : { Body: body }),
  };
}

const envelope = () => seal(alice, newSid('CH'), 'a photo').text;

describe('POST /v1/twilio/pre-event with media', () => {
  it('accepts media when the body is an envelope and every blob is application/octet-stream', async () => {
    for (const m of [media('application/octet-stream'), media(...Array(10).fill('application/octet-stream')), '[]']) {
      const res = await preEvent(mediaMessage(m, envelope()));
      expect(res.statusCode, res.body).toBe(200);
    }
  });

  it.each<[string, string | undefined]>([
    ['plaintext', 'look at this photo'],
    ['missing', undefined],
    ['empty', ''],
  ])('refuses media with a body that is %s', async (_, body) => {
    const res = await preEvent(mediaMessage(media('application/octet-stream'), body));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('ENVELOPE_REQUIRED');
  });

  it.each<[string, string | string[]]>([
    ['its real content type', media('image/png')],
    ['a real type after an opaque one', media('application/octet-stream', 'application/pdf')],
    ['no content type', media(undefined)],
    ['a type with parameters', media('application/octet-stream; name=photo.png')],
    ['Media that is not JSON', '{not json'],
    ['Media that is not a list', JSON.stringify({ ContentType: 'application/octet-stream' })],
    ['Media repeated', [media('application/octet-stream'), media('application/octet-stream')]],
  ])('refuses a blob with %s, even under an envelope', async (_, mediaParam) => {
    const res = await preEvent(mediaMessage(mediaParam, envelope()));
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('ENVELOPE_REQUIRED');
    expect(res.json<{ error: { message: string } }>().error.message).toMatch(/media|Media/);
  });
});
