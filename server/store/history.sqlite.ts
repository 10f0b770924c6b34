/** HistoryStore on SQLite: backups go through the group commit. */
import type { SqliteConnection } from './connection.sqlite.js';
import { toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryRecord, HistoryStore } from './types.js';

const SQL = {
  insertHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms)
    VALUES (@conversationSid, @messageSid, @index, @author, @senderCardId, @envelope, @orgWrap, @storedAtMs)
    ON CONFLICT (conversation_sid, message_sid) DO NOTHING`,
  history: `SELECT * FROM history WHERE conversation_sid = ? AND idx > ?
    ORDER BY idx, message_sid LIMIT ?`,
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = ? AND message_sid = ?',
} as const;

export function sqliteHistory(connection: SqliteConnection): HistoryStore {
  const stmt = connection.prepare(SQL);
  const putHistory = connection.grouped((record: HistoryRecord): 'created' | 'exists' =>
    stmt.insertHistory.run(record).changes === 1 ? 'created' : 'exists',
  );
  return {
    async putHistory(record) {
      return putHistory(record);
    },
    async history(conversationSid, after, limit) {
      return connection.all(stmt.history, conversationSid, after, clampLimit(limit)).map(toHistory);
    },
    async deleteHistory(conversationSid, messageSid) {
      return stmt.deleteHistory.run(conversationSid, messageSid).changes === 1;
    },
  };
}
