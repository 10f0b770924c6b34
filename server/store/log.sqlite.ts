/**
 * The transparency log on SQLite. `appendEvent` runs inside the card store's transactions (the
 * group commit's savepoints), so an event is written with its card change or not at all; one
 * writer at a time (IMMEDIATE), so the log's size is read there, not kept in memory.
 */
import type { CardEventKind } from '../../shared/log-event.js';
import type { SqliteConnection } from './connection.sqlite.js';
import { appendRows, bytes, buffer, eventValues, INSERT_EVENT, INSERT_NODE, nextEvent, publishes, siblingsOf, toLogCheckpoint, toLogCosignature, toLogEvent } from './log.js';
import { int } from './rows.js';
import type { LogStore } from './types.js';

const SQL = {
  size: 'SELECT coalesce(max(idx) + 1, 0) AS n FROM log_events',
  head: `SELECT e.chain_seq, e.event_time, n.hash FROM log_events e JOIN log_nodes n ON n.level = 0 AND n.idx = e.idx
    WHERE e.identity = ? ORDER BY e.chain_seq DESC LIMIT 1`,
  node: 'SELECT hash FROM log_nodes WHERE level = ? AND idx = ?',
  insertEvent: INSERT_EVENT,
  insertNode: INSERT_NODE,
  event: 'SELECT * FROM log_events WHERE idx = ?',
  cardEvents: `SELECT * FROM log_events WHERE card_id IN (SELECT value FROM json_each(?)) AND kind = 1`,
  identityEvents: 'SELECT * FROM log_events WHERE identity = ? AND chain_seq >= ? AND idx < ? ORDER BY chain_seq LIMIT ?',
  latest: 'SELECT * FROM log_checkpoints ORDER BY size DESC LIMIT 1',
  checkpoint: 'SELECT * FROM log_checkpoints WHERE size = ?',
  insertCheckpoint: 'INSERT INTO log_checkpoints (size, root_hash, note, created_at_ms) VALUES (?, ?, ?, ?)',
  putCosignature: `INSERT INTO log_cosignatures (size, key_name, key_id, line) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM log_checkpoints WHERE size = ?)
    ON CONFLICT (size, key_name, key_id) DO UPDATE SET line = excluded.line`,
  cosignatures: 'SELECT * FROM log_cosignatures WHERE size = ? ORDER BY key_name, key_id',
} as const;

export type AppendEvent = (kind: CardEventKind, identity: string, cardId: string, time: number) => void;

export function sqliteLog(connection: SqliteConnection): LogStore & { appendEvent: AppendEvent } {
  const stmt = connection.prepare(SQL);
  const { one, must, all } = connection;
  const node = (level: number, index: number): Uint8Array => {
    const row = one(stmt.node, level, index);
    if (!row) throw new Error(`store: log node ${level}/${index} is not stored`);
    return bytes(row, 'hash');
  };

  /** Appends the identity's next event; call only inside a write transaction. */
  const appendEvent: AppendEvent = (kind, identity, cardId, time) => {
    const size = int(must(stmt.size), 'n');
    const head = one(stmt.head, identity);
    const event = nextEvent(identity, head ? { seq: int(head, 'chain_seq'), hash: bytes(head, 'hash'), time: int(head, 'event_time') } : null, kind, cardId, time);
    const rows = appendRows(size, event, siblingsOf(size).map((n) => node(n.level, n.index)));
    stmt.insertEvent.run(...eventValues(rows));
    for (const n of rows.nodes) stmt.insertNode.run(n.level, n.idx, n.hash);
  };

  const putCheckpoint = connection.immediate((checkpoint: Parameters<LogStore['putCheckpoint']>[0], minIntervalMs: number) => {
    const row = one(stmt.latest);
    const latest = row ? toLogCheckpoint(row) : null;
    if (!publishes(latest, checkpoint, minIntervalMs)) return latest!;
    stmt.insertCheckpoint.run(checkpoint.size, buffer(checkpoint.rootHash), checkpoint.note, checkpoint.createdAtMs);
    return checkpoint;
  });

  return {
    appendEvent,
    async logSize() {
      return int(must(stmt.size), 'n');
    },
    async logNodes(nodes) {
      return nodes.map((n) => node(n.level, n.index));
    },
    async logEvent(index) {
      const row = one(stmt.event, index);
      return row ? toLogEvent(row) : null;
    },
    async cardEvents(cardIds) {
      const rows = cardIds.length === 0 ? [] : all(stmt.cardEvents, JSON.stringify(cardIds));
      return new Map(rows.map((row) => [String(row.card_id), toLogEvent(row)]));
    },
    async identityEvents(identity, sinceSeq, beforeIndex, limit) {
      return all(stmt.identityEvents, identity, sinceSeq, beforeIndex, limit).map(toLogEvent);
    },
    async latestCheckpoint() {
      const row = one(stmt.latest);
      return row ? toLogCheckpoint(row) : null;
    },
    async logCheckpoint(size) {
      const row = one(stmt.checkpoint, size);
      return row ? toLogCheckpoint(row) : null;
    },
    async putCheckpoint(checkpoint, minIntervalMs) {
      return putCheckpoint(checkpoint, minIntervalMs);
    },
    async putLogCosignature(size, { name, keyId, line }) {
      return stmt.putCosignature.run(size, name, keyId, line, size).changes > 0;
    },
    async logCosignatures(size) {
      return all(stmt.cosignatures, size).map(toLogCosignature);
    },
  };
}
