/**
 * Migration 8 logs the cards of an existing database in its documented order: by time (a
 * revocation never before its card's registration), registrations before revocations, then by
 * card id; each identity's events chain and the stored nodes are the tree of the leaves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { toHex } from '../../shared/encoding.js';
import { decodeCardEvent, emptyChain, extendChain } from '../../shared/log-event.js';
import { leafHash, MerkleTree, rangeNodes } from '../../shared/merkle.js';
import { MIGRATIONS, MIGRATIONS_TABLE, migrationsTable, SQLITE_DIALECT } from '../../server/store/migrations.js';
import { openSqliteStore, SQLITE_FILENAME } from '../../server/store/sqlite.js';
import { makeCard } from './store.fixtures.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

it('logs the cards of a database made before the log, in the documented order', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'twilio-e2ee-log-migration-'));
  dirs.push(dataDir);
  const id = (c: string) => c.repeat(64);
  const cards = [
    makeCard('bob', { id: id('b'), registeredAt: 100 }),
    makeCard('alice', { id: id('a'), registeredAt: 100 }),
    makeCard('alice', { id: id('c'), registeredAt: 200, revokedAt: 300 }),
    makeCard('alice', { id: id('d'), registeredAt: 300 }),
    makeCard('bob', { id: id('e'), registeredAt: 400, revokedAt: 350 }), // revoked "before" it was registered: clocks apart
  ];
  const db = new Database(join(dataDir, SQLITE_FILENAME));
  db.exec(migrationsTable(SQLITE_DIALECT));
  for (const migration of MIGRATIONS.filter((m) => m.version < 8)) {
    db.exec(migration.sql(SQLITE_DIALECT));
    db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (version, applied_at_ms) VALUES (?, 1)`).run(migration.version);
  }
  const insert = db.prepare(`INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature, app_signature, app_key_id, created_at, registered_at, revoked_at)
    VALUES (@id, @identity, @deviceId, @signKey, @boxKey, @snapshot, @selfSignature, @appSignature, @appKeyId, @createdAt, @registeredAt, @revokedAt)`);
  for (const card of cards) insert.run(card);
  db.close();

  const store = await openSqliteStore({ dataDir });
  try {
    const events = [];
    for (let i = 0; i < (await store.logSize()); i += 1) events.push(decodeCardEvent((await store.logEvent(i))!.leaf));
    expect(events.map((e) => [e.time, e.kind, e.cardId[0]])).toEqual([
      [100, 'registration', 'a'],
      [100, 'registration', 'b'],
      [200, 'registration', 'c'],
      [300, 'registration', 'd'],
      [300, 'revocation', 'c'],
      [400, 'registration', 'e'],
      [400, 'revocation', 'e'],
    ]);
    for (const identity of ['alice', 'bob']) extendChain(emptyChain(identity), events.filter((e) => e.identity === identity));
    const tree = new MerkleTree(await Promise.all(events.map(async (_, i) => leafHash((await store.logEvent(i))!.leaf))));
    const nodes = rangeNodes({ start: 0, end: tree.size });
    expect((await store.logNodes(nodes)).map(toHex)).toEqual(nodes.map(tree.node).map(toHex));
    // New card changes continue the chains.
    await store.revokeCard(id('d'), 500);
    const alice = await store.identityEvents('alice', 0, Number.MAX_SAFE_INTEGER, 10);
    expect(extendChain(emptyChain('alice'), alice.map((e) => decodeCardEvent(e.leaf))).head?.seq).toBe(4);
  } finally {
    await store.close();
  }
});
