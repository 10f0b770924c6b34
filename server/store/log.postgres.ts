/**
 * The transparency log on PostgreSQL. Several instances append to one log: `appendEvent` runs in
 * the card store's transaction and takes the log's advisory lock first, so each event reads the
 * size and the identity's head that the previous commit left, and the tree never forks. The lock
 * is taken after the card's own checks (held from the append to the commit); nothing holding it
 * waits for another lock, so it cannot deadlock with the per-identity card lock.
 *
 * The lock serializes every card change of every instance from the append to the commit, so the
 * append makes as few round trips as it can under it: the lock; one read (size, head, siblings);
 * one write (the event and its nodes). The read cannot join the lock's statement: under READ
 * COMMITTED a statement sees the commits from before it started, that is before it had the lock.
 */
import type pg from 'pg';
import type { CardEventKind } from '../../shared/log-event.js';
import type { PostgresConnection } from './connection.postgres.js';
import { appendRows, bytes, buffer, eventValues, INSERT_EVENT, nextEvent, nodeKey, publishes, siblingsOf, toLogCheckpoint, toLogCosignature, toLogEvent } from './log.js';
import { numberedPlaceholders } from './migrations.js';
import { int, type Row } from './rows.js';
import type { LogStore } from './types.js';

const SQL = {
  // Two-key form: its own lock space, apart from the migrations' and the cards' locks.
  lock: `SELECT pg_advisory_xact_lock(hashtext('twilio-e2ee:log'), 0)`,
  size: 'SELECT coalesce(max(idx) + 1, 0) AS n FROM log_events',
  // What an append needs, in one statement: the size; the identity's head (none: nulls); the
  // stored siblings of a leaf appended at that size, in level order (siblingsOf: node
  // (l, (size >> l) - 1) for each level l below the size's lowest zero bit). Each node is read by
  // its key in a subquery of its own: a join let the planner hash all of level 0 before the
  // tables' statistics were gathered, a scan of the whole log under the lock.
  appendState: `WITH log AS (SELECT coalesce(max(idx) + 1, 0) AS size FROM log_events),
      head AS (SELECT idx, chain_seq, event_time FROM log_events WHERE identity = $1 ORDER BY chain_seq DESC LIMIT 1)
    SELECT log.size, head.chain_seq, head.event_time, (SELECT hash FROM log_nodes WHERE level = 0 AND idx = head.idx) AS hash,
      ARRAY(SELECT (SELECT hash FROM log_nodes n WHERE n.level = l.level AND n.idx = (log.size >> l.level) - 1)
        FROM generate_series(0, 52) AS l(level) WHERE (log.size + 1) % (2::bigint << l.level) = 0 ORDER BY l.level) AS siblings
    FROM log LEFT JOIN head ON true`,
  // The event and its nodes in one statement.
  insertRows: `WITH event AS (${numberedPlaceholders(INSERT_EVENT)})
    INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::bytea[])`,
  nodes: `SELECT level, idx, hash FROM unnest($1::bigint[], $2::bigint[]) AS q(level, idx) JOIN log_nodes USING (level, idx)`,
  event: 'SELECT * FROM log_events WHERE idx = $1',
  cardEvents: 'SELECT * FROM log_events WHERE card_id = ANY ($1::text[]) AND kind = 1',
  identityEvents: 'SELECT * FROM log_events WHERE identity = $1 AND chain_seq >= $2 AND idx < $3 ORDER BY chain_seq LIMIT $4',
  latest: 'SELECT * FROM log_checkpoints ORDER BY size DESC LIMIT 1',
  checkpoint: 'SELECT * FROM log_checkpoints WHERE size = $1',
  insertCheckpoint: 'INSERT INTO log_checkpoints (size, root_hash, note, created_at_ms) VALUES ($1, $2, $3, $4)',
  putCosignature: `INSERT INTO log_cosignatures (size, key_name, key_id, line) SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM log_checkpoints WHERE size = $1)
    ON CONFLICT (size, key_name, key_id) DO UPDATE SET line = excluded.line`,
  cosignatures: 'SELECT * FROM log_cosignatures WHERE size = $1 ORDER BY key_name, key_id',
} as const;

type Query = (sql: string, values?: unknown[]) => Promise<Row[]>;

/** The hashes of `nodes` in order, read in one query; rejects when one is not stored. */
async function readNodes(query: Query, nodes: readonly { level: number; index: number }[]): Promise<Uint8Array[]> {
  if (nodes.length === 0) return [];
  const rows = await query(SQL.nodes, [nodes.map((n) => n.level), nodes.map((n) => n.index)]);
  const found = new Map(rows.map((row) => [nodeKey({ level: int(row, 'level'), index: int(row, 'idx') }), bytes(row, 'hash')]));
  return nodes.map((n) => {
    const hash = found.get(nodeKey(n));
    if (!hash) throw new Error(`store: log node ${nodeKey(n)} is not stored`);
    return hash;
  });
}

export type AppendEvent = (client: pg.PoolClient, kind: CardEventKind, identity: string, cardId: string, time: number) => Promise<void>;

/** Appends the identity's next event in `client`'s transaction (prepared statements: parsed once per connection). */
export const appendEvent: AppendEvent = async (client, kind, identity, cardId, time) => {
  await client.query({ name: 'log-lock', text: SQL.lock });
  const state = (await client.query<Row>({ name: 'log-append-state', text: SQL.appendState, values: [identity] })).rows[0]!;
  const size = int(state, 'size');
  const siblings = state.siblings as (Uint8Array | null)[];
  if (siblings.length !== siblingsOf(size).length || siblings.includes(null)) throw new Error(`store: a log node the leaf at ${size} joins with is not stored`);
  const head = state.chain_seq === null ? null : { seq: int(state, 'chain_seq'), hash: bytes(state, 'hash'), time: int(state, 'event_time') };
  const rows = appendRows(size, nextEvent(identity, head, kind, cardId, time), siblings as Uint8Array[]);
  const nodes = [rows.nodes.map((n) => n.level), rows.nodes.map((n) => n.idx), rows.nodes.map((n) => n.hash)];
  await client.query({ name: 'log-append-rows', text: SQL.insertRows, values: [...eventValues(rows), ...nodes] });
};

export function postgresLog({ rows, first, transaction }: PostgresConnection): LogStore {
  return {
    async logSize() {
      return int((await rows(SQL.size))[0]!, 'n');
    },
    async logNodes(nodes) {
      return readNodes(rows, nodes);
    },
    async logEvent(index) {
      const row = await first(SQL.event, [index]);
      return row ? toLogEvent(row) : null;
    },
    async cardEvents(cardIds) {
      const found = cardIds.length === 0 ? [] : await rows(SQL.cardEvents, [cardIds]);
      return new Map(found.map((row) => [String(row.card_id), toLogEvent(row)]));
    },
    async identityEvents(identity, sinceSeq, beforeIndex, limit) {
      return (await rows(SQL.identityEvents, [identity, sinceSeq, beforeIndex, limit])).map(toLogEvent);
    },
    async latestCheckpoint() {
      const row = await first(SQL.latest);
      return row ? toLogCheckpoint(row) : null;
    },
    async logCheckpoint(size) {
      const row = await first(SQL.checkpoint, [size]);
      return row ? toLogCheckpoint(row) : null;
    },
    // Under the log's lock: instances publishing at the same moment store one checkpoint, and never a smaller size after a larger.
    putCheckpoint: (checkpoint, minIntervalMs) =>
      transaction(async (client) => {
        await client.query(SQL.lock);
        const row = (await client.query<Row>(SQL.latest)).rows[0];
        const latest = row ? toLogCheckpoint(row) : null;
        if (!publishes(latest, checkpoint, minIntervalMs)) return latest!;
        await client.query(SQL.insertCheckpoint, [checkpoint.size, buffer(checkpoint.rootHash), checkpoint.note, checkpoint.createdAtMs]);
        return checkpoint;
      }),
    async putLogCosignature(size, { name, keyId, line }) {
      return (await rows(`${SQL.putCosignature} RETURNING size`, [size, name, keyId, line])).length > 0;
    },
    async logCosignatures(size) {
      return (await rows(SQL.cosignatures, [size])).map(toLogCosignature);
    },
  };
}
