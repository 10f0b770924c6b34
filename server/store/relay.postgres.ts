/** RelayStore on PostgreSQL. */
import { type PostgresConnection, violatedUniqueConstraint } from './connection.postgres.js';
import { DELETE_MESSAGE_MEDIA } from './media.postgres.js';
import { bool, int, mediaListText, required, toConversation, toMedia, toMessage, toParticipant } from './rows.js';
import { pageBounds } from './rules.js';
import type { RelayStore } from './types.js';

const SQL = {
  insertConversation: `INSERT INTO conversations (sid, unique_name, friendly_name, attributes, created_by, date_created_ms)
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *`,
  // A sid wins over another conversation's uniqueName that happens to equal it.
  getConversation: `SELECT * FROM conversations WHERE sid = $1 OR unique_name = $1
    ORDER BY sid = $1 DESC LIMIT 1`,
  conversationsOf: `SELECT c.* FROM conversations c JOIN participants p ON p.conversation_sid = c.sid
    WHERE p.identity = $1 ORDER BY c.date_created_ms, c.sid`,
  // A field not given keeps its value; friendlyName and uniqueName may be set to NULL.
  updateConversation: `UPDATE conversations SET
      friendly_name = CASE WHEN $2 THEN $3 ELSE friendly_name END,
      unique_name = CASE WHEN $5 THEN $6 ELSE unique_name END,
      attributes = COALESCE($4, attributes)
    WHERE sid = $1 RETURNING *`,

  insertParticipant: `INSERT INTO participants (sid, conversation_sid, identity, attributes, date_created_ms)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_sid, identity) DO NOTHING RETURNING *`,
  getParticipant: 'SELECT * FROM participants WHERE conversation_sid = $1 AND identity = $2',
  removeParticipant: 'DELETE FROM participants WHERE conversation_sid = $1 AND identity = $2 RETURNING *',
  participants: 'SELECT * FROM participants WHERE conversation_sid = $1 ORDER BY date_created_ms, seq',
  isParticipant: 'SELECT EXISTS (SELECT 1 FROM participants WHERE conversation_sid = $1 AND identity = $2) AS yes',
  updateParticipantAttributes: 'UPDATE participants SET attributes = $3 WHERE conversation_sid = $1 AND identity = $2 RETURNING *',
  setLastReadMessageIndex: 'UPDATE participants SET last_read_message_index = $3 WHERE conversation_sid = $1 AND identity = $2 RETURNING *',

  // One statement: the counter row's lock orders concurrent appends, and a failed insert rolls the
  // counter back with it, so indexes stay gap-free.
  appendMessage: `WITH next AS (
      UPDATE conversations SET next_message_index = next_message_index + 1
      WHERE sid = $1 RETURNING next_message_index - 1 AS idx
    )
    INSERT INTO messages (sid, conversation_sid, idx, author, body, attributes, date_created_ms, media)
    SELECT $2, $1, idx, $3, $4, $5, $6, $7 FROM next
    RETURNING *`,
  // Only the uploader's own finished upload to this conversation, not attached yet.
  claimMedia: `UPDATE media SET message_sid = $4
    WHERE sid = $1 AND conversation_sid = $2 AND uploader = $3 AND message_sid IS NULL AND size IS NOT NULL
    RETURNING *`,
  getMessage: 'SELECT * FROM messages WHERE conversation_sid = $1 AND sid = $2',
  messagesForward: 'SELECT * FROM messages WHERE conversation_sid = $1 AND idx >= $2 ORDER BY idx LIMIT $3',
  messagesBackwards: `SELECT * FROM (
      SELECT * FROM messages WHERE conversation_sid = $1 AND idx <= $2 ORDER BY idx DESC LIMIT $3
    ) page ORDER BY idx`,
  updateMessage: `UPDATE messages SET body = COALESCE($1, body), attributes = COALESCE($2, attributes), date_updated_ms = $3
    WHERE conversation_sid = $4 AND sid = $5 RETURNING *`,
  removeMessage: 'DELETE FROM messages WHERE conversation_sid = $1 AND sid = $2 RETURNING *',
  countMessagesAfter: 'SELECT COUNT(*)::int AS n FROM messages WHERE conversation_sid = $1 AND idx > $2',
} as const;

export function postgresRelay({ rows, first, transaction }: PostgresConnection): RelayStore {
  return {
    async createConversation(c) {
      const row = await first(SQL.insertConversation, [
        c.sid, c.uniqueName, c.friendlyName, c.attributes, c.createdBy, c.dateCreatedMs,
      ]);
      return row ? toConversation(row) : null;
    },
    async getConversation(sidOrUniqueName) {
      const row = await first(SQL.getConversation, [sidOrUniqueName]);
      return row ? toConversation(row) : null;
    },
    async conversationsOf(identity) {
      return (await rows(SQL.conversationsOf, [identity])).map(toConversation);
    },
    async updateConversation(sid, change) {
      const params = [sid, change.friendlyName !== undefined, change.friendlyName ?? null, change.attributes ?? null, change.uniqueName !== undefined, change.uniqueName ?? null];
      try {
        const row = await first(SQL.updateConversation, params);
        return row ? toConversation(row) : null;
      } catch (err) {
        // The one unique column an update can collide on is unique_name: the statement changed nothing.
        if (violatedUniqueConstraint(err) !== undefined) return null;
        throw err;
      }
    },

    async addParticipant(p) {
      // Insert-or-read, retried: a concurrent remove can delete the row between the two statements.
      for (;;) {
        const inserted = await first(SQL.insertParticipant, [p.sid, p.conversationSid, p.identity, p.attributes ?? '{}', p.dateCreatedMs]);
        if (inserted) return { participant: toParticipant(inserted), created: true };
        const existing = await first(SQL.getParticipant, [p.conversationSid, p.identity]);
        if (existing) return { participant: toParticipant(existing), created: false };
      }
    },
    async removeParticipant(conversationSid, identity) {
      const row = await first(SQL.removeParticipant, [conversationSid, identity]);
      return row ? toParticipant(row) : null;
    },
    async participants(conversationSid) {
      return (await rows(SQL.participants, [conversationSid])).map(toParticipant);
    },
    async isParticipant(conversationSid, identity) {
      const row = await first(SQL.isParticipant, [conversationSid, identity]);
      return row !== undefined && bool(row, 'yes');
    },
    async getParticipant(conversationSid, identity) {
      const row = await first(SQL.getParticipant, [conversationSid, identity]);
      return row ? toParticipant(row) : null;
    },
    async updateParticipantAttributes(conversationSid, identity, attributes) {
      const row = await first(SQL.updateParticipantAttributes, [conversationSid, identity, attributes]);
      return row ? toParticipant(row) : null;
    },
    async setLastReadMessageIndex(conversationSid, identity, index) {
      const row = await first(SQL.setLastReadMessageIndex, [conversationSid, identity, index]);
      return row ? toParticipant(row) : null;
    },

    async appendMessage(m) {
      const row = await first(SQL.appendMessage, [m.conversationSid, m.sid, m.author, m.body, m.attributes, m.dateCreatedMs, null]);
      if (row === undefined) throw new Error(`store: unknown conversation ${m.conversationSid}`);
      return toMessage(row);
    },
    async appendMediaMessage(m, mediaSids) {
      const unavailable = new Error('store: media unavailable');
      try {
        return await transaction(async (client) => {
          const media = [];
          for (const sid of mediaSids) {
            const claimed = (await client.query(SQL.claimMedia, [sid, m.conversationSid, m.author, m.sid])).rows[0];
            if (!claimed) throw unavailable;
            media.push(toMedia(claimed));
          }
          const params = [m.conversationSid, m.sid, m.author, m.body, m.attributes, m.dateCreatedMs, media.length > 0 ? mediaListText(media) : null];
          const row = (await client.query(SQL.appendMessage, params)).rows[0];
          if (row === undefined) throw new Error(`store: unknown conversation ${m.conversationSid}`);
          return toMessage(row);
        });
      } catch (err) {
        if (err === unavailable) return null;
        throw err;
      }
    },
    async getMessage(conversationSid, messageSid) {
      const row = await first(SQL.getMessage, [conversationSid, messageSid]);
      return row ? toMessage(row) : null;
    },
    async messages(conversationSid, query) {
      const { backwards, anchor, limit } = pageBounds(query);
      return (await rows(backwards ? SQL.messagesBackwards : SQL.messagesForward, [conversationSid, anchor, limit])).map(
        toMessage,
      );
    },
    async updateMessage(conversationSid, messageSid, change, nowMs) {
      const row = await first(SQL.updateMessage, [change.body ?? null, change.attributes ?? null, nowMs, conversationSid, messageSid]);
      return row ? toMessage(row) : null;
    },
    async removeMessage(conversationSid, messageSid) {
      return transaction(async (client) => {
        const row = (await client.query(SQL.removeMessage, [conversationSid, messageSid])).rows[0];
        await client.query(DELETE_MESSAGE_MEDIA, [conversationSid, messageSid]);
        return row ? toMessage(row) : null;
      });
    },
    async countMessagesAfter(conversationSid, after) {
      return int(required(await first(SQL.countMessagesAfter, [conversationSid, after])), 'n');
    },
  };
}
