/**
 * rewrap-history (docs/API.md "Rotating keys", step 4) on both stores, with a few thousand copies:
 * copies stored before key ids were recorded, copies recorded under the old OrgKey and copies
 * already under the new one. It moves every copy to the new key in batches, can be stopped and run
 * again without redoing finished copies, prints its progress, leaves alone what it cannot open or
 * what changed meanwhile; a support agent reads every copy, verified, before, during and after.
 * Also `npm run rewrap-history` as a process. Real server, stores and crypto.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orgKeyIdOf } from '../../server/org-key-ring.js';
import { rewrapHistory, rewrapHistoryCommand, type RewrapProgress } from '../../server/rewrap-history.js';
import { openStore } from '../../server/store/index.js';
import type { HistoryRecord, HistoryStore, Store } from '../../server/store/types.js';
import {
  createRewrap,
  generateDeviceKeys,
  orgKeyFromB64u,
  parseEnvelope,
  randomBytes,
  ready,
  sealEnvelope,
  seedToB64u,
  toB64u,
  trustAppKeys,
  type HistoryResponse,
  type OrgKey,
} from '../../shared/index.js';
import { session, testApp, uid, type ServerApp } from '../support/app.js';
import { TEST_APP_KEY } from '../support/env.js';
import { localConversation, openHistory, readHistory, withDevice, type Member } from '../support/history.js';
import { describeEachStore } from '../support/stores.js';

await ready();
const OLD = seedToB64u(randomBytes(32));
const NEW = seedToB64u(randomBytes(32));
const oldKey = orgKeyFromB64u(OLD);
const newKey = orgKeyFromB64u(NEW);
const otherKey = orgKeyFromB64u(seedToB64u(randomBytes(32)));
const NEW_ID = orgKeyIdOf(newKey);

/** Copies in the conversation: a third each stored without a key id, under the old key's id, under the new key's. */
const COPIES = 3000;
const BATCH = 500;
const PAGE = 500;

type Kind = 'legacy' | 'old' | 'new';
const kindOf = (i: number): Kind => (['legacy', 'old', 'new'] as const)[i % 3]!;

/** A device that sends: its card id and sign key, and its own card as the envelope's recipient. */
type Author = Pick<Member, 'identity' | 'sender'> & { card: { id: string; boxPublicKey: Uint8Array } };

/** A copy as the service stores it: the author's envelope, its orgWrap for `key`, and that key's id unless `legacy`. */
function copy(conversationSid: string, index: number, body: string, from: Author, key: OrgKey, legacy: boolean): HistoryRecord {
  const { sender } = from;
  const sealed = sealEnvelope({ sender, recipients: [from.card], conversationSid, body });
  return {
    conversationSid,
    messageSid: `IM${String(index).padStart(32, '0')}`,
    index,
    author: from.identity,
    senderCardId: sender.cardId,
    envelope: sealed.text,
    orgWrap: createRewrap(sealed.cek, parseEnvelope(sealed.text), key.keys.boxPublicKey),
    storedAtMs: Date.now(),
    editN: 0,
    ...(legacy ? {} : { orgKeyId: orgKeyIdOf(key) }),
  };
}

/** Puts records many at a time (SQLite commits what arrives together in one transaction). */
async function putAll(store: HistoryStore, records: readonly HistoryRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 250) await Promise.all(records.slice(i, i + 250).map((r) => store.putHistory(r)));
}

describeEachStore('rewrap-history', (stores) => {
  let server: ServerApp;
  let alice: Member;
  let agent: Member;
  let conversationSid: string;
  const bodies = Array.from({ length: COPIES }, (_, i) => `message ${i} (${kindOf(i)})`);

  /** Every copy of the conversation as the agent reads it from `app`, page by page, each opened and verified. */
  async function agentReadsAll(app: ServerApp['app']): Promise<string[]> {
    const read: string[] = [];
    for (let after = -1; ; ) {
      const res = await readHistory(app, agent, conversationSid, { cardId: agent.card.id, after, limit: PAGE });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<HistoryResponse>();
      read.push(...openHistory(page.messages, agent, conversationSid, [alice.card]));
      if (page.messages.length === 0 || (page.messages.length < PAGE && !page.truncated)) return read;
      after = page.messages[page.messages.length - 1]!.index;
    }
  }

  beforeAll(async () => {
    server = await testApp(stores(), { env: { ORG_KEY: NEW, ORG_KEY_PREVIOUS: OLD } });
    const trusted = trustAppKeys([toB64u(server.config.appKey.publicKey)]);
    const member = async (name: string) => withDevice({ app: server.app, trusted }, await session(server.app, uid(name)));
    [alice, agent] = await Promise.all([member('alice'), member('agent')]);
    conversationSid = await localConversation(server.store, [alice.identity, agent.identity]);
    const keyFor = { legacy: oldKey, old: oldKey, new: newKey };
    await putAll(server.store, bodies.map((body, i) => copy(conversationSid, i, body, alice, keyFor[kindOf(i)], kindOf(i) === 'legacy')));
  }, 120_000);
  afterAll(() => server?.app.close());

  it('serves every copy before the re-wrap, whichever key it is under', async () => {
    expect(await server.store.countHistoryNotWrappedFor(NEW_ID)).toBe((COPIES * 2) / 3);
    expect(await agentReadsAll(server.app)).toEqual(bodies);
  });

  it('moves the copies in batches, stops between two when asked, and goes on where it stopped when run again', async () => {
    const toMove = (COPIES * 2) / 3;
    const stop = new AbortController();
    const progress: RewrapProgress[] = [];
    const first = await rewrapHistory({
      store: server.store,
      orgKey: newKey,
      previousOrgKeys: [oldKey],
      batchSize: BATCH,
      signal: stop.signal,
      onProgress: async (p) => {
        progress.push(p);
        // During the run: a reader finds every copy, the moved ones and the ones still to move.
        if (progress.length === 1) expect(await agentReadsAll(server.app)).toEqual(bodies);
        if (progress.length === 2) stop.abort();
      },
    });
    expect(progress).toEqual([
      { done: BATCH, total: toMove, unopened: 0 },
      { done: 2 * BATCH, total: toMove, unopened: 0 },
    ]);
    expect(first).toMatchObject({ done: 2 * BATCH, rewrapped: 2 * BATCH, stopped: true, orgKeyId: NEW_ID });
    expect(await server.store.countHistoryNotWrappedFor(NEW_ID)).toBe(toMove - 2 * BATCH);
    expect(await agentReadsAll(server.app)).toEqual(bodies);

    // Run again: only what is left is read and written.
    const again: RewrapProgress[] = [];
    const second = await rewrapHistory({ store: server.store, orgKey: newKey, previousOrgKeys: [oldKey], batchSize: BATCH, onProgress: (p) => void again.push(p) });
    expect(second).toMatchObject({ done: toMove - 2 * BATCH, total: toMove - 2 * BATCH, rewrapped: toMove - 2 * BATCH, unopened: 0, stopped: false });
    expect(again.map((p) => p.done)).toEqual([BATCH, toMove - 2 * BATCH]);
    expect(await server.store.countHistoryNotWrappedFor(NEW_ID)).toBe(0);

    // And once more: nothing left to do.
    const third = await rewrapHistory({ store: server.store, orgKey: newKey, previousOrgKeys: [oldKey], onProgress: () => expect.unreachable() });
    expect(third).toMatchObject({ done: 0, total: 0, rewrapped: 0, stopped: false });
  });

  it('leaves every copy under the new key, readable by a service that no longer holds the old one', async () => {
    const records = await server.store.history(conversationSid, -1, COPIES);
    expect(new Set(records.map((r) => r.orgKeyId))).toEqual(new Set([NEW_ID]));
    const newOnly = await testApp(stores(), { env: { ORG_KEY: NEW } });
    try {
      expect(await agentReadsAll(newOnly.app)).toEqual(bodies);
    } finally {
      await newOnly.app.close();
    }
  });

  it('changes a copy only while it still holds the orgWrap read (a newer version stored meanwhile stays)', async () => {
    const record = (await server.store.history(conversationSid, -1, 1))[0]!;
    const change = { conversationSid, messageSid: record.messageSid, orgWrap: record.orgWrap, orgKeyId: 'ffffffffffffffff' };
    expect(await server.store.setOrgWraps([{ ...change, previousOrgWrap: 'a stale orgWrap' }])).toBe(0);
    expect(await server.store.getHistory(conversationSid, record.messageSid)).toEqual(record);
    expect(await server.store.setOrgWraps([])).toBe(0);
  });

  it('reports copies no configured key opens, by the key id they record, and leaves them', async () => {
    const elsewhere = uid('CH');
    const strays = [copy(elsewhere, 0, 'a', alice, otherKey, false), copy(elsewhere, 1, 'b', alice, otherKey, true), copy(elsewhere, 2, 'c', alice, oldKey, false)];
    await putAll(server.store, strays);
    const lines: string[] = [];
    const code = await rewrapHistoryCommand({ orgKey: newKey, previousOrgKeys: [oldKey] }, server.store, (line) => lines.push(line), { batchSize: 2 });
    expect(code).toBe(1);
    expect(lines).toEqual([
      'rewrap-history: 2/3 copies (66%)',
      'rewrap-history: 3/3 copies (100%)',
      `rewrap-history: done, 1 copies moved to ORG_KEY (OrgKey ${NEW_ID})`,
      `rewrap-history: 2 copies open with neither ORG_KEY nor ORG_KEY_PREVIOUS (recorded key ids: ${orgKeyIdOf(otherKey)}, none); ` +
        'they are left as they are: add their OrgKey to ORG_KEY_PREVIOUS and run again',
    ]);
    expect((await server.store.historyNotWrappedFor(NEW_ID, null, 10)).map((r) => r.orgWrap)).toEqual(strays.slice(0, 2).map((r) => r.orgWrap));
    // With the missing key configured, a run moves them too.
    expect(await rewrapHistoryCommand({ orgKey: newKey, previousOrgKeys: [otherKey, oldKey] }, server.store, () => {})).toBe(0);
    expect(await server.store.countHistoryNotWrappedFor(NEW_ID)).toBe(0);
  });
});

describe('npm run rewrap-history', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'e2ee-rewrap-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  /** Runs the command as an operator does, with only these variables about keys and stores. */
  const run = (env: Record<string, string>) =>
    spawnSync('npm', ['run', '--silent', 'rewrap-history'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dataDir, DATABASE_URL: '', DEMO_MODE: 'true', APP_KEY: TEST_APP_KEY, ...env },
    });

  it('moves the copies of the SQLite store in DATA_DIR to ORG_KEY, printing its progress', async () => {
    let store: Store = await openStore({ dataDir });
    const keys = generateDeviceKeys();
    const device = { identity: 'dev', sender: { cardId: 'c'.repeat(64), signSecretKey: keys.signSecretKey }, card: { id: 'c'.repeat(64), boxPublicKey: keys.boxPublicKey } };
    await putAll(store, [0, 1, 2].map((i) => copy('CH1', i, `copy ${i}`, device, oldKey, i === 0)));
    await store.close();

    const result = run({ ORG_KEY: NEW, ORG_KEY_PREVIOUS: OLD });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`rewrap-history: 3/3 copies (100%)\nrewrap-history: done, 3 copies moved to ORG_KEY (OrgKey ${NEW_ID})\n`);
    expect(result.status).toBe(0);
    store = await openStore({ dataDir });
    try {
      expect(await store.countHistoryNotWrappedFor(NEW_ID)).toBe(0);
    } finally {
      await store.close();
    }
    expect(run({ ORG_KEY: NEW }).stdout).toBe(`rewrap-history: every copy is already wrapped for ORG_KEY (OrgKey ${NEW_ID})\n`);
  });

  it('says what is wrong with the configuration, and exits 1', () => {
    const result = run({ ORG_KEY: NEW, ORG_KEY_PREVIOUS: 'x' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('rewrap-history: invalid configuration:\n  - ORG_KEY_PREVIOUS is invalid');
  });
});
