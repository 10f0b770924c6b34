/**
 * Hostile HTTP input, route by route (issue #8): requests generated with fast-check carrying wrong
 * types, empty and huge strings, invalid base64url and hex, deep nesting, prototype-pollution
 * keys, wrong content types, path tricks in ids, SQL-injection strings and mangled bearer
 * tokens. For every request: the answer is a 4xx in the `{"error": {"code","message"}}` shape
 * (or the route's success for input that happens to be valid), never a 5xx; a rejected request
 * leaves every row of the store as it was; no built-in prototype gains a property. After each
 * route the server still answers its health checks and a real lookup.
 *
 * Runs on SQLite, and on PostgreSQL in a fresh schema (skipped with a message when PostgreSQL is
 * not reachable, except under CI=true). The figures printed at the end go to docs/SECURITY.md.
 */
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiPath,
  CARD_SELF_LABEL,
  concatBytes,
  generateDeviceKeys,
  toB64u,
  trustAppKeys,
  utf8,
  verifyCard,
  type DeviceKeys,
  type HistoryPostRequest,
  type VerifiedCard,
} from '../../shared/index.js';
import { deviceProofMessage, DEVICE_PROOF_HEADER } from '../../shared/device-proof.js';
import { sign } from '../../shared/sodium.js';
import { newDevice, proved, session, type TestUser } from '../support/app.js';
import { backupOf, localConversation, localMessage, seal, withDevice, type HistoryServer, type Member } from '../support/history.js';
import {
  CONTENT_TYPES,
  PATH_TRICKS,
  PROTO_KEYS,
  SQL_INJECTIONS,
  headerSafe,
  hostileAuthorization,
  hostileJsonBody,
  hostileString,
  hostileValue,
  invalidB64u,
  invalidHex,
  percentEncode,
} from '../support/hostile.js';
import { Tally, answerProblem, prototypeFingerprint, securityServer, type AnswerRules, type SecurityServer } from '../support/security.js';
import { runPostgres } from '../support/stores.js';
import { signJwt } from '../support/jwt.js';
import { JWT_SECRET, PUBLIC_URL, TWILIO, twilioEnv } from '../support/twilio.js';

/** Generated requests per route and store: a few hundred on SQLite, fewer on PostgreSQL (slower round trips). */
const RUNS = { sqlite: 200, postgres: 80 } as const;

const totals = new Tally();
const PROTOTYPES = prototypeFingerprint();

afterAll(() => {
  console.info(`[security] hostile HTTP, all routes: ${totals.summary()}`);
});

function report(name: string, tally: Tally): void {
  totals.merge(tally);
  console.info(`[security] ${name}: ${tally.summary()}`);
  expect(tally.serverErrors).toBe(0);
  expect(tally.storeChangedByRejected).toBe(0);
}

/** A short description of a request, for failure messages. */
function describeRequest(req: InjectOptions): string {
  const payload = typeof req.payload === 'string' ? req.payload : JSON.stringify(req.payload ?? '');
  const headers = JSON.stringify(req.headers ?? {}).slice(0, 300);
  return `${req.method ?? 'GET'} ${String(req.url).slice(0, 300)} headers=${headers} payload(${payload.length})=${payload.slice(0, 300)}`;
}

/**
 * Sends one hostile request and checks the answer, the store and the prototypes. `before` runs
 * first (e.g. to put a message in the store), and is not part of what must stay unchanged.
 */
async function probe(
  server: SecurityServer,
  tally: Tally,
  request: InjectOptions | (() => InjectOptions),
  rules: AnswerRules,
  before?: () => Promise<void>,
): Promise<void> {
  await before?.();
  const req = typeof request === 'function' ? request() : request;
  const storeBefore = await server.dump();
  let res;
  try {
    res = await server.app.inject(req);
  } catch (err) {
    // light-my-request refuses to build some requests (e.g. an invalid header value): nothing reached the server.
    fc.pre(false);
    throw err;
  }
  tally.add(res, rules);
  const problem = answerProblem(res, rules, req.method);
  expect(problem, describeRequest(req)).toBeNull();
  if (res.statusCode >= 400 && (await server.dump()) !== storeBefore) {
    tally.storeChangedByRejected++;
    expect.fail(`a rejected request (${res.statusCode}) changed the store: ${describeRequest(req)}`);
  }
  expect(prototypeFingerprint(), describeRequest(req)).toBe(PROTOTYPES);
  expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
}

async function fuzz(server: SecurityServer, name: string, requests: fc.Arbitrary<InjectOptions>, rules: AnswerRules): Promise<Tally> {
  const tally = new Tally();
  await fc.assert(
    fc.asyncProperty(requests, (req) => probe(server, tally, req, rules)),
    { numRuns: RUNS[server.kind] },
  );
  report(`${server.kind} ${name}`, tally);
  return tally;
}

/** Query strings an attacker sends to routes that take none (or to add to those that do). */
const junkQuery: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS, 'token', 'identity', 'cardId'), fc.string({ maxLength: 8 })), hostileString, { maxKeys: 3 }).map((d) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(d)) q.append(k, v);
    return `?${q}`;
  }),
  fc.constantFrom('?%zz', '?a=%', '?&&&', '?a[b]=c', '?__proto__[isAdmin]=1', '?constructor[prototype][isAdmin]=1', '?=', '?a=1&a=2&a=3', `?${'x=1&'.repeat(2000)}`, '?%00=%00'),
);

/** Hostile extra headers (printable ASCII, as they must be on the wire). */
const junkHeaders: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.constantFrom('x-request-id', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-twilio-signature', DEVICE_PROOF_HEADER, 'accept', 'x-http-method-override', 'content-length', 'cookie', 'origin'),
  fc.oneof(hostileString.map(headerSafe), fc.constantFrom('0', '1', '-1', '99999999', 'abc', '*/*', 'text/html')),
  { maxKeys: 2 },
);

/** Mostly the user's valid Authorization header (to reach the route's own checks), else a hostile one. */
const authorization = (user: TestUser) =>
  fc.oneof({ weight: 8, arbitrary: fc.constant<string | undefined>(user.headers.authorization) }, { weight: 2, arbitrary: hostileAuthorization(user.token) });

const contentType = fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) });

function headers(parts: { authorization?: string | undefined; contentType?: string | undefined; extra: Record<string, string> }): Record<string, string> {
  const out: Record<string, string> = { ...parts.extra };
  if (parts.authorization !== undefined) out.authorization = headerSafe(parts.authorization);
  if (parts.contentType !== undefined) out['content-type'] = parts.contentType;
  return out;
}

/** `member`'s X-E2EE-Device proof for a request without a body (synchronous, for fast-check's map). */
function proofOf(member: Member, method: string, url: string): string {
  const time = Math.floor(Date.now() / 1000);
  return `${member.card.id}.${time}.${toB64u(sign(deviceProofMessage({ method, path: url }, member.card.id, time), member.keys.signSecretKey))}`;
}

/** Mostly null (the caller's valid proof for the request, to reach the route's own checks), else a hostile header. */
const deviceProof: fc.Arbitrary<string | null> = fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: hostileString.map(headerSafe) });

/** Adds the device proof chosen by `deviceProof` (null: the valid one) to a request without a body. */
const withProof = (member: Member, proof: string | null) => (req: InjectOptions): InjectOptions => ({
  ...req,
  headers: { ...(req.headers as Record<string, string>), [DEVICE_PROOF_HEADER]: proof ?? proofOf(member, String(req.method), String(req.url)) },
});

/** A path parameter: a valid value, a hostile one URL-encoded, or a raw path trick. */
const pathParam = (...valid: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...valid) },
    { weight: 2, arbitrary: invalidHex },
    { weight: 3, arbitrary: hostileString.map(percentEncode) },
    { weight: 3, arbitrary: fc.constantFrom(...PATH_TRICKS) },
    { weight: 1, arbitrary: fc.constantFrom(...SQL_INJECTIONS).map(percentEncode) },
  );

/** A query parameter value: valid, hostile, or a number-ish string. */
const queryValue = (...valid: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...valid) },
    { weight: 3, arbitrary: hostileString },
    { weight: 1, arbitrary: invalidHex },
    { weight: 1, arbitrary: fc.constantFrom('-2', '-1', '0', '1', '501', '1e3', '1e400', '0x10', ' 1', '1.5', '9007199254740993', 'NaN', 'Infinity', '', 'true') },
  );

function query(params: [string, string][]): string {
  const q = new URLSearchParams();
  for (const [k, v] of params) q.append(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}

interface LocalFixture {
  server: SecurityServer;
  alice: Member;
  bob: Member;
  orgCard: VerifiedCard;
  conversationSid: string;
  /** A backup of alice's message that is already stored (so a valid repost changes nothing). */
  storedBackup: HistoryPostRequest;
  /** Unused device keys for signed hostile snapshots. */
  spareKeys: DeviceKeys[];
}

async function localFixture(kind: 'sqlite' | 'postgres'): Promise<LocalFixture> {
  const server = await securityServer({ store: kind });
  const served = await server.app.inject({ url: ApiPath.orgCard });
  const trusted = trustAppKeys([toB64u(server.config.appKey.publicKey)]);
  const orgCard = verifyCard(served.json(), { trustedAppKeys: trusted });
  const asHistoryServer = { ...server, orgCard, trusted } as unknown as HistoryServer;
  const alice = await withDevice(asHistoryServer, await session(server.app, 'alice'));
  const bob = await withDevice(asHistoryServer, await session(server.app, 'bob'));
  const conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
  const sealed = seal(alice, conversationSid, 'stored message', [bob]);
  const message = await localMessage(server.store, conversationSid, alice.identity, sealed.text);
  const storedBackup = backupOf(message, conversationSid, sealed, orgCard);
  const posted = await server.app.inject({ method: 'POST', url: ApiPath.history, headers: alice.headers, payload: storedBackup });
  expect(posted.statusCode, posted.body).toBe(201);
  return { server, alice, bob, orgCard, conversationSid, storedBackup, spareKeys: Array.from({ length: 8 }, () => generateDeviceKeys()) };
}

/** The server still works: liveness, readiness, and a real lookup returns alice's card. */
async function expectHealthy(f: LocalFixture): Promise<void> {
  expect((await f.server.app.inject({ url: ApiPath.healthz })).statusCode).toBe(200);
  expect((await f.server.app.inject({ url: ApiPath.readyz })).statusCode).toBe(200);
  const res = await f.server.app.inject({ url: `${ApiPath.cards}?identity=alice`, headers: f.alice.headers });
  expect(res.statusCode).toBe(200);
  expect(res.json<{ cards: Record<string, { id: string }[]> }>().cards.alice?.map((c) => c.id)).toContain(f.alice.card.id);
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !runPostgres)(`hostile requests, every route [${kind}]`, { timeout: 60_000 }, () => {
    let f: LocalFixture;
    beforeAll(async () => {
      f = await localFixture(kind);
    });
    afterAll(async () => {
      await f?.server.close();
    });

    const noBody = (method: 'GET' | 'DELETE', url: (f: LocalFixture) => fc.Arbitrary<string>, user: (f: LocalFixture) => TestUser) => () =>
      fc
        .record({
          url: url(f),
          authorization: authorization(user(f)),
          extra: junkHeaders,
          body: fc.option(fc.record({ contentType: fc.constantFrom(...CONTENT_TYPES), payload: hostileJsonBody(() => ({ id: 'x' })) }), { freq: 5 }),
        })
        .map(({ url, authorization, extra, body }): InjectOptions => ({
          method,
          url,
          headers: headers({ authorization, contentType: body?.contentType, extra }),
          ...(body ? { payload: body.payload } : {}),
        }));

    const withBody = (url: string, valid: (f: LocalFixture) => () => Record<string, unknown>, extraBodies: (f: LocalFixture) => fc.Arbitrary<string> = () => fc.constant('{}')) => () =>
      fc
        .record({
          authorization: authorization(f.alice),
          contentType,
          extra: junkHeaders,
          payload: fc.oneof({ weight: 4, arbitrary: hostileJsonBody(valid(f)) }, { weight: 1, arbitrary: extraBodies(f) }),
          q: fc.oneof({ weight: 5, arbitrary: fc.constant('') }, { weight: 1, arbitrary: junkQuery }),
        })
        .map(({ authorization, contentType, extra, payload, q }): InjectOptions => ({
          method: 'POST',
          url: url + q,
          headers: headers({ authorization, contentType, extra }),
          payload,
        }));

    it('POST /v1/session', async () => {
      await fuzz(f.server, 'POST /v1/session', withBody(ApiPath.session, () => () => ({ identity: 'mallory' }))(), { success: [200] });
      await expectHealthy(f);
    });

    it('GET /v1/twilio-token', async () => {
      await fuzz(f.server, 'GET /v1/twilio-token', noBody('GET', () => junkQuery.map((q) => ApiPath.twilioToken + q), (f) => f.alice)(), { success: [200] });
      await expectHealthy(f);
    });

    it('POST /v1/cards (JSON bodies, and correctly self-signed hostile snapshots)', async () => {
      const now = Math.floor(Date.now() / 1000);
      // Snapshot members with one hostile value (or a hostile extra member), self-signed with real keys:
      // what reaches parseSnapshot is exactly what an attacker with a device can send.
      const signedSnapshot = fc
        .record({
          keys: fc.nat(f.spareKeys.length - 1),
          member: fc.constantFrom('v', 'identity', 'deviceId', 'deviceName', 'signKey', 'boxKey', 'createdAt', 'previousCardId', '__proto__', 'constructor', 'extra'),
          value: hostileValue,
        })
        .map(({ keys: index, member, value }) => {
          const keys = f.spareKeys[index]!;
          const members: Record<string, unknown> = {
            v: 1,
            identity: 'alice',
            deviceId: 'fuzz-device',
            deviceName: 'fuzz',
            signKey: toB64u(keys.signPublicKey),
            boxKey: toB64u(keys.boxPublicKey),
            createdAt: now,
          };
          const text = member === '__proto__' || member === 'constructor'
            ? `{${JSON.stringify(member)}:${JSON.stringify(value) ?? 'null'},${JSON.stringify(members).slice(1)}`
            : JSON.stringify({ ...members, [member]: value });
          const bytes = utf8(text);
          return JSON.stringify({ snapshot: toB64u(bytes), selfSignature: toB64u(sign(concatBytes(CARD_SELF_LABEL, bytes), keys.signSecretKey)) });
        });
      const request = (await newDevice('alice')).request;
      await fuzz(
        f.server,
        'POST /v1/cards',
        withBody(ApiPath.cards, () => () => ({ ...request }), () => fc.oneof(signedSnapshot, invalidB64u.map((s) => JSON.stringify({ snapshot: s, selfSignature: request.selfSignature }))))(),
        // A hostile value can still make a valid card (e.g. an odd deviceName): stored as given.
        { success: [201] },
      );
      await expectHealthy(f);
    });

    it('GET /v1/cards?identity=', async () => {
      // Mostly one to three identities (so one hostile value is not hidden by another's rejection), sometimes up to 120.
      const identities = fc.oneof(
        { weight: 3, arbitrary: fc.array(queryValue('alice', 'bob'), { minLength: 1, maxLength: 3 }) },
        { weight: 1, arbitrary: fc.array(queryValue('alice', 'bob'), { minLength: 0, maxLength: 120 }) },
      );
      const url = fc
        .record({ identities, extra: fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS, 'identity[]', 'identity[0]', 'Identity', 'limit'), hostileString), { maxLength: 2 }) })
        .map(({ identities, extra }) => ApiPath.cards + query([...identities.map((i): [string, string] => ['identity', i]), ...extra]));
      await fuzz(f.server, 'GET /v1/cards', noBody('GET', () => fc.oneof(url, junkQuery.map((q) => ApiPath.cards + q)), (f) => f.alice)(), { success: [200] });
      await expectHealthy(f);
    });

    it('hostile identities end to end: session, card registration, lookup, revocation', async () => {
      // An identity provider may put anything in `sub`: the identity is stored, looked up and
      // compared as given, or refused, never turned into another identity (or a 500).
      const tally = new Tally();
      const identity = fc.oneof(hostileString, fc.constantFrom(...SQL_INJECTIONS, ...PROTO_KEYS, ...PATH_TRICKS)).filter((i) => i.length <= 300);
      await fc.assert(
        fc.asyncProperty(identity, async (identity) => {
          const rules = { success: [200, 201] };
          const sessionRes = await f.server.app.inject({ method: 'POST', url: ApiPath.session, payload: { identity } });
          tally.add(sessionRes, rules);
          expect(answerProblem(sessionRes, rules, 'POST'), JSON.stringify(identity)).toBeNull();
          if (sessionRes.statusCode !== 200) return;
          const user: TestUser = { identity, token: sessionRes.json<{ token: string }>().token, headers: { authorization: '' } };
          user.headers.authorization = `Bearer ${user.token}`;
          const device = await newDevice(identity);
          const registered = await f.server.app.inject({ method: 'POST', url: ApiPath.cards, headers: user.headers, payload: device.request });
          tally.add(registered, rules);
          expect(answerProblem(registered, rules, 'POST'), JSON.stringify(identity)).toBeNull();
          const lookup = await f.server.app.inject({ url: `${ApiPath.cards}${query([['identity', identity]])}`, headers: f.alice.headers });
          tally.add(lookup, rules);
          expect(answerProblem(lookup, rules), JSON.stringify(identity)).toBeNull();
          if (registered.statusCode !== 201) return;
          const card = registered.json<{ id: string }>();
          // The lookup finds the card under exactly this identity, and the snapshot names exactly it.
          expect(lookup.statusCode).toBe(200);
          const found = lookup.json<{ cards: Record<string, { id: string; snapshot: string }[]> }>().cards;
          expect(Object.keys(found)).toEqual([identity]);
          expect(found[identity]?.map((c) => c.id)).toEqual([card.id]);
          const stored = await f.server.store.getCard(card.id);
          expect(stored?.identity).toBe(identity);
          const revoked = await f.server.app.inject(await proved(user, { keys: device.keys, cardId: card.id }, 'DELETE', `${ApiPath.cards}/${card.id}`));
          tally.add(revoked, rules);
          expect(revoked.statusCode, revoked.body).toBe(200);
        }),
        { numRuns: Math.round(RUNS[kind] / 2) },
      );
      report(`${kind} hostile identities (session, card, lookup, revoke)`, tally);
      await expectHealthy(f);
    });

    it('GET /v1/cards/:id', async () => {
      const url = fc.tuple(pathParam(f.alice.card.id, f.bob.card.id, 'f'.repeat(64)), junkQuery).map(([id, q]) => `${ApiPath.cards}/${id}${q}`);
      await fuzz(f.server, 'GET /v1/cards/:id', noBody('GET', () => url, (f) => f.alice)(), { success: [200] });
      await expectHealthy(f);
    });

    it('DELETE /v1/cards/:id (never the caller\'s own card; mostly with the caller\'s valid device proof)', async () => {
      const url = fc.tuple(pathParam(f.bob.card.id, 'f'.repeat(64)), junkQuery).map(([id, q]) => `${ApiPath.cards}/${id}${q}`);
      const requests = fc.tuple(noBody('DELETE', () => url, (f) => f.alice)(), deviceProof).map(([req, proof]) => withProof(f.alice, proof)(req));
      await fuzz(f.server, 'DELETE /v1/cards/:id', requests, { success: [] });
      await expectHealthy(f);
    });

    it('device requests: GET /v1/device-requests[/:cardId], POST .../approve, .../reject (mostly with a valid device proof)', async () => {
      const id = fc.tuple(pathParam(f.alice.card.id, f.bob.card.id, 'f'.repeat(64)), junkQuery);
      const list = junkQuery.map((q) => ApiPath.deviceRequests + q);
      // noBody makes GET requests here; the method is set before the proof is signed.
      const proofed = (method: 'GET' | 'POST', url: fc.Arbitrary<string>) =>
        fc.tuple(noBody('GET', () => url, (f) => f.alice)(), deviceProof).map(([req, proof]) => withProof(f.alice, proof)({ ...req, method }));
      await fuzz(f.server, 'GET /v1/device-requests', proofed('GET', list), { success: [200] });
      await fuzz(f.server, 'GET /v1/device-requests/:cardId', noBody('GET', () => id.map(([i, q]) => `${ApiPath.deviceRequests}/${i}${q}`), (f) => f.alice)(), { success: [200] });
      for (const action of ['approve', 'reject']) {
        const url = id.map(([i, q]) => `${ApiPath.deviceRequests}/${i}/${action}${q}`);
        await fuzz(f.server, `POST /v1/device-requests/:cardId/${action}`, proofed('POST', url), { success: [] });
      }
      await expectHealthy(f);
    });

    it('GET /v1/app-key, /v1/org-card, /healthz, /readyz, /docs/json', async () => {
      const url = fc.tuple(fc.constantFrom(ApiPath.appKey, ApiPath.orgCard, ApiPath.healthz, ApiPath.readyz, '/docs/json'), junkQuery).map(([path, q]) => path + q);
      await fuzz(f.server, 'public GET routes', noBody('GET', () => url, (f) => f.alice)(), { success: [200] });
      await expectHealthy(f);
    });

    it('POST /v1/history (JSON bodies)', async () => {
      await fuzz(f.server, 'POST /v1/history', withBody(ApiPath.history, (f) => () => ({ ...f.storedBackup }))(), { success: [200] });
      await expectHealthy(f);
    });

    it('POST /v1/history of messages whose stored body is hostile (garbage, near-envelopes, mutated envelopes)', async () => {
      // A malicious participant's client puts any body into the conversation, then backs it up:
      // the server's envelope, rewrap and signature checks see exactly the attacker's bytes.
      const valid = seal(f.alice, f.conversationSid, 'target', [f.bob]);
      const validBinary = Buffer.from(valid.text.slice('e2ee1.'.length), 'base64url');
      const mutated = fc.array(fc.record({ at: fc.nat(validBinary.length - 1), to: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 3 }).map((edits) => {
        const copy = Buffer.from(validBinary);
        for (const e of edits) copy[e.at] = e.to;
        return `e2ee1.${copy.toString('base64url')}`;
      });
      const body = fc.oneof(
        hostileString,
        mutated,
        fc.uint8Array({ maxLength: 600 }).map((b) => `e2ee1.${Buffer.from(b).toString('base64url')}`),
        invalidB64u.map((s) => `e2ee1.${s}`),
      );
      const requests = fc
        .record({
          body: body.map((b) => b.replace(/\u0000/g, '')), // the relay refuses NUL in bodies (PostgreSQL text cannot hold it)
          orgWrap: fc.oneof(fc.constant(f.storedBackup.orgWrap), fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')), minLength: 107, maxLength: 107 }), invalidB64u),
          authorization: authorization(f.alice),
        });
      const tally = new Tally();
      await fc.assert(
        fc.asyncProperty(requests, async ({ body, orgWrap, authorization }) => {
          let message: { sid: string; index: number } | undefined;
          await probe(
            f.server,
            tally,
            // The message exists by now (`before` below put it in the conversation).
            () => ({
              method: 'POST',
              url: ApiPath.history,
              headers: headers({ authorization, contentType: 'application/json', extra: {} }),
              payload: { conversationSid: f.conversationSid, messageSid: message!.sid, index: message!.index, envelope: body, orgWrap },
            }),
            { success: [] },
            async () => {
              message = await localMessage(f.server.store, f.conversationSid, f.alice.identity, body);
            },
          );
        }),
        { numRuns: RUNS[kind] },
      );
      report(`${kind} POST /v1/history (hostile stored bodies)`, tally);
      await expectHealthy(f);
    });

    it('GET /v1/history/:conversationSid', async () => {
      const url = fc
        .record({
          // The participant's conversation and own card often enough that the 200 path is fuzzed too.
          sid: fc.oneof({ weight: 1, arbitrary: fc.constant(f.conversationSid) }, { weight: 2, arbitrary: pathParam(f.conversationSid, 'CH' + '0'.repeat(32), 'a'.repeat(101), 'a'.repeat(256), 'a'.repeat(257)) }),
          cardId: fc.option(fc.oneof({ weight: 1, arbitrary: fc.constant(f.alice.card.id) }, { weight: 2, arbitrary: queryValue(f.alice.card.id, f.bob.card.id) }), { freq: 8 }),
          after: fc.option(queryValue('-1', '0'), { freq: 2 }),
          limit: fc.option(queryValue('1', '500'), { freq: 2 }),
          extra: fc.option(fc.tuple(fc.constantFrom(...PROTO_KEYS, 'cardId', 'after'), hostileString), { freq: 4 }).map((e) => (e ? [e] : [])),
        })
        .map(({ sid, cardId, after, limit, extra }) => {
          const params: [string, string][] = [];
          if (cardId !== null) params.push(['cardId', cardId]);
          if (after !== null) params.push(['after', after]);
          if (limit !== null) params.push(['limit', limit]);
          return `${ApiPath.history}/${sid}${query([...params, ...extra])}`;
        });
      await fuzz(f.server, 'GET /v1/history/:sid', noBody('GET', () => url, (f) => f.alice)(), { success: [200] });
      await expectHealthy(f);
    });

    it('unknown methods and paths', async () => {
      const url = fc.oneof(
        fc.constantFrom(...Object.values(ApiPath).filter((p) => typeof p === 'string')),
        fc.constantFrom(...PATH_TRICKS).map((t) => `/v1/${t}`),
        fc.constantFrom(...PATH_TRICKS).map((t) => `/${t}`),
        hostileString.map((s) => `/v1/${percentEncode(s)}`),
        fc.constantFrom('/v1/cards/', '/v1//cards', '/V1/cards', '/v1/cards/../app-key', '/v1/cards/%2e%2e/app-key', '/v1/./cards', '/v1/history/', '/v1/history'),
      );
      const requests = fc
        .record({ method: fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'POST', 'GET'), url, q: junkQuery, extra: junkHeaders, authorization: authorization(f.alice) })
        .map(({ method, url, q, extra, authorization }): InjectOptions => ({ method: method as InjectOptions['method'], url: url + q, headers: headers({ authorization, contentType: 'application/json', extra }), payload: method === 'GET' || method === 'HEAD' ? undefined : '{}' }));
      // Public and authenticated GETs can succeed for a known path; mutating ones cannot with an empty
      // object. The pre-event webhook answers 503 TWILIO_UNAVAILABLE to everything in local mode.
      await fuzz(f.server, 'other methods and paths', requests, { success: [200, 204], notConfigured: ['TWILIO_UNAVAILABLE'] });
      await expectHealthy(f);
    });
  });
}

describe('hostile requests in Twilio mode: the pre-event webhook and tokens', { timeout: 60_000 }, () => {
  let server: SecurityServer;
  type Form = Record<string, string | string[]>;
  const WEBHOOK_URL = PUBLIC_URL + ApiPath.preEvent;

  beforeAll(async () => {
    server = await securityServer({ env: twilioEnv() });
  });
  afterAll(() => server?.close());

  /** The form as the server reads it: repeated keys keep every value, in an object without a prototype. */
  function formOf(pairs: [string, string][]): Form {
    const params: Form = Object.create(null);
    for (const [k, v] of pairs) {
      const previous = params[k];
      params[k] = previous === undefined ? v : [...(Array.isArray(previous) ? previous : [previous]), v];
    }
    return params;
  }

  it('POST /v1/twilio/pre-event: signed and unsigned hostile forms', async () => {
    const key = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('EventType', 'Body', 'ConversationSid', 'Author', 'Attributes', 'Source', 'ClientIdentity') },
      { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) },
      { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
    );
    const value = fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom('onMessageAdd', 'onMessageUpdate', 'onConversationAdd', 'onMessageAdded') },
      { weight: 3, arbitrary: hostileString },
      { weight: 1, arbitrary: invalidB64u.map((s) => `e2ee1.${s}`) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => `e2ee1.${Buffer.from(b).toString('base64url')}`) },
    );
    const requests = fc
      .record({
        pairs: fc.array(fc.tuple(key, value), { maxLength: 8 }),
        signature: fc.oneof(
          { weight: 4, arbitrary: fc.constant('valid') },
          { weight: 1, arbitrary: fc.constant('none') },
          { weight: 2, arbitrary: hostileString.map(headerSafe) },
          { weight: 1, arbitrary: fc.constant('other-token') },
        ),
        contentType: fc.oneof({ weight: 6, arbitrary: fc.constant('application/x-www-form-urlencoded') }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
        raw: fc.option(fc.constantFrom('%zz=%', '&&==&', 'a', '=', `${'a=1&'.repeat(5000)}`, '\u0000=\u0000', 'Body=%ZZ'), { freq: 8 }),
        q: fc.oneof({ weight: 5, arbitrary: fc.constant('') }, { weight: 1, arbitrary: junkQuery }),
      })
      .map(({ pairs, signature, contentType, raw, q }): InjectOptions => {
        const form = new URLSearchParams(pairs);
        const payload = raw ?? form.toString();
        const params = formOf([...new URLSearchParams(payload)]);
        const url = ApiPath.preEvent + q;
        const sig =
          signature === 'valid'
            ? twilio.getExpectedTwilioSignature(TWILIO.authToken, PUBLIC_URL + url, params)
            : signature === 'other-token'
              ? twilio.getExpectedTwilioSignature('another-auth-token', WEBHOOK_URL, params)
              : signature === 'none'
                ? undefined
                : signature;
        return { method: 'POST', url, headers: { 'content-type': contentType, ...(sig === undefined ? {} : { 'x-twilio-signature': sig }) }, payload };
      });
    // A correctly signed event that is not a message event, or carries an envelope, is accepted (200).
    await fuzz(server, 'POST /v1/twilio/pre-event', requests, { success: [200] });
    expect((await server.app.inject({ url: ApiPath.readyz })).statusCode).toBe(200);
  });

  it.each([
    ['exp', -1e308],
    ['exp', -1e20],
    ['nbf', 1e308],
    ['nbf', 1e20],
  ])('refuses a correctly signed app token with %s = %d, out of Date\'s range (401, was a 500)', async (claim, value) => {
    const res = await server.app.inject({ url: ApiPath.twilioToken, headers: { authorization: `Bearer ${signJwt({ sub: 'alice', [claim]: value }, 'HS256', JWT_SECRET)}` } });
    expect(res.statusCode, res.body).toBe(401);
    expect(answerProblem(res, { success: [] })).toBeNull();
  });

  it('GET /v1/twilio-token with hostile app tokens', async () => {
    const good: TestUser = { identity: 'alice', token: signJwt({ sub: 'alice' }, 'HS256', JWT_SECRET), headers: { authorization: '' } };
    good.headers.authorization = `Bearer ${good.token}`;
    const extreme = fc.constantFrom<unknown>(-1e308, -1e20, 1e20, 1e308, 2 ** 53, -1, 0, 1.5, '1', null);
    const claims = fc.record({
      sub: fc.oneof(fc.constant<unknown>('alice'), hostileValue),
      exp: fc.oneof(fc.constant<unknown>(Math.floor(Date.now() / 1000) + 600), hostileValue, extreme),
      extra: fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS, 'iss', 'aud', 'nbf', 'iat'), fc.string({ maxLength: 5 })), fc.oneof(hostileValue, extreme), { maxKeys: 2 }),
    });
    const forged = fc
      .record({ claims, alg: fc.constantFrom('HS256' as const, 'none' as const), secret: fc.constantFrom(JWT_SECRET, 'not-the-secret-not-the-secret-0123') })
      .map(({ claims, alg, secret }) => `Bearer ${signJwt({ ...claims.extra, sub: claims.sub, exp: claims.exp }, alg, secret)}`);
    const requests = fc
      .record({ authorization: fc.oneof(authorization(good), forged), extra: junkHeaders, q: junkQuery })
      .map(({ authorization, extra, q }): InjectOptions => ({ method: 'GET', url: ApiPath.twilioToken + q, headers: headers({ authorization, extra }) }));
    await fuzz(server, 'GET /v1/twilio-token (twilio mode)', requests, { success: [200] });
  });
});
