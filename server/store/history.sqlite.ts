/** HistoryStore on SQLite: backups go through the group commit. */
import type { SqliteConnection } from './connection.sqlite.js';
import { toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryRecord, HistoryStore, PutHistoryOutcome } from './types.js';

const SQL = {
  // A newer version (higher edit counter) of the message replaces the copy; nothing else does.
  putHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms, edit_n)
    VALUES (@conversationSid, @messageSid, @index, @author, @senderCardId, @envelope, @orgWrap, @storedAtMs, @editN)
    ON CONFLICT (conversation_sid, message_sid) DO UPDATE SET idx = excluded.idx, author = excluded.author,
      sender_card_id = excluded.sender_card_id, envelope = excluded.envelope, org_wrap = excluded.org_wrap,
      stored_at_ms = excluded.stored_at_ms, edit_n = excluded.edit_n
    WHERE history.edit_n < excluded.edit_n`,
  exists: 'SELECT 1 FROM history WHERE conversation_sid = ? AND message_sid = ?',
  getHistory: 'SELECT * FROM history WHERE conversation_sid = ? AND message_sid = ?',
  history: `SELECT * FROM history WHERE conversation_sid = ? AND idx > ?
    ORDER BY idx, message_sid LIMIT ?`,
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = ? AND message_sid = ?',
} as const;

export function sqliteHistory(connection: SqliteConnection): HistoryStore {
  const stmt = connection.prepare(SQL);
  // SQLite's upsert does not say whether it inserted or updated, so the copy is looked for first:
  // both run in the group commit's IMMEDIATE transaction, where no other write comes between them.
  const putHistory = connection.grouped((record: HistoryRecord): PutHistoryOutcome => {
    const existed = connection.one(stmt.exists, record.conversationSid, record.messageSid) !== undefined;
    if (stmt.putHistory.run(record).changes === 0) return 'exists';
    return existed ? 'replaced' : 'created';
  });
  return {
    async putHistory(record) {
      return putHistory(record);
    },
    async getHistory(conversationSid, messageSid) {
      const row = connection.one(stmt.getHistory, conversationSid, messageSid);
      return row ? toHistory(row) : null;
    },
    async history(conversationSid, after, limit) {
      return connection.all(stmt.history, conversationSid, after, clampLimit(limit)).map(toHistory);
    },
    async deleteHistory(conversationSid, messageSid) {
      return stmt.deleteHistory.run(conversationSid, messageSid).changes === 1;
    },
  };
}
