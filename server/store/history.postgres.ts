/** HistoryStore on PostgreSQL. */
import type { PostgresConnection } from './connection.postgres.js';
import { bool, int, required, toHistory } from './rows.js';
import { clampLimit } from './rules.js';
import type { HistoryStore } from './types.js';

const SQL = {
  // A newer version (higher edit counter) of the message replaces the copy; nothing else does.
  // No row comes back when the copy stays; xmax is 0 only in a row version this statement
  // inserted (an updated one carries the updating transaction), which tells created from replaced.
  putHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms, edit_n, org_key_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (conversation_sid, message_sid) DO UPDATE SET idx = excluded.idx, author = excluded.author,
      sender_card_id = excluded.sender_card_id, envelope = excluded.envelope, org_wrap = excluded.org_wrap,
      stored_at_ms = excluded.stored_at_ms, edit_n = excluded.edit_n, org_key_id = excluded.org_key_id
    WHERE history.edit_n < excluded.edit_n
    RETURNING (xmax = 0) AS created`,
  getHistory: 'SELECT * FROM history WHERE conversation_sid = $1 AND message_sid = $2',
  history: 'SELECT * FROM history WHERE conversation_sid = $1 AND idx > $2 ORDER BY idx, message_sid LIMIT $3',
  deleteHistory: 'DELETE FROM history WHERE conversation_sid = $1 AND message_sid = $2',
  // In primary key order, so the walk reads the table's index once from start to end.
  notWrappedFor: `SELECT * FROM history WHERE org_key_id IS DISTINCT FROM $1
      AND (conversation_sid, message_sid) > ($2, $3)
    ORDER BY conversation_sid, message_sid LIMIT $4`,
  countNotWrappedFor: 'SELECT count(*) AS n FROM history WHERE org_key_id IS DISTINCT FROM $1',
  // One statement for the batch: each change applies only where the copy still holds the orgWrap read.
  setOrgWraps: `UPDATE history SET org_wrap = c.org_wrap, org_key_id = c.org_key_id
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
      AS c (conversation_sid, message_sid, previous_org_wrap, org_wrap, org_key_id)
    WHERE history.conversation_sid = c.conversation_sid AND history.message_sid = c.message_sid
      AND history.org_wrap = c.previous_org_wrap`,
} as const;

export function postgresHistory({ pool, rows, first }: PostgresConnection): HistoryStore {
  return {
    async putHistory(r) {
      const row = await first(SQL.putHistory, [
        r.conversationSid, r.messageSid, r.index, r.author, r.senderCardId, r.envelope, r.orgWrap, r.storedAtMs, r.editN, r.orgKeyId ?? null,
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
    async historyNotWrappedFor(orgKeyId, after, limit) {
      // '' sorts before every sid: the walk's start.
      const from = after ?? { conversationSid: '', messageSid: '' };
      return (await rows(SQL.notWrappedFor, [orgKeyId, from.conversationSid, from.messageSid, clampLimit(limit)])).map(toHistory);
    },
    async countHistoryNotWrappedFor(orgKeyId) {
      return int(required(await first(SQL.countNotWrappedFor, [orgKeyId])), 'n');
    },
    async setOrgWraps(changes) {
      if (changes.length === 0) return 0;
      const column = <K extends keyof (typeof changes)[number]>(key: K) => changes.map((c) => c[key]);
      const result = await pool.query(SQL.setOrgWraps, [
        column('conversationSid'), column('messageSid'), column('previousOrgWrap'), column('orgWrap'), column('orgKeyId'),
      ]);
      return result.rowCount ?? 0;
    },
  };
}
