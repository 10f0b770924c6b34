/**
 * The authorization matrix (issue #8): every route, one test per credential:
 *
 * - no token: no credential at all;
 * - expired: the owner's token, correctly signed, expired (beyond the clock tolerance);
 * - wrong signature: the owner's claims signed with another key;
 * - other identity: a valid token of bob, who takes part in the conversation but does not own
 *   the resource (alice's card, alice's message, alice's card id in a history read);
 * - non-participant: a valid token of mallory, who owns nothing of alice's and is not in the
 *   conversation;
 * - owner: alice's valid token.
 *
 * For the relay the credential is a relay token (expired and wrongly signed ones included); for
 * Twilio's pre-event webhook it is X-Twilio-Signature (see that row). The matrix as measured is
 * printed at the end, for docs/SECURITY.md.
 */
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRelayToken } from '../../server/relay-token.js';
import { ApiPath, trustAppKeys, toB64u, verifyCard, type VerifiedCard } from '../../shared/index.js';
import type { InjectOptions } from 'fastify';
import { bearer, newDevice, postCard, proved, type ProvingDevice, type TestUser } from '../support/app.js';
import { backupOf, localConversation, localMessage, seal, withDevice, type Member } from '../support/history.js';
import { nowSeconds, signJwt } from '../support/jwt.js';
import { RelaySocket } from '../support/relay-socket.js';
import { baseUrl, securityServer, type SecurityServer } from '../support/security.js';
import { JWT_SECRET, PUBLIC_URL, TWILIO, twilioEnv } from '../support/twilio.js';

const SECRET = 'authorization-matrix-identity-provider-secret-0123';
const OTHER_SECRET = 'not-the-identity-provider-secret-at-all-0123456';

const CELLS = ['no token', 'expired', 'wrong signature', 'other identity', 'non-participant', 'owner'] as const;
type Cell = (typeof CELLS)[number];

/** What a cell got: an HTTP status with its error code, or a relay answer code. */
interface Outcome {
  status: number | string;
  code?: string;
}

interface Row {
  route: string;
  expected: Record<Cell, Outcome>;
  run(cell: Cell): Promise<Outcome>;
}

let local: SecurityServer;
/** NEW_DEVICE_POLICY=approval: further devices need a device proof or an approval. */
let approval: SecurityServer;
let twilioMode: SecurityServer;
let relayUrl: string;
let alice: Member;
let bob: Member;
let mallory: Member;
let orgCard: VerifiedCard;
/** Alice's, bob's and mallory's devices on the approval server, and a device of alice's revoked there. */
let onApproval: Record<'alice' | 'bob' | 'mallory', Member>;
let aliceRevoked: ProvingDevice;
let conversationSid: string;
/** Alice's message in the relay, that the relay rows try to edit and read. */
let aliceMessageSid: string;
const measured = new Map<string, Partial<Record<Cell, string>>>();

const user = (identity: string, secret = SECRET, claims: Record<string, unknown> = {}): TestUser => {
  const token = signJwt({ sub: identity, ...claims }, 'HS256', secret);
  return { identity, token, headers: bearer(token) };
};

/** The Authorization header of each cell (alice is the owner). */
function credential(cell: Cell): Record<string, string> {
  switch (cell) {
    case 'no token':
      return {};
    case 'expired':
      return user('alice', SECRET, { exp: nowSeconds() - 120 }).headers;
    case 'wrong signature':
      return user('alice', OTHER_SECRET).headers;
    case 'other identity':
      return bob.headers;
    case 'non-participant':
      return mallory.headers;
    case 'owner':
      return alice.headers;
  }
}

function member(identity: string, server = local): Promise<Member> {
  return withDevice({ app: server.app, trusted: trustAppKeys([toB64u(server.config.appKey.publicKey)]) }, user(identity));
}

const proverOf = (m: Member): ProvingDevice => ({ keys: m.keys, cardId: m.card.id });

/** Runs `work` with a new pending device request of alice's on the approval server, dropped afterwards (at most 5 may wait). */
async function withPendingDevice<T>(work: (cardId: string) => Promise<T>): Promise<T> {
  const pending = await postCard(approval.app, user('alice'), (await newDevice('alice')).request);
  expect(pending.statusCode, pending.body).toBe(202);
  const cardId = pending.json<{ cardId: string }>().cardId;
  try {
    return await work(cardId);
  } finally {
    await approval.store.takePendingDevice(cardId, 'alice', nowSeconds());
  }
}

/**
 * The cell's credential with an X-E2EE-Device proof: by `device`, else by the token holder's own
 * device (alice's for the cells without a valid token of their own).
 */
async function provedRequest(cell: Cell, method: 'GET' | 'POST' | 'DELETE', url: string, members: Record<'alice' | 'bob' | 'mallory', Member>, body?: unknown, device?: ProvingDevice): Promise<InjectOptions> {
  const holder = cell === 'other identity' ? members.bob : cell === 'non-participant' ? members.mallory : members.alice;
  const options = await proved(holder, device ?? proverOf(holder), method, url, body);
  const { authorization: _, ...rest } = options.headers as Record<string, string>;
  return { ...options, headers: { ...rest, ...credential(cell) } };
}

const outcomeOf = (res: { statusCode: number; json<T>(): T }): Outcome =>
  res.statusCode >= 400 ? { status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code } : { status: res.statusCode };

const ok = (status: number): Record<Cell, Outcome> => Object.fromEntries(CELLS.map((c) => [c, { status }])) as Record<Cell, Outcome>;
const UNAUTHORIZED: Outcome = { status: 401, code: 'UNAUTHORIZED' };
const FORBIDDEN: Outcome = { status: 403, code: 'FORBIDDEN' };
const NOT_PARTICIPANT: Outcome = { status: 403, code: 'NOT_PARTICIPANT' };
const NOT_FOUND: Outcome = { status: 404, code: 'NOT_FOUND' };
const DEVICE_PROOF_REQUIRED: Outcome = { status: 401, code: 'DEVICE_PROOF_REQUIRED' };
const DEVICE_REVOKED: Outcome = { status: 403, code: 'DEVICE_REVOKED' };
const authenticated = (other: Outcome, nonParticipant: Outcome, owner: Outcome): Record<Cell, Outcome> => ({
  'no token': UNAUTHORIZED,
  expired: UNAUTHORIZED,
  'wrong signature': UNAUTHORIZED,
  'other identity': other,
  'non-participant': nonParticipant,
  owner,
});

/** A relay token for each cell, or null for none. */
async function relayCredential(cell: Cell): Promise<string | null> {
  const secret = local.app.e2ee.relayTokenSecret;
  switch (cell) {
    case 'no token':
      return null;
    case 'expired':
      return signRelayToken(secret, 'alice', 60, nowSeconds() - 3600);
    case 'wrong signature':
      return signRelayToken(randomBytes(32), 'alice', 600);
    default: {
      const who = cell === 'owner' ? alice : cell === 'other identity' ? bob : mallory;
      const res = await local.app.inject({ url: ApiPath.twilioToken, headers: who.headers });
      return res.json<{ token: string }>().token;
    }
  }
}

/** Runs `op` on the relay with the cell's relay token; the first refusal, or "ok". */
async function relayOutcome(cell: Cell, op: string, params: Record<string, unknown>): Promise<Outcome> {
  const socket = await RelaySocket.open(relayUrl);
  try {
    const token = await relayCredential(cell);
    if (token !== null) {
      const auth = await socket.request('auth', { token });
      if (!auth.ok) return { status: 'relay error', code: auth.error!.code };
    }
    const answer = await socket.request(op, params);
    return answer.ok ? { status: 'ok' } : { status: 'relay error', code: answer.error!.code };
  } finally {
    await socket.close();
  }
}

const RELAY_UNAUTHORIZED: Outcome = { status: 'relay error', code: 'UNAUTHORIZED' };
const RELAY_FORBIDDEN: Outcome = { status: 'relay error', code: 'FORBIDDEN' };

const rows: Row[] = [
  {
    route: 'GET /v1/twilio-token (local)',
    expected: authenticated({ status: 200 }, { status: 200 }, { status: 200 }),
    async run(cell) {
      const res = await local.app.inject({ url: ApiPath.twilioToken, headers: credential(cell) });
      // Always a token for the caller's own identity, never the owner's.
      if (res.statusCode === 200) expect(res.json<{ identity: string }>().identity).toBe({ owner: 'alice', 'other identity': 'bob' }[cell as string] ?? 'mallory');
      return outcomeOf(res);
    },
  },
  {
    route: "POST /v1/cards (a card of alice's)",
    expected: authenticated(FORBIDDEN, FORBIDDEN, { status: 201 }),
    async run(cell) {
      const { request } = await newDevice('alice');
      return outcomeOf(await local.app.inject({ method: 'POST', url: ApiPath.cards, headers: credential(cell), payload: request }));
    },
  },
  {
    route: 'GET /v1/cards?identity=alice',
    // The directory is readable by every authenticated user: cards are public keys.
    expected: authenticated({ status: 200 }, { status: 200 }, { status: 200 }),
    run: async (cell) => outcomeOf(await local.app.inject({ url: `${ApiPath.cards}?identity=alice`, headers: credential(cell) })),
  },
  {
    route: "GET /v1/cards/:id (alice's card)",
    expected: authenticated({ status: 200 }, { status: 200 }, { status: 200 }),
    run: async (cell) => outcomeOf(await local.app.inject({ url: ApiPath.card(alice.card.id), headers: credential(cell) })),
  },
  {
    route: "DELETE /v1/cards/:id (alice's card; the caller's own device proof)",
    expected: authenticated(FORBIDDEN, FORBIDDEN, { status: 200 }),
    async run(cell) {
      // The owner revokes a card of her own made for this cell; the others try alice's main card.
      let id = alice.card.id;
      if (cell === 'owner') {
        const { request } = await newDevice('alice');
        id = (await local.app.inject({ method: 'POST', url: ApiPath.cards, headers: alice.headers, payload: request })).json<{ id: string }>().id;
      }
      const outcome = outcomeOf(await local.app.inject(await provedRequest(cell, 'DELETE', ApiPath.card(id), { alice, bob, mallory })));
      if (cell !== 'owner') expect((await local.store.getCard(alice.card.id))?.revokedAt).toBeNull();
      return outcome;
    },
  },
  {
    route: "DELETE /v1/cards/:id (alice's card; the app token alone, no device proof)",
    expected: authenticated(DEVICE_PROOF_REQUIRED, DEVICE_PROOF_REQUIRED, DEVICE_PROOF_REQUIRED),
    async run(cell) {
      const outcome = outcomeOf(await local.app.inject({ method: 'DELETE', url: ApiPath.card(alice.card.id), headers: credential(cell) }));
      expect((await local.store.getCard(alice.card.id))?.revokedAt).toBeNull();
      return outcome;
    },
  },
  {
    route: "DELETE /v1/cards/:id (alice's card; the proof of a revoked device of alice's)",
    expected: authenticated(FORBIDDEN, FORBIDDEN, DEVICE_REVOKED),
    async run(cell) {
      const url = ApiPath.card(onApproval.alice.card.id);
      const outcome = outcomeOf(await approval.app.inject(await provedRequest(cell, 'DELETE', url, onApproval, undefined, aliceRevoked)));
      expect((await approval.store.getCard(onApproval.alice.card.id))?.revokedAt).toBeNull();
      return outcome;
    },
  },
  {
    route: "POST /v1/cards (a further card of alice's; approval policy, the app token alone)",
    // The owner's token alone only asks: 202, a request an existing device must approve.
    expected: authenticated(FORBIDDEN, FORBIDDEN, { status: 202 }),
    async run(cell) {
      const { request } = await newDevice('alice');
      const res = await approval.app.inject({ method: 'POST', url: ApiPath.cards, headers: credential(cell), payload: request });
      if (res.statusCode === 202) await approval.store.takePendingDevice(res.json<{ cardId: string }>().cardId, 'alice', nowSeconds());
      expect((await approval.store.activeCards(['alice'])).get('alice')).toHaveLength(1);
      return outcomeOf(res);
    },
  },
  {
    route: "POST /v1/cards (a further card of alice's; approval policy, the proof of a revoked device of alice's)",
    expected: authenticated(FORBIDDEN, FORBIDDEN, DEVICE_REVOKED),
    async run(cell) {
      const { request } = await newDevice('alice');
      const outcome = outcomeOf(await approval.app.inject(await provedRequest(cell, 'POST', ApiPath.cards, onApproval, request, aliceRevoked)));
      expect((await approval.store.activeCards(['alice'])).get('alice')).toHaveLength(1);
      return outcome;
    },
  },
  {
    route: "POST /v1/device-requests/:cardId/approve (alice's pending device; the caller's own device proof)",
    expected: authenticated(NOT_FOUND, NOT_FOUND, { status: 201 }),
    run: (cell) =>
      withPendingDevice(async (cardId) => {
        const outcome = outcomeOf(await approval.app.inject(await provedRequest(cell, 'POST', ApiPath.approveDevice(cardId), onApproval)));
        if (cell === 'owner') await approval.store.revokeCard(cardId, nowSeconds()); // back to one active card
        else expect(await approval.store.getCard(cardId)).toBeNull();
        return outcome;
      }),
  },
  {
    route: "GET /v1/device-requests/:cardId (alice's pending device; the app token alone)",
    expected: authenticated(NOT_FOUND, NOT_FOUND, { status: 200 }),
    run: (cell) => withPendingDevice(async (cardId) => outcomeOf(await approval.app.inject({ url: ApiPath.deviceRequest(cardId), headers: credential(cell) }))),
  },
  {
    route: "POST /v1/history (a backup of alice's message)",
    // A participant may back up any message it received (backup mode 'send+receive'): the
    // original signature is checked, so it cannot back up something alice did not send.
    expected: authenticated({ status: 201 }, NOT_PARTICIPANT, { status: 201 }),
    async run(cell) {
      const sealed = seal(alice, conversationSid, `backup for ${cell}`, [bob]);
      const message = await localMessage(local.store, conversationSid, alice.identity, sealed.text);
      const body = backupOf(message, conversationSid, sealed, orgCard);
      return outcomeOf(await local.app.inject({ method: 'POST', url: ApiPath.history, headers: credential(cell), payload: body }));
    },
  },
  {
    route: "GET /v1/history/:sid (cardId = alice's card)",
    expected: authenticated(FORBIDDEN, NOT_PARTICIPANT, { status: 200 }),
    run: async (cell) => outcomeOf(await local.app.inject({ url: `${ApiPath.historyOf(conversationSid)}?cardId=${alice.card.id}`, headers: credential(cell) })),
  },
  {
    route: "GET /v1/history/:sid (cardId = the caller's own card)",
    expected: authenticated({ status: 200 }, NOT_PARTICIPANT, { status: 200 }),
    async run(cell) {
      const own = cell === 'other identity' ? bob : cell === 'non-participant' ? mallory : alice;
      return outcomeOf(await local.app.inject({ url: `${ApiPath.historyOf(conversationSid)}?cardId=${own.card.id}`, headers: credential(cell) }));
    },
  },
  ...(
    [
      ['POST /v1/session (demo mode, public)', { method: 'POST', url: ApiPath.session, payload: { identity: 'someone' } }],
      ['GET /v1/app-key (public)', { url: ApiPath.appKey }],
      ['GET /v1/org-card (public)', { url: ApiPath.orgCard }],
      ['GET /healthz (public)', { url: ApiPath.healthz }],
      ['GET /readyz (public)', { url: ApiPath.readyz }],
    ] as const
  ).map(([route, req]): Row => ({
    route,
    // Credentials are ignored, good or bad: the answer is the same for everyone.
    expected: ok(200),
    run: async (cell) => outcomeOf(await local.app.inject({ ...req, headers: credential(cell) })),
  })),
  {
    route: "relay updateMessageBody (alice's message)",
    expected: {
      'no token': RELAY_UNAUTHORIZED,
      expired: RELAY_UNAUTHORIZED,
      'wrong signature': RELAY_UNAUTHORIZED,
      'other identity': RELAY_FORBIDDEN, // only the author may edit
      'non-participant': RELAY_FORBIDDEN,
      owner: { status: 'ok' },
    },
    async run(cell) {
      const outcome = await relayOutcome(cell, 'updateMessageBody', { conversationSid, messageSid: aliceMessageSid, body: `e2ee1.edited-by-${cell.replace(/ /g, '-')}` });
      const stored = await local.store.getMessage(conversationSid, aliceMessageSid);
      if (cell !== 'owner') expect(stored?.body).not.toContain(cell.replace(/ /g, '-'));
      return outcome;
    },
  },
  {
    route: 'relay getMessages (the conversation)',
    expected: {
      'no token': RELAY_UNAUTHORIZED,
      expired: RELAY_UNAUTHORIZED,
      'wrong signature': RELAY_UNAUTHORIZED,
      'other identity': { status: 'ok' }, // bob takes part
      'non-participant': RELAY_FORBIDDEN,
      owner: { status: 'ok' },
    },
    run: (cell) => relayOutcome(cell, 'getMessages', { conversationSid, pageSize: 10 }),
  },
  {
    route: 'relay sendMessage (the conversation)',
    expected: {
      'no token': RELAY_UNAUTHORIZED,
      expired: RELAY_UNAUTHORIZED,
      'wrong signature': RELAY_UNAUTHORIZED,
      'other identity': { status: 'ok' },
      'non-participant': RELAY_FORBIDDEN,
      owner: { status: 'ok' },
    },
    run: (cell) => relayOutcome(cell, 'sendMessage', { conversationSid, body: 'e2ee1.AAAA' }),
  },
  ...(
    [
      ['updateMessageAttributes', "alice's message", RELAY_FORBIDDEN, () => ({ messageSid: aliceMessageSid, attributes: { seen: true } })], // only the author
      ['updateConversation', 'the conversation', { status: 'ok' }, () => ({ friendlyName: 'renamed' })],
      ['typing', 'the conversation', { status: 'ok' }, () => ({})],
      ['updateLastReadMessageIndex', 'the conversation', { status: 'ok' }, () => ({ index: 0 })],
      ['getUnreadMessagesCount', 'the conversation', { status: 'ok' }, () => ({})],
    ] as const
  ).map(([op, what, otherIdentity, params]): Row => ({
    route: `relay ${op} (${what})`,
    expected: {
      'no token': RELAY_UNAUTHORIZED,
      expired: RELAY_UNAUTHORIZED,
      'wrong signature': RELAY_UNAUTHORIZED,
      'other identity': otherIdentity, // bob takes part
      'non-participant': RELAY_FORBIDDEN,
      owner: { status: 'ok' },
    },
    run: (cell) => relayOutcome(cell, op, { conversationSid, ...params() }),
  })),
  {
    route: 'GET /v1/twilio-token (Twilio mode)',
    expected: authenticated({ status: 200 }, { status: 200 }, { status: 200 }),
    async run(cell) {
      // Twilio mode's identity provider has its own secret: the cells' tokens are re-signed with it.
      const headers: Record<string, Record<string, string>> = {
        'no token': {},
        expired: bearer(signJwt({ sub: 'alice', exp: nowSeconds() - 120 }, 'HS256', JWT_SECRET)),
        'wrong signature': bearer(signJwt({ sub: 'alice' }, 'HS256', OTHER_SECRET)),
        'other identity': bearer(signJwt({ sub: 'bob' }, 'HS256', JWT_SECRET)),
        'non-participant': bearer(signJwt({ sub: 'mallory' }, 'HS256', JWT_SECRET)),
        owner: bearer(signJwt({ sub: 'alice' }, 'HS256', JWT_SECRET)),
      };
      const res = await twilioMode.app.inject({ url: ApiPath.twilioToken, headers: headers[cell]! });
      if (res.statusCode === 200) expect(res.json<{ mode: string }>().mode).toBe('twilio');
      return outcomeOf(res);
    },
  },
  {
    // The webhook's credential is Twilio's signature over PUBLIC_URL + path and the form:
    // expired = a genuine signature of another (earlier) request; wrong signature = signed with
    // another auth token; other identity = signed for another URL (another account's webhook);
    // non-participant = an app bearer token instead of a signature; owner = Twilio's signature.
    route: 'POST /v1/twilio/pre-event (X-Twilio-Signature)',
    expected: {
      'no token': FORBIDDEN,
      expired: FORBIDDEN,
      'wrong signature': FORBIDDEN,
      'other identity': FORBIDDEN,
      'non-participant': FORBIDDEN,
      owner: { status: 200 },
    },
    async run(cell) {
      const params = { EventType: 'onMessageAdd', ConversationSid: `CH${'0'.repeat(32)}`, Author: 'alice', Body: seal(alice, `CH${'0'.repeat(32)}`, 'hi').text };
      const url = PUBLIC_URL + ApiPath.preEvent;
      const signature: Record<Cell, Record<string, string>> = {
        'no token': {},
        expired: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO.authToken, url, { ...params, Body: 'an earlier message' }) },
        'wrong signature': { 'x-twilio-signature': twilio.getExpectedTwilioSignature('another-auth-token', url, params) },
        'other identity': { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO.authToken, 'https://other.example.com/v1/twilio/pre-event', params) },
        'non-participant': alice.headers,
        owner: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO.authToken, url, params) },
      };
      return outcomeOf(
        await twilioMode.app.inject({
          method: 'POST',
          url: ApiPath.preEvent,
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...signature[cell] },
          payload: new URLSearchParams(params).toString(),
        }),
      );
    },
  },
];

beforeAll(async () => {
  local = await securityServer({ env: { DEMO_MODE: 'true', AUTH_JWT_SECRET: SECRET }, listen: true });
  twilioMode = await securityServer({ env: twilioEnv() });
  approval = await securityServer({ env: { DEMO_MODE: 'true', AUTH_JWT_SECRET: SECRET, NEW_DEVICE_POLICY: 'approval' } });
  const first = await Promise.all(['alice', 'bob', 'mallory'].map((identity) => member(identity, approval)));
  onApproval = { alice: first[0]!, bob: first[1]!, mallory: first[2]! };
  // A second device of alice's (approved by her first), then revoked: a stolen device, contained.
  const stolen = await newDevice('alice');
  const added = await postCard(approval.app, onApproval.alice, stolen.request, proverOf(onApproval.alice));
  aliceRevoked = { keys: stolen.keys, cardId: added.json<{ id: string }>().id };
  await approval.store.revokeCard(aliceRevoked.cardId, nowSeconds());
  orgCard = verifyCard((await local.app.inject({ url: ApiPath.orgCard })).json(), { trustedAppKeys: trustAppKeys([toB64u(local.config.appKey.publicKey)]) });
  [alice, bob, mallory] = [await member('alice'), await member('bob'), await member('mallory')];
  conversationSid = await localConversation(local.store, [alice.identity, bob.identity]);
  const sealed = seal(alice, conversationSid, 'the first message', [bob]);
  aliceMessageSid = (await localMessage(local.store, conversationSid, alice.identity, sealed.text)).sid;
  relayUrl = baseUrl(local.app).replace(/^http/, 'ws') + ApiPath.relay;
});

afterAll(async () => {
  await local?.close();
  await approval?.close();
  await twilioMode?.close();
  const show = (o: Partial<Record<Cell, string>>) => CELLS.map((c) => o[c] ?? '?').join(' | ');
  console.info(
    ['[security] authorization matrix as measured:', `| route | ${CELLS.join(' | ')} |`, `|---|${CELLS.map(() => '---').join('|')}|`, ...[...measured].map(([route, o]) => `| ${route} | ${show(o)} |`)].join('\n'),
  );
});

const label = (o: Outcome): string => (o.code ? `${o.status} ${o.code}` : String(o.status));

describe.each(rows)('$route', (row) => {
  it.each(CELLS)('%s', async (cell) => {
    const got = await row.run(cell);
    measured.set(row.route, { ...measured.get(row.route), [cell]: label(got) });
    expect(label(got)).toBe(label(row.expected[cell]));
  });
});
