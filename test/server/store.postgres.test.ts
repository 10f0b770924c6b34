/**
 * The store contract against PostgreSQL, in a fresh schema per run (dropped afterwards). Without
 * a reachable server the suite is skipped locally and fails in CI (CI=true), where it must run.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateStore, openStore } from '../../server/store/index.js';
import { MIGRATIONS_TABLE } from '../../server/store/migrations.js';
import { openPostgresStore } from '../../server/store/postgres.js';
import { postgresAvailable, runPostgres, TEST_DATABASE_URL } from '../support/stores.js';
import type { Store } from '../../server/store/types.js';
import { ALL_VERSIONS, makeCard, makeConversation, makeMessage, registerOptions, uid } from './store.fixtures.js';
import { storeContract } from './store.contract.js';

const url = TEST_DATABASE_URL;
const schema = `store_test_${randomBytes(6).toString('hex')}`;
const available = postgresAvailable;

/** Runs SQL outside any store, e.g. to drop the test schemas. */
async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe.skipIf(!runPostgres)('postgres store', () => {
  const schemas = [schema];
  const open = (options: { schema?: string; poolSize?: number } = {}) =>
    openPostgresStore({ connectionString: url, schema, ...options });

  afterAll(async () => {
    if (!available) return;
    await admin(async (client) => {
      for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
    });
  });

  storeContract('postgres', () => open());

  describe('two instances (two pools) on one schema behave as one', () => {
    let a: Store;
    let b: Store;
    beforeAll(async () => {
      [a, b] = await Promise.all([open({ poolSize: 5 }), open({ poolSize: 5 })]);
    });
    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()]);
    });

    it('shows a card registered via one through the other', async () => {
      const card = makeCard(uid('alice'));
      expect(await a.registerCard(card, registerOptions())).toEqual({ ok: true, superseded: null });
      expect(await b.getCard(card.id)).toEqual(card);
      expect(await b.registerCard({ ...card }, registerOptions())).toEqual({ ok: false, reason: 'CARD_EXISTS' });
    });

    it('keeps message indexes gap-free under concurrent appends from both', async () => {
      const conversation = makeConversation();
      await a.createConversation(conversation);
      const appended = await Promise.all(range(60).map((i) => (i % 2 ? a : b).appendMessage(makeMessage(conversation.sid))));
      expect(appended.map((m) => m.index).sort((x, y) => x - y)).toEqual(range(60));
    });

    it('holds the active-card limit under concurrent registrations from both', async () => {
      const alice = uid('alice');
      const results = await Promise.all(
        range(20).map((i) => (i % 2 ? a : b).registerCard(makeCard(alice), registerOptions({ maxActivePerIdentity: 3 }))),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(3);
      expect((await a.activeCards([alice])).get(alice)).toHaveLength(3);
    });

    it('agrees on one first writer for settings and history', async () => {
      const k = uid('setting');
      const values = await Promise.all(range(10).map((i) => (i % 2 ? a : b).putSettingIfAbsent(k, `v${i}`)));
      expect(new Set(values).size).toBe(1);

      const record = {
        conversationSid: uid('CH'),
        messageSid: uid('IM'),
        index: 0,
        author: 'alice',
        senderCardId: uid('card'),
        envelope: 'e',
        orgWrap: 'w',
        storedAtMs: Date.now(),
        editN: 0,
      };
      const puts = await Promise.all(range(20).map((i) => (i % 2 ? a : b).putHistory(record)));
      expect(puts.filter((r) => r === 'created')).toHaveLength(1);
    });
  });

  it('migrates once when several processes open a fresh schema at the same time', async () => {
    const fresh = `store_test_${randomBytes(6).toString('hex')}`;
    schemas.push(fresh);
    const stores = await Promise.all(range(4).map(() => open({ schema: fresh, poolSize: 2 })));
    try {
      const card = makeCard(uid('alice'));
      expect((await stores[0]!.registerCard(card, registerOptions())).ok).toBe(true);
      expect(await stores[3]!.getCard(card.id)).toEqual(card);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const versions = await admin((client) =>
      client.query(`SELECT version FROM ${pg.escapeIdentifier(fresh)}.${MIGRATIONS_TABLE} ORDER BY version`),
    );
    expect(versions.rows.map((row) => row.version)).toEqual(ALL_VERSIONS);
  });

  it('migrates with exactly one of two migrateStore calls at the same time, the other finding nothing to do', async () => {
    const fresh = `store_test_${randomBytes(6).toString('hex')}`;
    schemas.push(fresh);
    const reports = await Promise.all(range(2).map(() => migrateStore({ databaseUrl: url, schema: fresh })));
    expect(reports.map((r) => r.applied).sort((a, b) => a.length - b.length)).toEqual([[], ALL_VERSIONS]);
    expect(reports.map((r) => r.schema)).toEqual([fresh, fresh]);
  });

  describe('dropped connections', () => {
    const applicationName = uid('store-test');
    const terminate = () =>
      admin((client) =>
        client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]),
      );
    const openNamed = (poolSize: number, onError?: (err: Error) => void) =>
      openPostgresStore({
        connectionString: `${url}${url.includes('?') ? '&' : '?'}application_name=${applicationName}`,
        schema,
        poolSize,
        onError,
      });

    it('reports a dropped idle connection to onError and reconnects', async () => {
      const errors: Error[] = [];
      const store = await openNamed(1, (err) => errors.push(err));
      try {
        await store.ping();
        await terminate();
        await expect.poll(() => errors.length).toBeGreaterThan(0);
        await expect(store.ping()).resolves.toBeUndefined();
      } finally {
        await store.close();
      }
    });

    it('rejects (never crashes) calls whose connection drops mid-transaction, then recovers', async () => {
      const store = await openNamed(4);
      try {
        const alice = uid('alice');
        const outcomes = new Set<boolean>();
        for (let round = 0; round < 5; round++) {
          const settled = Promise.allSettled(
            range(20).map(() => store.registerCard(makeCard(alice), registerOptions({ maxActivePerIdentity: 100 }))),
          );
          await terminate();
          const results = await settled;
          outcomes.add(results.some((r) => r.status === 'rejected'));
        }
        expect(outcomes.has(true)).toBe(true); // the drops did hit calls in flight
        await expect(store.ping()).resolves.toBeUndefined();
        expect((await store.registerCard(makeCard(uid('bob')), registerOptions())).ok).toBe(true);
      } finally {
        await store.close();
      }
    });
  });

  it('is what openStore chooses with a databaseUrl', async () => {
    const store = await openStore({ databaseUrl: url, schema });
    expect(store.kind).toBe('postgres');
    await store.close();
  });
});

describe('postgres store without a server', () => {
  it('rejects at open (no crash) when the server is unreachable', async () => {
    await expect(openPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toThrow();
  });
});
