/** HistoryStore on PostgreSQL. */
import type { PostgresConnection } from './connection.postgres.js';
import { toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryStore } from './types.js';

const SQL = {
  insertHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (conversation_sid, message_sid) DO NOTHING`,
  history: 'SELECT * FROM history WHERE conversation_sid = $1 AND idx > $2 ORDER BY idx, message_sid LIMIT $3',
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = $1 AND message_sid = $2',
} as const;

export function postgresHistory({ pool, rows }: PostgresConnection): HistoryStore {
  return {
    async putHistory(r) {
      const result = await pool.query(SQL.insertHistory, [
        r.conversationSid, r.messageSid, r.index, r.author, r.senderCardId, r.envelope, r.orgWrap, r.storedAtMs,
      ]);
      return result.rowCount === 1 ? 'created' : 'exists';
    },
    async history(conversationSid, after, limit) {
      return (await rows(SQL.history, [conversationSid, after, clampLimit(limit)])).map(toHistory);
    },
    async deleteHistory(conversationSid, messageSid) {
      return (await pool.query(SQL.deleteHistory, [conversationSid, messageSid])).rowCount === 1;
    },
  };
}
