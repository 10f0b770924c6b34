/**
 * The transparency log on PostgreSQL. Several instances append to one log: `appendEvent` runs in
 * the card store's transaction and takes the log's advisory lock first, so each event reads the
 * size and the identity's head that the previous commit left, and the tree never forks. The lock
 * is taken after the card's own checks (held from the append to the commit); nothing holding it
 * waits for another lock, so it cannot deadlock with the per-identity card lock.
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
  head: `SELECT e.chain_seq, e.event_time, n.hash FROM log_events e JOIN log_nodes n ON n.level = 0 AND n.idx = e.idx
    WHERE e.identity = $1 ORDER BY e.chain_seq DESC LIMIT 1`,
  nodes: `SELECT level, idx, hash FROM unnest($1::bigint[], $2::bigint[]) AS q(level, idx) JOIN log_nodes USING (level, idx)`,
  insertEvent: numberedPlaceholders(INSERT_EVENT),
  insertNodes: 'INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])',
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

/** Appends the identity's next event in `client`'s transaction. */
export const appendEvent: AppendEvent = async (client, kind, identity, cardId, time) => {
  const query: Query = async (sql, values) => (await client.query<Row>(sql, values)).rows;
  await client.query(SQL.lock);
  const size = int((await query(SQL.size))[0]!, 'n');
  const head = (await query(SQL.head, [identity]))[0];
  const event = nextEvent(identity, head ? { seq: int(head, 'chain_seq'), hash: bytes(head, 'hash'), time: int(head, 'event_time') } : null, kind, cardId, time);
  const rows = appendRows(size, event, await readNodes(query, siblingsOf(size)));
  await client.query(SQL.insertEvent, eventValues(rows));
  await client.query(SQL.insertNodes, [rows.nodes.map((n) => n.level), rows.nodes.map((n) => n.idx), rows.nodes.map((n) => n.hash)]);
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
