/** HistoryStore on SQLite: backups go through the group commit. */
import type { SqliteConnection } from './connection.sqlite.js';
import { int, required, toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryRecord, HistoryStore, OrgWrapChange, PutHistoryOutcome } from './types.js';

const SQL = {
  // A newer version (higher edit counter) of the message replaces the copy; nothing else does.
  putHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms, edit_n, org_key_id)
    VALUES (@conversationSid, @messageSid, @index, @author, @senderCardId, @envelope, @orgWrap, @storedAtMs, @editN, @orgKeyId)
    ON CONFLICT (conversation_sid, message_sid) DO UPDATE SET idx = excluded.idx, author = excluded.author,
      sender_card_id = excluded.sender_card_id, envelope = excluded.envelope, org_wrap = excluded.org_wrap,
      stored_at_ms = excluded.stored_at_ms, edit_n = excluded.edit_n, org_key_id = excluded.org_key_id
    WHERE history.edit_n < excluded.edit_n`,
  exists: 'SELECT 1 FROM history WHERE conversation_sid = ? AND message_sid = ?',
  getHistory: 'SELECT * FROM history WHERE conversation_sid = ? AND message_sid = ?',
  history: `SELECT * FROM history WHERE conversation_sid = ? AND idx > ?
    ORDER BY idx, message_sid LIMIT ?`,
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = ? AND message_sid = ?',
  // In primary key order, so the walk reads the table's index once from start to end.
  notWrappedFor: `SELECT * FROM history WHERE org_key_id IS NOT @orgKeyId AND (conversation_sid, message_sid) > (@conversationSid, @messageSid)
    ORDER BY conversation_sid, message_sid LIMIT @limit`,
  countNotWrappedFor: 'SELECT count(*) AS n FROM history WHERE org_key_id IS NOT ?',
  setOrgWrap: `UPDATE history SET org_wrap = @orgWrap, org_key_id = @orgKeyId
    WHERE conversation_sid = @conversationSid AND message_sid = @messageSid AND org_wrap = @previousOrgWrap`,
} as const;

export function sqliteHistory(connection: SqliteConnection): HistoryStore {
  const stmt = connection.prepare(SQL);
  // SQLite's upsert does not say whether it inserted or updated, so the copy is looked for first:
  // both run in the group commit's IMMEDIATE transaction, where no other write comes between them.
  const putHistory = connection.grouped((record: HistoryRecord): PutHistoryOutcome => {
    const existed = connection.one(stmt.exists, record.conversationSid, record.messageSid) !== undefined;
    if (stmt.putHistory.run({ ...record, orgKeyId: record.orgKeyId ?? null }).changes === 0) return 'exists';
    return existed ? 'replaced' : 'created';
  });
  // One transaction (and one fsync) per batch of changes.
  const setOrgWraps = connection.immediate((changes: readonly OrgWrapChange[]): number =>
    changes.reduce((set, change) => set + stmt.setOrgWrap.run(change).changes, 0),
  );
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
    async historyNotWrappedFor(orgKeyId, after, limit) {
      // '' sorts before every sid: the walk's start.
      const from = after ?? { conversationSid: '', messageSid: '' };
      return connection.all(stmt.notWrappedFor, { orgKeyId, ...from, limit: clampLimit(limit) }).map(toHistory);
    },
    async countHistoryNotWrappedFor(orgKeyId) {
      return int(required(connection.one(stmt.countNotWrappedFor, orgKeyId)), 'n');
    },
    async setOrgWraps(changes) {
      return changes.length === 0 ? 0 : setOrgWraps(changes);
    },
  };
}
