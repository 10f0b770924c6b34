/**
 * Twilio mode for the tests: a configuration with Twilio credentials (and app tokens from the
 * team's identity provider, HS256), and Twilio's Conversations REST API as nock serves it,
 * answering exactly the requests the twilio package makes (captured from nock's unmatched
 * requests: GET …/Participants?PageSize=1000 and GET …/Messages/{IMxxx}, with the API key as
 * basic auth), in Twilio's JSON shapes.
 */
import nock from 'nock';
import { TEST_APP_KEY, TEST_ORG_KEY } from './env.js';

export const TWILIO = {
  accountSid: `AC${'a1'.repeat(16)}`,
  apiKey: `SK${'b2'.repeat(16)}`,
  apiSecret: 'api-secret-for-the-tests',
  serviceSid: `IS${'c3'.repeat(16)}`,
  authToken: 'auth-token-for-the-tests',
};
/** The Twilio credentials as the server reads them from its environment. */
export const TWILIO_CREDENTIALS_ENV = {
  TWILIO_ACCOUNT_SID: TWILIO.accountSid,
  TWILIO_API_KEY: TWILIO.apiKey,
  TWILIO_API_SECRET: TWILIO.apiSecret,
  TWILIO_CONVERSATIONS_SERVICE_SID: TWILIO.serviceSid,
};
export const PUBLIC_URL = 'https://chat.example.com';
export const JWT_SECRET = 'twilio-mode-test-secret-0123456789abcdef';

/** Twilio mode: Twilio credentials, app tokens from the team's identity provider (no demo mode). */
export function twilioEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    APP_KEY: TEST_APP_KEY,
    ORG_KEY: TEST_ORG_KEY,
    AUTH_JWT_SECRET: JWT_SECRET,
    ...TWILIO_CREDENTIALS_ENV,
    TWILIO_AUTH_TOKEN: TWILIO.authToken,
    PUBLIC_URL,
    ...overrides,
  };
}

export const TWILIO_API = 'https://conversations.twilio.com';
let sidCounter = 0;
export const newSid = (prefix: string): string => `${prefix}${(++sidCounter).toString(16).padStart(32, '0')}`;
export const conversationPath = (conversationSid: string): string => `/v1/Services/${TWILIO.serviceSid}/Conversations/${conversationSid}`;
const twilioDate = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A request to the REST API with the configured API key (the one thing every route checks). */
export function rest(method: 'get', path: string): nock.Interceptor {
  return nock(TWILIO_API)[method](path).basicAuth({ user: TWILIO.apiKey, pass: TWILIO.apiSecret });
}

/** The participants list, as the twilio package asks for it (PageSize=1000), on one or more pages. */
export function participantsList(conversationSid: string, pages: readonly (readonly string[])[]): nock.Scope {
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

export interface TwilioMessage {
  sid: string;
  index: number;
  author: string | null;
  body: string | null;
  dateCreatedMs?: number;
}

/**
 * Twilio holds message `m`: every fetch of it gets it (a stored backup fetches it twice, before
 * and after storing). Expected at least once.
 */
export function messageFetch(conversationSid: string, m: TwilioMessage): nock.Scope {
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
  }).persist();
}

/** Twilio's error body for `status`. */
export function twilioError(status: number) {
  return { code: status === 404 ? 20404 : 20500, message: status === 404 ? 'The requested resource was not found' : 'Internal Server Error', more_info: 'https://www.twilio.com/docs/errors', status };
}
