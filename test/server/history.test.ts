/**
 * Organization history in local mode (docs/PROTOCOL.md section 7, docs/API.md "POST /v1/history"): POST /v1/history accepts a backup
 * only when it is the conversation's real message, its orgWrap opens to the committed key and
 * the original sender signed it, and keeps the latest version of an edited message; GET /v1/history/:conversationSid serves participants rewraps
 * that open to the original bodies under the original signatures. Conversations and messages
 * are set up in the store as the local relay holds them; cards, sessions and every check go
 * through the real routes and the real core. Page byte caps and rate limits are in
 * test/security/history-limits.test.ts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SQLITE_FILENAME } from '../../server/store/sqlite.js';
import { MAX_HISTORY_PAGE_MESSAGES } from '../../shared/limits.js';
import {
  ApiPath,
  MAX_ENVELOPE_TEXT_CHARS,
  cardIdOf,
  createCardRequest,
  createRewrap,
  fromB64u,
  generateDeviceKeys,
  parseEnvelope,
  randomBytes,
  sealEnvelope,
  toB64u,
  type EditMarker,
  type HistoryPostRequest,
  type HistoryResponse,
  type SealedEnvelope,
  type VerifiedCard,
} from '../../shared/index.js';
import { errorCode, revokeCard, session, uid, type TestUser } from '../support/app.js';
import {
  backupOf,
  historyServer,
  joinLocal,
  localConversation,
  localMessage,
  openHistory,
  orgWrapFor,
  postHistory,
  readHistory,
  seal,
  tokenUser,
  withDevice,
  type HistoryServer,
  type Member,
} from '../support/history.js';

/** The base64url alphabet, in value order. */
const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

let server: HistoryServer;
let orgCard: VerifiedCard;

beforeAll(async () => {
  server = await historyServer();
  orgCard = server.orgCard!;
});
afterAll(() => server?.close());

/** A new user of the demo server with one registered device. */
async function member(name: string): Promise<Member> {
  return withDevice(server, await session(server.app, uid(name)));
}

/** `from` sends `body` into the conversation (sealed for `conversationSid`); the stored message and its backup. */
async function send(from: Member, conversationSid: string, body: string, options: { sealedFor?: string; author?: string; dateCreatedMs?: number } = {}) {
  const sealed = seal(from, options.sealedFor ?? conversationSid, body);
  const message = await localMessage(server.store, conversationSid, options.author ?? from.identity, sealed.text, options.dateCreatedMs);
  return { sealed, message, backup: backupOf(message, conversationSid, sealed, orgCard) };
}

describe('POST /v1/history rejections', () => {
  let alice: Member;
  let bob: Member;
  let outsider: Member;
  let conversationSid: string;
  let otherConversationSid: string;

  beforeAll(async () => {
    [alice, bob, outsider] = await Promise.all([member('alice'), member('bob'), member('outsider')]);
    conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
    otherConversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
  });

  afterEach(async () => {
    // Nothing is ever accepted in these conversations: no rejected request stored anything.
    expect(await server.store.history(conversationSid, -1, MAX_HISTORY_PAGE_MESSAGES)).toEqual([]);
    expect(await server.store.history(otherConversationSid, -1, MAX_HISTORY_PAGE_MESSAGES)).toEqual([]);
  });

  interface Rejection {
    status: number;
    code: string;
    /** Who posts what (null user: no Authorization header). */
    make(): Promise<{ user: TestUser | null; body: unknown }>;
  }

  /** A valid backup of a message alice really sent, changed by `change`. */
  const aliceBackup = (change: (backup: HistoryPostRequest, sealed: SealedEnvelope) => Partial<HistoryPostRequest> = () => ({})) => async () => {
    const { backup, sealed } = await send(alice, conversationSid, 'hello bob');
    return { user: alice as TestUser, body: { ...backup, ...change(backup, sealed) } };
  };

  const rejections: Record<string, Rejection> = {
    'no bearer token': { status: 401, code: 'UNAUTHORIZED', make: async () => ({ ...(await aliceBackup()()), user: null }) },
    'a poster who is not a participant': { status: 403, code: 'NOT_PARTICIPANT', make: async () => ({ ...(await aliceBackup()()), user: outsider }) },
    'a message the conversation does not hold': { status: 404, code: 'NOT_FOUND', make: aliceBackup(() => ({ messageSid: 'IMnosuchmessage' })) },
    'an envelope other than the stored body': {
      status: 400,
      code: 'HISTORY_MISMATCH',
      make: aliceBackup(() => {
        const other = seal(alice, conversationSid, 'never sent');
        return { envelope: other.text, orgWrap: orgWrapFor(other, orgCard) };
      }),
    },
    'a wrong index': { status: 400, code: 'HISTORY_MISMATCH', make: aliceBackup((b) => ({ index: b.index + 1 })) },
    'an envelope naming alice\'s card, signed with another key': {
      status: 400,
      code: 'ENVELOPE_SIGNATURE_INVALID',
      make: async () => {
        // Alice's own client posts it, so the body matches: only the signature is wrong.
        const forged = sealEnvelope({ sender: { cardId: alice.card.id, signSecretKey: outsider.keys.signSecretKey }, recipients: [bob.card], conversationSid, body: 'forged' });
        const message = await localMessage(server.store, conversationSid, alice.identity, forged.text);
        return { user: alice, body: backupOf(message, conversationSid, forged, orgCard) };
      },
    },
    'an author who is not the sender card\'s identity': {
      status: 400,
      code: 'ENVELOPE_SENDER_NOT_AUTHOR',
      make: async () => ({ user: bob, body: (await send(alice, conversationSid, 'posted by bob', { author: bob.identity })).backup }),
    },
    'a payload sealed for another conversation': {
      status: 400,
      code: 'ENVELOPE_CONVERSATION_MISMATCH',
      make: async () => ({ user: alice, body: (await send(alice, conversationSid, 'moved', { sealedFor: otherConversationSid })).backup }),
    },
    'an orgWrap of another content key': {
      status: 400,
      code: 'ENVELOPE_COMMITMENT_MISMATCH',
      make: aliceBackup((_, sealed) => ({ orgWrap: createRewrap(randomBytes(32), parseEnvelope(sealed.text), orgCard.boxPublicKey) })),
    },
    'an orgWrap for another box key': {
      status: 400,
      code: 'ENVELOPE_DECRYPT_FAILED',
      make: aliceBackup((_, sealed) => ({ orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), generateDeviceKeys().boxPublicKey) })),
    },
    'an orgWrap bound to another envelope': {
      status: 400,
      code: 'ENVELOPE_DECRYPT_FAILED',
      make: aliceBackup((_, sealed) => ({ orgWrap: createRewrap(sealed.cek, parseEnvelope(seal(alice, conversationSid, 'other').text), orgCard.boxPublicKey) })),
    },
    'an orgWrap that is not canonical base64url': {
      status: 400,
      code: 'REWRAP_MALFORMED',
      // 80 bytes take 107 characters; the last one carries 2 spare bits, which must be zero.
      make: aliceBackup((b) => ({ orgWrap: b.orgWrap.slice(0, -1) + B64U[(B64U.indexOf(b.orgWrap.slice(-1)) & ~3) | 1] })),
    },
    'a message body that is not an envelope': {
      status: 400,
      code: 'ENVELOPE_MALFORMED',
      make: async () => {
        const message = await localMessage(server.store, conversationSid, alice.identity, 'e2ee1.plaintext');
        const orgWrap = orgWrapFor(seal(alice, conversationSid, 'any'), orgCard);
        return { user: alice, body: { conversationSid, messageSid: message.sid, index: message.index, envelope: message.body, orgWrap } };
      },
    },
    'a sender card the directory never issued': {
      status: 400,
      code: 'SENDER_CARD_UNKNOWN',
      make: async () => {
        const keys = generateDeviceKeys();
        const cardId = cardIdOf(fromB64u(createCardRequest(keys, { identity: alice.identity, deviceId: 'unregistered' }).snapshot));
        const sealed = sealEnvelope({ sender: { cardId, signSecretKey: keys.signSecretKey }, recipients: [bob.card], conversationSid, body: 'who am I' });
        const message = await localMessage(server.store, conversationSid, alice.identity, sealed.text);
        return { user: alice, body: backupOf(message, conversationSid, sealed, orgCard) };
      },
    },
  };

  it.each(Object.entries(rejections))('refuses %s', async (_, rejection) => {
    const { user, body } = await rejection.make();
    const res = await postHistory(server.app, user, body);
    expect(res.statusCode, res.body).toBe(rejection.status);
    expect(errorCode(res)).toBe(rejection.code);
  });

  const garbage: Record<string, (valid: HistoryPostRequest) => unknown> = {
    'index as a string': (v) => ({ ...v, index: String(v.index) }),
    'a negative index': (v) => ({ ...v, index: -1 }),
    'a fractional index': (v) => ({ ...v, index: 0.5 }),
    'conversationSid as a number': (v) => ({ ...v, conversationSid: 42 }),
    'a "." conversationSid': (v) => ({ ...v, conversationSid: '.' }),
    'envelope as an object': (v) => ({ ...v, envelope: { text: v.envelope } }),
    'no orgWrap': ({ orgWrap: _, ...rest }) => rest,
    'no messageSid': ({ messageSid: _, ...rest }) => rest,
    'an extra member': (v) => ({ ...v, body: 'plaintext copy' }),
    'an empty envelope': (v) => ({ ...v, envelope: '' }),
    'an envelope over the size limit': (v) => ({ ...v, envelope: v.envelope + 'A'.repeat(MAX_ENVELOPE_TEXT_CHARS) }),
    'an orgWrap in padded standard base64': (v) => ({ ...v, orgWrap: Buffer.from(fromB64u(v.orgWrap)).toString('base64') }),
    'an orgWrap with a character outside base64url': (v) => ({ ...v, orgWrap: `+${v.orgWrap.slice(1)}` }),
    'an orgWrap one character short': (v) => ({ ...v, orgWrap: v.orgWrap.slice(1) }),
    'an array': (v) => [v],
    'null': () => null,
    'a string': (v) => JSON.stringify(v),
  };

  it.each(Object.entries(garbage))('refuses a body with %s (400 BAD_REQUEST)', async (_, mangle) => {
    const { backup } = await send(alice, conversationSid, 'well formed');
    const res = await postHistory(server.app, alice, mangle(backup));
    expect(res.statusCode, res.body).toBe(400);
    expect(errorCode(res)).toBe('BAD_REQUEST');
  });
});

describe('POST /v1/history acceptance', () => {
  let alice: Member;
  let bob: Member;
  let conversationSid: string;

  beforeAll(async () => {
    [alice, bob] = await Promise.all([member('alice'), member('bob')]);
    conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
  });

  it('stores a valid backup (201), and answers 200 for the same backup again', async () => {
    const { backup, message, sealed } = await send(alice, conversationSid, 'keep me');
    const first = await postHistory(server.app, alice, backup);
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toEqual({ stored: true });
    // A receiver's backup of the same message (its own orgWrap) is the same record.
    const again = await postHistory(server.app, bob, { ...backup, orgWrap: orgWrapFor(sealed, orgCard) });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ stored: false });
    const [record, ...rest] = (await server.store.history(conversationSid, message.index - 1, 10)).filter((r) => r.messageSid === message.sid);
    expect(rest).toEqual([]);
    expect(record).toMatchObject({ author: alice.identity, senderCardId: alice.card.id, envelope: sealed.text, orgWrap: backup.orgWrap });
    expect(JSON.stringify(record)).not.toContain('keep me');
  });

  it('stores one record for 20 concurrent posts of the same backup: one 201, nineteen 200', async () => {
    const { backup, message } = await send(bob, conversationSid, 'at once');
    const statuses = (await Promise.all(Array.from({ length: 20 }, () => postHistory(server.app, bob, backup)))).map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    expect((await server.store.history(conversationSid, -1, MAX_HISTORY_PAGE_MESSAGES)).filter((r) => r.messageSid === message.sid)).toHaveLength(1);
  });

  describe('a revoked sender card', () => {
    let dave: Member;
    let before: Awaited<ReturnType<typeof send>>;

    beforeAll(async () => {
      dave = await member('dave');
      await joinLocal(server.store, conversationSid, dave.identity);
      // Revocation times are whole seconds and a message in the revocation's own second counts as
      // after it (fail closed), so "before" is a few seconds before.
      before = await send(dave, conversationSid, 'sent before the revocation', { dateCreatedMs: Date.now() - 5_000 });
      const revoked = await revokeCard(server.app, dave, dave.card.id, { keys: dave.keys, cardId: dave.card.id });
      expect(revoked.statusCode, revoked.body).toBe(200);
    });

    it('still verifies a message sent before the revocation', async () => {
      const res = await postHistory(server.app, dave, before.backup);
      expect(res.statusCode, res.body).toBe(201);
    });

    it('refuses a message sent after it (ENVELOPE_SENDER_REVOKED)', async () => {
      const after = await send(dave, conversationSid, 'sent after the revocation');
      const res = await postHistory(server.app, dave, after.backup);
      expect(res.statusCode, res.body).toBe(400);
      expect(errorCode(res)).toBe('ENVELOPE_SENDER_REVOKED');
    });
  });
});

describe('POST /v1/history: an edited message', () => {
  let alice: Member;
  let bob: Member;
  let conversationSid: string;

  beforeAll(async () => {
    [alice, bob] = await Promise.all([member('alice'), member('bob')]);
    conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
  });

  /** A version 2 payload from `from`'s device for alice and bob, as the client wrapper seals it; an edit when `edit` is given. */
  const sealVersion = (from: Member, body: string, edit?: EditMarker) =>
    sealEnvelope({ sender: from.sender, recipients: [alice.card, bob.card], conversationSid, body, content: edit ? { edit } : {} });

  /** alice sends `body` and backs it up (201). */
  async function sent(body: string) {
    const sealed = sealVersion(alice, body);
    const message = await localMessage(server.store, conversationSid, alice.identity, sealed.text);
    const res = await postHistory(server.app, alice, backupOf(message, conversationSid, sealed, orgCard));
    expect(res.statusCode, res.body).toBe(201);
    return { message, sealed, original: sealed.payload.messageId };
  }

  /** The message's body on the transport becomes `sealed` (the author's edit, or the transport's own doing); its backup. */
  async function bodyBecomes(message: { sid: string; index: number }, sealed: SealedEnvelope): Promise<HistoryPostRequest> {
    expect(await server.store.updateMessage(conversationSid, message.sid, { body: sealed.text }, Date.now())).not.toBeNull();
    return backupOf(message, conversationSid, sealed, orgCard);
  }

  /** What a participant who joins now reads of the message from history (opened and verified as a client does). */
  async function laterJoinerReads(message: { sid: string; index: number }): Promise<string> {
    const agent = await member('agent');
    await joinLocal(server.store, conversationSid, agent.identity);
    const res = await readHistory(server.app, agent, conversationSid, { cardId: agent.card.id, after: message.index - 1, limit: 1 });
    expect(res.statusCode, res.body).toBe(200);
    const messages = res.json<HistoryResponse>().messages;
    expect(messages.map((m) => m.messageSid)).toEqual([message.sid]);
    return openHistory(messages, agent, conversationSid, [alice.card, bob.card])[0]!;
  }

  const storedEnvelope = async (messageSid: string) => (await server.store.getHistory(conversationSid, messageSid))?.envelope;

  it('replaces the copy with each newer edit (200 {stored: true, replaced: true}): a later joiner reads the latest version, verified', async () => {
    const { message, original } = await sent('see you at 3');
    for (const [n, body] of [[1, 'see you at 4'], [2, 'see you at 5']] as const) {
      const edit = sealVersion(alice, body, { of: original, n });
      // bob's device (send+receive backups) posts it with its own orgWrap: the same version either way.
      const res = await postHistory(server.app, bob, await bodyBecomes(message, edit));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ stored: true, replaced: true });
      expect(await storedEnvelope(message.sid)).toBe(edit.text);
    }
    expect(await laterJoinerReads(message)).toBe('see you at 5');
  });

  it('replaces the original with an edit that skips versions, then answers 200 {stored: false} for the same edit again', async () => {
    const { message, original } = await sent('draft');
    const backup = await bodyBecomes(message, sealVersion(alice, 'final', { of: original, n: 2 }));
    expect((await postHistory(server.app, alice, backup)).json()).toEqual({ stored: true, replaced: true });
    const again = await postHistory(server.app, alice, backup);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ stored: false });
    expect(await laterJoinerReads(message)).toBe('final');
  });

  it('never rolls back: an older version the transport holds again is not stored (200 {stored: false})', async () => {
    const { message, sealed, original } = await sent('v0');
    const first = sealVersion(alice, 'v1', { of: original, n: 1 });
    await bodyBecomes(message, first);
    expect((await postHistory(server.app, alice, await bodyBecomes(message, sealVersion(alice, 'v2', { of: original, n: 2 })))).statusCode).toBe(200);
    // The transport puts back the first edit, then the original: each is the current body when posted.
    for (const older of [first, sealed]) {
      const res = await postHistory(server.app, alice, await bodyBecomes(message, older));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ stored: false });
    }
    expect(await laterJoinerReads(message)).toBe('v2');
  });

  it('refuses a version that is not the current body, older or newer (400 HISTORY_MISMATCH), and keeps the copy', async () => {
    const { message, original } = await sent('first words');
    const first = sealVersion(alice, 'second words', { of: original, n: 1 });
    await bodyBecomes(message, first);
    const current = sealVersion(alice, 'third words', { of: original, n: 2 });
    const currentBackup = await bodyBecomes(message, current);
    const notYetSent = sealVersion(alice, 'fourth words', { of: original, n: 3 });
    for (const sealed of [first, notYetSent]) {
      const res = await postHistory(server.app, alice, backupOf(message, conversationSid, sealed, orgCard));
      expect(res.statusCode, res.body).toBe(400);
      expect(errorCode(res)).toBe('HISTORY_MISMATCH');
    }
    expect(await laterJoinerReads(message)).toBe('first words');
    expect((await postHistory(server.app, alice, currentBackup)).json()).toEqual({ stored: true, replaced: true });
  });

  it("refuses a newer edit of another message put in this one's place (400 ENVELOPE_EDIT_MISMATCH), and keeps the copy", async () => {
    const meeting = await sent('meeting moved to Tuesday');
    const other = await sent('lunch?');
    const otherEdit = sealVersion(alice, 'meeting cancelled', { of: other.original, n: 7 });
    const res = await postHistory(server.app, bob, await bodyBecomes(meeting.message, otherEdit));
    expect(res.statusCode, res.body).toBe(400);
    expect(errorCode(res)).toBe('ENVELOPE_EDIT_MISMATCH');
    expect(await storedEnvelope(meeting.message.sid)).toBe(meeting.sealed.text);
  });

  it("refuses an edit signed by someone else than the copy's author, even with the transport's author changed (400 ENVELOPE_SENDER_NOT_AUTHOR)", async () => {
    const { message, sealed, original } = await sent('transfer approved');
    const forged = sealVersion(bob, 'transfer denied', { of: original, n: 1 });
    await bodyBecomes(message, forged);
    // The transport also names bob as the author (behind the relay's back, in its database).
    const db = new Database(join(server.config.dataDir, SQLITE_FILENAME));
    try {
      db.prepare('UPDATE messages SET author = ? WHERE sid = ?').run(bob.identity, message.sid);
    } finally {
      db.close();
    }
    const res = await postHistory(server.app, bob, backupOf(message, conversationSid, forged, orgCard));
    expect(res.statusCode, res.body).toBe(400);
    expect(errorCode(res)).toBe('ENVELOPE_SENDER_NOT_AUTHOR');
    expect(await storedEnvelope(message.sid)).toBe(sealed.text);
  });
});

describe('GET /v1/history/:conversationSid', () => {
  let alice: Member;
  let bob: Member;
  let agent: Member;
  let outsider: Member;
  let conversationSid: string;
  const bodies = ['one', 'two', 'three', 'four', 'five'];

  beforeAll(async () => {
    [alice, bob, agent, outsider] = await Promise.all([member('alice'), member('bob'), member('agent'), member('outsider')]);
    conversationSid = await localConversation(server.store, [alice.identity, bob.identity]);
    for (const [i, body] of bodies.entries()) {
      const { backup } = await send(i % 2 ? bob : alice, conversationSid, body);
      expect((await postHistory(server.app, i % 2 ? bob : alice, backup)).statusCode).toBe(201);
    }
    // The support agent joins later: no envelope has a slot for its card.
    await joinLocal(server.store, conversationSid, agent.identity);
  });

  const read = (user: Member | TestUser, query: Record<string, string | number>) => readHistory(server.app, user, conversationSid, query);

  it('gives a participant every message in index order, with rewraps that open to the bodies under the original signatures', async () => {
    const res = await read(agent, { cardId: agent.card.id, after: -1, limit: 100 });
    expect(res.statusCode, res.body).toBe(200);
    const { messages } = res.json<HistoryResponse>();
    expect(messages.map((m) => m.index)).toEqual([0, 1, 2, 3, 4]);
    expect(messages.map((m) => m.author)).toEqual([alice, bob, alice, bob, alice].map((m) => m.identity));
    expect(openHistory(messages, agent, conversationSid, [alice.card, bob.card])).toEqual(bodies);
  });

  it('reads with the defaults when after and limit are left out', async () => {
    const res = await read(agent, { cardId: agent.card.id });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<HistoryResponse>().messages.map((m) => m.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it('pages with after and limit', async () => {
    const page = async (after: number, limit: number) => {
      const res = await read(bob, { cardId: bob.card.id, after, limit });
      expect(res.statusCode, res.body).toBe(200);
      return res.json<HistoryResponse>().messages;
    };
    expect((await page(-1, 2)).map((m) => m.index)).toEqual([0, 1]);
    const second = await page(1, 2);
    expect(second.map((m) => m.index)).toEqual([2, 3]);
    expect(openHistory(second, bob, conversationSid, [alice.card, bob.card])).toEqual(['three', 'four']);
    expect((await page(3, 2)).map((m) => m.index)).toEqual([4]);
    expect(await page(4, 2)).toEqual([]);
  });

  it('refuses a caller who is not a participant (403 NOT_PARTICIPANT)', async () => {
    const res = await read(outsider, { cardId: outsider.card.id });
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('NOT_PARTICIPANT');
  });

  it('refuses a cardId of another identity (403)', async () => {
    const res = await read(bob, { cardId: alice.card.id });
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('FORBIDDEN');
  });

  it('refuses the caller\'s own revoked card (403)', async () => {
    const tablet = await withDevice(server, bob);
    expect((await revokeCard(server.app, bob, tablet.card.id, { keys: tablet.keys, cardId: tablet.card.id })).statusCode).toBe(200);
    const res = await read(bob, { cardId: tablet.card.id });
    expect(res.statusCode).toBe(403);
    expect(errorCode(res)).toBe('FORBIDDEN');
  });

  it('refuses an unauthenticated read (401)', async () => {
    const res = await server.app.inject({ url: `${ApiPath.historyOf(conversationSid)}?cardId=${bob.card.id}` });
    expect(res.statusCode).toBe(401);
    expect(errorCode(res)).toBe('UNAUTHORIZED');
  });

  it.each<[string, Record<string, string | number>]>([
    ['limit over the maximum', { limit: MAX_HISTORY_PAGE_MESSAGES + 1 }],
    ['limit 0', { limit: 0 }],
    ['after below -1', { after: -2 }],
    ['after beyond 2^53 - 1', { after: '1e20' }],
    ['after that is not an integer', { after: 'one' }],
    ['a cardId that is not a card id', { cardId: 'not-a-card' }],
    ['an unknown query parameter', { before: 3 }],
  ])('refuses %s (400 BAD_REQUEST)', async (_, query) => {
    const res = await read(bob, { cardId: bob.card.id, ...query });
    expect(res.statusCode, res.body).toBe(400);
    expect(errorCode(res)).toBe('BAD_REQUEST');
  });
});

describe('history disabled (no ORG_KEY outside demo mode)', () => {
  const secret = 'history-disabled-test-secret-0123456789';
  let disabled: HistoryServer;
  let alice: Member;

  beforeAll(async () => {
    disabled = await historyServer({ APP_KEY: toB64u(randomBytes(32)), AUTH_JWT_SECRET: secret, DEMO_MODE: 'false' });
    alice = await withDevice(disabled, tokenUser('alice', secret));
  });
  afterAll(() => disabled?.close());

  it('answers 503 HISTORY_DISABLED on both history routes', async () => {
    const sealed = seal(alice, 'CHdisabled', 'no history here');
    const backup = { conversationSid: 'CHdisabled', messageSid: 'IMdisabled', index: 0, envelope: sealed.text, orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), alice.keys.boxPublicKey) };
    for (const res of [await postHistory(disabled.app, alice, backup), await readHistory(disabled.app, alice, 'CHdisabled', { cardId: alice.card.id })]) {
      expect(res.statusCode, res.body).toBe(503);
      expect(errorCode(res)).toBe('HISTORY_DISABLED');
    }
  });

  it('serves no OrgCard (503 HISTORY_DISABLED, as the history routes)', async () => {
    expect(disabled.orgCard).toBeNull();
    expect((await disabled.app.inject({ url: ApiPath.orgCard })).statusCode).toBe(503);
  });
});
