/**
 * Hostile frames on the local relay's WebSocket (issue #8, the relay part of "every route"):
 * generated frames that are not JSON, binary, deeply nested, with unknown or polluting ops, ids
 * of every type, and every op with wrong-typed, empty, huge, SQL-injection and path-trick
 * parameters, before and after authentication. Every frame gets an answer; a refusal has a code
 * and is never INTERNAL (the relay's 5xx); a refused frame leaves the store as it was; what an
 * accepted frame stored is exactly what was sent; the socket stays open and the server healthy.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPath } from '../../shared/api.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { session } from '../support/app.js';
import { PROTO_KEYS, deepNesting, hostileString, hostileValue } from '../support/hostile.js';
import { RelaySocket, type RelayAnswer } from '../support/relay-socket.js';
import { baseUrl, prototypeFingerprint, securityServer, type SecurityServer } from '../support/security.js';

const OPS = ['auth', 'updateToken', 'createConversation', 'getConversation', 'listConversations', 'join', 'add', 'removeParticipant', 'getParticipants', 'updateParticipantAttributes', 'sendMessage', 'getMessages', 'updateMessageBody', 'updateConversation', 'updateMessageAttributes', 'removeMessage', 'typing', 'updateLastReadMessageIndex', 'getUnreadMessagesCount'];
const PARAMS = ['token', 'uniqueName', 'friendlyName', 'attributes', 'sid', 'conversationSid', 'identity', 'body', 'messageSid', 'pageSize', 'anchor', 'direction', 'index', 'pageToken'];
const RUNS = 500;

let server: SecurityServer;
let relayUrl: string;
let token: string;
let conversationSid: string;
let messageSid: string;
const PROTOTYPES = prototypeFingerprint();
const totals = { frames: 0, internal: 0, accepted: 0, refused: 0, storeChangedByRefused: 0, closed: 0 };

beforeAll(async () => {
  server = await securityServer({ listen: true });
  relayUrl = baseUrl(server.app).replace(/^http/, 'ws') + ApiPath.relay;
  const alice = await session(server.app, 'alice');
  token = (await server.app.inject({ url: ApiPath.twilioToken, headers: alice.headers })).json<{ token: string }>().token;
  const socket = await RelaySocket.open(relayUrl);
  await socket.request('auth', { token });
  conversationSid = ((await socket.request('createConversation', { friendlyName: 'fuzz' })).result as { sid: string }).sid;
  await socket.request('join', { conversationSid });
  await socket.request('add', { conversationSid, identity: 'bob' });
  messageSid = ((await socket.request('sendMessage', { conversationSid, body: 'e2ee1.AAAA' })).result as { sid: string }).sid;
  await socket.close();
});

afterAll(async () => {
  console.info(
    `[security] hostile relay frames: ${totals.frames} frames, INTERNAL: ${totals.internal}, accepted: ${totals.accepted}, refused: ${totals.refused}, ` +
      `store changed by a refused frame: ${totals.storeChangedByRefused}, sockets closed: ${totals.closed}`,
  );
  await server?.close();
});

interface Frame {
  raw?: string | Buffer;
  request?: { id: unknown; op: unknown; params: unknown };
}

/** A frame: raw text or bytes, or a request object with hostile parts (`known` gives real sids to aim at). */
const frame = (known: () => Record<string, unknown>): fc.Arbitrary<Frame> =>
  fc.oneof(
    { weight: 1, arbitrary: hostileString.filter((s) => Buffer.byteLength(s) < RELAY_LIMITS.frameBytes).map((s): Frame => ({ raw: s })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b): Frame => ({ raw: Buffer.from(b) })) },
    { weight: 1, arbitrary: fc.constantFrom(deepNesting(20_000, 'array'), deepNesting(5_000, 'object'), '{"id":1,"op":"auth","params":' + deepNesting(10_000, 'array') + '}', '{"id":1,"__proto__":{"op":"listConversations"}}', '{"id":1,"op":"listConversations","params":{"__proto__":{"isAdmin":true}}}').map((raw): Frame => ({ raw })) },
    {
      weight: 6,
      arbitrary: fc
        .record({
          id: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 1_000_000 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostileValue }),
          op: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...OPS) }, { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) }, { weight: 1, arbitrary: hostileString }),
          params: fc.oneof(
            { weight: 5, arbitrary: fc.dictionary(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...PARAMS) }, { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) }), fc.oneof(hostileValue, fc.constantFrom<unknown>(...Object.values(known()))), { maxKeys: 4 }).map((d) => ({ ...known(), ...d })) },
            { weight: 1, arbitrary: hostileValue },
          ),
        })
        .map((f): Frame => ({ request: f }))
        // Over the limit the socket is closed (its own test below).
        .filter((f) => Buffer.byteLength(JSON.stringify(f.request) ?? '') < RELAY_LIMITS.frameBytes),
    },
  );

/** Sends one frame; checks the answer, the store, the prototypes, and that what was accepted is what was sent. */
async function probe(socket: RelaySocket, f: Frame): Promise<RelayAnswer> {
  const before = await server.dump();
  const data = f.raw ?? JSON.stringify(f.request);
  const answer = await socket.sendRaw(data);
  totals.frames++;
  if (answer === null) {
    totals.closed++;
    expect.fail(`the relay closed the socket (code ${socket.closeCode}) on ${String(data).slice(0, 200)}`);
  }
  const what = String(data).slice(0, 300);
  if (answer.ok) {
    totals.accepted++;
    // Stored exactly as sent: no string changed on the way into the store (e.g. U+FFFD for a lone surrogate).
    const params = (f.request?.params ?? {}) as Record<string, unknown>;
    const result = answer.result as Record<string, unknown>;
    const op = f.request?.op;
    if (op === 'add') expect(result.identity, what).toBe(params.identity);
    if (op === 'sendMessage' || op === 'updateMessageBody') expect(result.body, what).toBe(params.body);
    if (op === 'createConversation' || op === 'updateConversation') {
      if (params.friendlyName !== undefined) expect(result.friendlyName, what).toBe(params.friendlyName);
      // A uniqueName is set at creation; updateConversation leaves it as it was.
      if (op === 'createConversation' && params.uniqueName !== undefined) expect(result.uniqueName, what).toBe(params.uniqueName);
    }
  } else {
    totals.refused++;
    expect(typeof answer.error?.code, what).toBe('string');
    if (answer.error?.code === 'INTERNAL') totals.internal++;
    expect(answer.error?.code, what).not.toBe('INTERNAL');
    if ((await server.dump()) !== before) {
      totals.storeChangedByRefused++;
      expect.fail(`a refused frame changed the store: ${what}`);
    }
  }
  expect(prototypeFingerprint()).toBe(PROTOTYPES);
  return answer;
}

describe('hostile relay frames', () => {
  it('before authentication: refused (UNAUTHORIZED or BAD_REQUEST), never INTERNAL, socket kept', async () => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      await fc.assert(
        fc.asyncProperty(frame(() => ({ conversationSid, messageSid, identity: 'bob' })).filter((f) => f.request?.op !== 'auth' && f.request?.op !== 'updateToken'), async (f) => {
          const answer = await probe(socket, f);
          expect(answer.ok).toBe(false);
        }),
        { numRuns: 100 },
      );
    } finally {
      await socket.close();
    }
  });

  it('after authentication: every op with hostile parameters', { timeout: 60_000 }, async () => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      expect((await socket.request('auth', { token })).ok).toBe(true);
      const known = () => ({ conversationSid, sid: conversationSid, messageSid, identity: 'bob', body: 'e2ee1.AAAA', token });
      await fc.assert(fc.asyncProperty(frame(known), (f) => probe(socket, f).then(() => undefined)), { numRuns: RUNS });
      // Still the same session, and the server still answers.
      expect((await socket.request('getMessages', { conversationSid, pageSize: 5 })).ok).toBe(true);
      expect((await server.app.inject({ url: ApiPath.readyz })).statusCode).toBe(200);
    } finally {
      await socket.close();
    }
  });

  it.each([
    ['add', { identity: 'mallory\ud800' }],
    ['add', { identity: 'a\u0000b' }],
    ['createConversation', { friendlyName: '\udfff' }],
    ['createConversation', { uniqueName: 'x\ud800y' }],
    ['updateConversation', { friendlyName: 'x\udc00' }],
    ['updateLastReadMessageIndex', { index: 2 ** 53 }],
    ['updateLastReadMessageIndex', { index: '0' }],
    ['sendMessage', { body: 'e2ee1.\ud800' }],
    ['sendMessage', { body: 'e2ee1.\u0000' }],
  ])('%s with %j: refused, or stored exactly as sent', async (op, params) => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      expect((await socket.request('auth', { token })).ok).toBe(true);
      await probe(socket, { request: { id: 1, op, params: { conversationSid, ...params } } });
    } finally {
      await socket.close();
    }
  });

  /** A value nested `depth` deep (`{}` and `[]` are 1). */
  const nested = (depth: number, kind: 'array' | 'object'): unknown => {
    let value: unknown = kind === 'array' ? [] : {};
    for (let i = 1; i < depth; i++) value = kind === 'array' ? [value] : { a: value };
    return value;
  };

  // As raw text: JSON.stringify itself overflows the stack on the deepest of these.
  it.each([
    ['sendMessage', { body: 'e2ee1.AAAA' }, 'ATTRIBUTES_TOO_DEEP', deepNesting(5_000, 'object')],
    ['sendMessage', { body: 'e2ee1.AAAA' }, 'ATTRIBUTES_TOO_DEEP', JSON.stringify(nested(RELAY_LIMITS.attributesDepth + 1, 'array'))],
    ['createConversation', {}, 'ATTRIBUTES_TOO_DEEP', deepNesting(5_000, 'array')],
    ['updateConversation', {}, 'ATTRIBUTES_TOO_DEEP', deepNesting(5_000, 'object')],
    ['updateConversation', {}, 'ATTRIBUTES_TOO_LARGE', JSON.stringify({ big: 'x'.repeat(RELAY_LIMITS.attributesBytes) })],
    ['updateParticipantAttributes', { identity: 'alice' }, 'ATTRIBUTES_TOO_DEEP', deepNesting(5_000, 'object')],
    ['updateParticipantAttributes', { identity: 'alice' }, 'ATTRIBUTES_TOO_LARGE', JSON.stringify({ big: 'x'.repeat(RELAY_LIMITS.attributesBytes) })],
  ])('%s %j with attributes too deep or too large: %s', async (op, params, code, attributes) => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      expect((await socket.request('auth', { token })).ok).toBe(true);
      const raw = `{"id":1,"op":"${op}","params":${JSON.stringify({ conversationSid, ...params }).slice(0, -1)},"attributes":${attributes}}}`;
      const answer = await probe(socket, { raw });
      expect(answer.error?.code).toBe(code);
    } finally {
      await socket.close();
    }
  });

  it(`attributes nested ${RELAY_LIMITS.attributesDepth} deep are stored as sent`, async () => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      expect((await socket.request('auth', { token })).ok).toBe(true);
      const attributes = nested(RELAY_LIMITS.attributesDepth, 'object');
      const answer = await probe(socket, { request: { id: 1, op: 'sendMessage', params: { conversationSid, body: 'e2ee1.AAAA', attributes } } });
      expect((answer.result as { attributes: unknown }).attributes).toEqual(attributes);
    } finally {
      await socket.close();
    }
  });

  it('an op nested thousands deep is a BAD_REQUEST, not a stack overflow', async () => {
    const socket = await RelaySocket.open(relayUrl);
    try {
      for (const frame of [`{"id":1,"op":${deepNesting(5_000, 'array')}}`, `{"id":2,"op":${deepNesting(5_000, 'object')}}`]) {
        expect((await probe(socket, { raw: frame })).error?.code).toBe('BAD_REQUEST');
      }
      expect((await socket.request('auth', { token })).ok).toBe(true);
      expect((await probe(socket, { raw: `{"id":3,"op":${deepNesting(5_000, 'array')}}` })).error?.code).toBe('BAD_REQUEST');
    } finally {
      await socket.close();
    }
  });

  it('a frame over the size limit closes that socket only (1009); the relay keeps serving', async () => {
    const socket = await RelaySocket.open(relayUrl);
    const answer = await socket.sendRaw(JSON.stringify({ id: 1, op: 'auth', params: { token: 'x'.repeat(RELAY_LIMITS.frameBytes) } }));
    expect(answer).toBeNull();
    expect(socket.closeCode).toBe(1009);
    const again = await RelaySocket.open(relayUrl);
    expect((await again.request('auth', { token })).ok).toBe(true);
    await again.close();
  });
});
