/**
 * The card transparency log through the service's routes, on both stores: checkpoints signed
 * with the LogKey, lookups whose proofs verify against them with the shared verifiers, inclusion,
 * consistency and identity-event routes, a card inserted behind the service's back refused, and
 * bad input answered with typed 4xx errors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../server/store/index.js';
import { SQLITE_FILENAME } from '../../server/store/sqlite.js';
import { ApiPath, type CardsLookupResponse, type LogConsistencyResponse, type LogEventsResponse, type LogInclusionResponse } from '../../shared/api.js';
import { fromB64u } from '../../shared/encoding.js';
import { openCheckpoint, type Checkpoint } from '../../shared/log-checkpoint.js';
import { verifyLoggedCard } from '../../shared/log-card.js';
import { activeCardIds, decodeCardEvent, emptyChain, extendChain } from '../../shared/log-event.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../shared/merkle.js';
import { noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import type { CardWire } from '../../shared/index.js';
import { errorCode, newDevice, postCard, revokeCard, session, testApp, type ServerApp, type TestUser } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';
import { makeCard } from './store.fixtures.js';

const b64u = (hashes: string[]) => hashes.map((h) => fromB64u(h));

/** The latest checkpoint note of `server`, opened with what a client pins: the origin and the LogKey's verifier key. */
function openWithPins(server: ServerApp, note: string): Checkpoint {
  return openCheckpoint(note, { origin: server.config.log.origin, log: noteVerifierFromKey(server.config.log.verifierKey) }).checkpoint;
}

/** A checkpoint of the log as it is now: published once the interval since the last one has passed (as the timer would). */
async function publishAfterInterval(server: ServerApp): Promise<Checkpoint> {
  await new Promise((resolve) => setTimeout(resolve, server.config.log.checkpointIntervalMs + 10));
  return openWithPins(server, (await server.app.e2ee.log.publish()).note);
}

describeEachStore('card transparency log routes', (stores) => {
  let server: ServerApp;
  let user: TestUser;
  beforeAll(async () => {
    server = await testApp(stores(), { env: { LOG_CHECKPOINT_INTERVAL_MS: '100' } });
    user = await session(server.app);
  });
  afterAll(() => server.app.close());

  const get = (url: string, auth = true) => server.app.inject({ url, ...(auth ? { headers: user.headers } : {}) });
  /** The checkpoint route's note, opened with the pins. */
  async function checkpoint(): Promise<Checkpoint> {
    const res = await get(ApiPath.logCheckpoint, false);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    return openWithPins(server, res.body);
  }
  /** A new checkpoint of the log as it is now, as the route then serves it. */
  async function published(): Promise<Checkpoint> {
    const cp = await publishAfterInterval(server);
    expect(await checkpoint()).toEqual(cp);
    return cp;
  }
  async function register(identity: TestUser, options: { previousCardId?: string } = {}) {
    const device = await newDevice(identity.identity, options);
    const res = await postCard(server.app, identity, device.request);
    expect(res.statusCode).toBe(201);
    return { keys: device.keys, card: res.json<CardWire>() };
  }
  const lookup = async (identity: string) => (await get(`${ApiPath.cards}?identity=${encodeURIComponent(identity)}`)).json<CardsLookupResponse>();

  it('serves the LogKey and a checkpoint signed by it under the origin', async () => {
    expect((await get(ApiPath.logKey, false)).json()).toEqual({ origin: server.config.log.origin, verifierKey: server.config.log.verifierKey });
    const opened = await checkpoint();
    expect(opened.origin).toBe('twilio-e2ee/log');
    expect(Number.isSafeInteger(opened.size)).toBe(true);
  });

  it('a lookup proves each card\'s registration in the latest checkpoint: proof null until the next one, then verified', async () => {
    const alice = await session(server.app);
    server.app.e2ee.log.stop(); // no timer: the next checkpoint is the test's
    await published();
    const { card } = await register(alice);
    const before = await lookup(alice.identity);
    expect(before.cards[alice.identity]).toEqual([card]);
    expect(before.log?.proofs[card.id]?.proof).toBeNull();
    expect(() => verifyLoggedCard(card.id, alice.identity, before.log?.proofs[card.id], openWithPins(server, before.log!.checkpoint))).toThrow(/not in the checkpoint/);

    const cp = await published();
    const after = await lookup(alice.identity);
    expect(after.log?.size).toBe(cp.size);
    const event = verifyLoggedCard(card.id, alice.identity, after.log?.proofs[card.id], cp);
    expect(event).toMatchObject({ kind: 'registration', identity: alice.identity, seq: 0 });
    // Any other card's proof, or another identity, is refused.
    expect(() => verifyLoggedCard(card.id, 'mallory', after.log?.proofs[card.id], cp)).toThrow(expect.objectContaining({ code: 'LOG_INCLUSION_INVALID' }));
  });

  it('a card asked for again after the log grew is proven in the newer checkpoint (proofs are kept by index and size)', async () => {
    const carol = await session(server.app);
    const { card } = await register(carol);
    const first = await published();
    const atFirst = await lookup(carol.identity);
    verifyLoggedCard(card.id, carol.identity, atFirst.log?.proofs[card.id], first);
    expect(await lookup(carol.identity)).toEqual(atFirst); // the same answer from the kept proofs

    await register(await session(server.app));
    const second = await published();
    expect(second.size).toBeGreaterThan(first.size);
    const atSecond = await lookup(carol.identity);
    expect(atSecond.log?.size).toBe(second.size);
    verifyLoggedCard(card.id, carol.identity, atSecond.log?.proofs[card.id], second);
  });

  it('inclusion by index or card id, and consistency from an older checkpoint, verify against the signed roots', async () => {
    const old = await published();
    const bob = await session(server.app);
    const { card, keys } = await register(bob);
    await revokeCard(server.app, bob, card.id, { keys, cardId: card.id });
    const cp = await published();
    expect(cp.size).toBe(old.size + 2);

    const byCard = (await get(`${ApiPath.logInclusion}?cardId=${card.id}`)).json<LogInclusionResponse>();
    expect(byCard).toMatchObject({ index: old.size, size: cp.size });
    verifyInclusion({ index: byCard.index, size: cp.size, leafHash: leafHash(fromB64u(byCard.leaf)), proof: b64u(byCard.proof), root: cp.rootHash });
    const byIndex = (await get(`${ApiPath.logInclusion}?index=${old.size + 1}&size=${cp.size}`)).json<LogInclusionResponse>();
    expect(decodeCardEvent(fromB64u(byIndex.leaf))).toMatchObject({ kind: 'revocation', cardId: card.id, seq: 1 });
    verifyInclusion({ index: byIndex.index, size: cp.size, leafHash: leafHash(fromB64u(byIndex.leaf)), proof: b64u(byIndex.proof), root: cp.rootHash });

    if (old.size > 0) {
      const res = (await get(`${ApiPath.logConsistency}?from=${old.size}&to=${cp.size}`, false)).json<LogConsistencyResponse>();
      verifyConsistency({ size1: old.size, size2: cp.size, root1: old.rootHash, root2: cp.rootHash, proof: b64u(res.proof) });
    }
  });

  it('an identity\'s events since a seq, each proven, chain to its active cards; pages with more', async () => {
    const carol = await session(server.app);
    const first = await register(carol);
    const second = await register(carol, { previousCardId: first.card.id });
    await register(carol);
    const cp = await published();
    const page = (await get(`${ApiPath.logEvents}?identity=${carol.identity}&limit=2`)).json<LogEventsResponse>();
    expect(page.events.map((e) => e.seq)).toEqual([0, 1]);
    expect(page.more).toBe(true);
    const rest = (await get(`${ApiPath.logEvents}?identity=${carol.identity}&since=2&size=${cp.size}`)).json<LogEventsResponse>();
    expect(rest.more).toBe(false);
    const events = [...page.events, ...rest.events];
    for (const e of events) verifyInclusion({ index: e.index, size: cp.size, leafHash: leafHash(fromB64u(e.leaf)), proof: b64u(e.proof), root: cp.rootHash });
    const chain = extendChain(emptyChain(carol.identity), events.map((e) => decodeCardEvent(fromB64u(e.leaf))));
    expect(activeCardIds(chain).sort()).toEqual((await lookup(carol.identity)).cards[carol.identity]!.map((c) => c.id).sort());
    expect(activeCardIds(chain)).toContain(second.card.id);
  });

  it('answers bad input with typed 4xx errors, and the leaves only with an app token', async () => {
    const cp = await published();
    const cases: [string, number, string][] = [
      [`${ApiPath.logInclusion}?index=0&size=${cp.size + 1}`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?size=1`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?index=0&cardId=${'a'.repeat(64)}`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?cardId=nothex`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?index=-1`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?index=1e400`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logInclusion}?cardId=${'a'.repeat(64)}`, 404, 'NOT_FOUND'],
      [`${ApiPath.logInclusion}?index=${cp.size}`, 404, 'NOT_FOUND'],
      [`${ApiPath.logConsistency}?from=0&to=1`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logConsistency}?from=2&to=1`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logConsistency}?from=1&to=${cp.size + 1}`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logConsistency}?from=1`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logEvents}?identity=x&limit=101`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logEvents}?identity=x&size=${cp.size + 1}`, 400, 'BAD_REQUEST'],
      [`${ApiPath.logEvents}`, 400, 'BAD_REQUEST'],
    ];
    for (const [url, status, code] of cases) {
      const res = await get(url);
      expect([url, res.statusCode, errorCode(res)]).toEqual([url, status, code]);
    }
    for (const url of [`${ApiPath.logInclusion}?index=0`, `${ApiPath.logEvents}?identity=x`]) expect(errorCode(await get(url, false))).toBe('UNAUTHORIZED');
  });
});

describe('a card inserted behind the service\'s back', () => {
  let dataDir: string;
  let server: ServerApp;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'twilio-e2ee-log-'));
    server = await testApp({ kind: 'sqlite', open: () => openStore({ dataDir }) }, { env: { LOG_CHECKPOINT_INTERVAL_MS: '100' } });
  });
  afterAll(async () => {
    await server.app.close();
    await server.store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is listed by the lookup without an event in the log, and a verifier refuses it', async () => {
    const alice = await session(server.app);
    const honest = (await postCard(server.app, alice, (await newDevice(alice.identity)).request)).json<CardWire>();
    // Straight into the cards table: a valid-looking row, no event.
    const rogue = makeCard(alice.identity);
    const db = new Database(join(dataDir, SQLITE_FILENAME));
    try {
      db.prepare(`INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature, app_signature, app_key_id, created_at, registered_at)
        VALUES (@id, @identity, @deviceId, @signKey, @boxKey, @snapshot, @selfSignature, @appSignature, @appKeyId, @createdAt, @registeredAt)`).run(rogue);
    } finally {
      db.close();
    }
    const cp = await publishAfterInterval(server);
    const res = (await server.app.inject({ url: `${ApiPath.cards}?identity=${alice.identity}`, headers: alice.headers })).json<CardsLookupResponse>();
    expect(res.cards[alice.identity]!.map((c) => c.id).sort()).toEqual([honest.id, rogue.id].sort());
    expect(Object.keys(res.log!.proofs)).toEqual([honest.id]);
    expect(res.log!.size).toBe(cp.size);
    expect(verifyLoggedCard(honest.id, alice.identity, res.log!.proofs[honest.id], cp).cardId).toBe(honest.id);
    expect(() => verifyLoggedCard(rogue.id, alice.identity, res.log!.proofs[rogue.id], cp)).toThrow(
      expect.objectContaining({ code: 'LOG_INCLUSION_INVALID', message: expect.stringContaining('no event in the log') }),
    );
  });
});
