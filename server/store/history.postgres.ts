/** HistoryStore on PostgreSQL. */
import type { PostgresConnection } from './connection.postgres.js';
import { bool, toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryStore } from './types.js';

const SQL = {
  // A newer version (higher edit counter) of the message replaces the copy; nothing else does.
  // No row comes back when the copy stays; xmax is 0 only in a row version this statement
  // inserted (an updated one carries the updating transaction), which tells created from replaced.
  putHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms, edit_n)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (conversation_sid, message_sid) DO UPDATE SET idx = excluded.idx, author = excluded.author,
      sender_card_id = excluded.sender_card_id, envelope = excluded.envelope, org_wrap = excluded.org_wrap,
      stored_at_ms = excluded.stored_at_ms, edit_n = excluded.edit_n
    WHERE history.edit_n < excluded.edit_n
    RETURNING (xmax = 0) AS created`,
  getHistory: 'SELECT * FROM history WHERE conversation_sid = $1 AND message_sid = $2',
  history: 'SELECT * FROM history WHERE conversation_sid = $1 AND idx > $2 ORDER BY idx, message_sid LIMIT $3',
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = $1 AND message_sid = $2',
} as const;

export function postgresHistory({ pool, rows, first }: PostgresConnection): HistoryStore {
  return {
    async putHistory(r) {
      const row = await first(SQL.putHistory, [
        r.conversationSid, r.messageSid, r.index, r.author, r.senderCardId, r.envelope, r.orgWrap, r.storedAtMs, r.editN,
      ]);
      if (!row) return 'exists';
      return bool(row, 'created') ? 'created' : 'replaced';
    },
    async getHistory(conversationSid, messageSid) {
      const row = await first(SQL.getHistory, [conversationSid, messageSid]);
      return row ? toHistory(row) : null;
    },
    async history(conversationSid, after, limit) {
      return (await rows(SQL.history, [conversationSid, after, clampLimit(limit)])).map(toHistory);
    },
    async deleteHistory(conversationSid, messageSid) {
      return (await pool.query(SQL.deleteHistory, [conversationSid, messageSid])).rowCount === 1;
    },
  };
}
