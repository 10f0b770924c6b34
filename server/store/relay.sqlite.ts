/** RelayStore on SQLite: message appends go through the group commit. */
import type { SqliteConnection } from './connection.sqlite.js';
import type { MediaFiles } from './media.sqlite.js';
import { bool, int, mediaListText, toConversation, toMedia, toMessage, toParticipant } from './rows.js';
import { pageBounds } from './rules.js';
import type { NewRelayMessage, NewRelayParticipant, RelayStore } from './types.js';

const SQL = {
  insertConversation: `INSERT INTO conversations (sid, unique_name, friendly_name, attributes, created_by, date_created_ms)
    VALUES (@sid, @uniqueName, @friendlyName, @attributes, @createdBy, @dateCreatedMs)
    ON CONFLICT DO NOTHING RETURNING *`,
  // A sid wins over another conversation's uniqueName that happens to equal it.
  getConversation: `SELECT * FROM conversations WHERE sid = @key OR unique_name = @key
    ORDER BY sid = @key DESC LIMIT 1`,
  conversationsOf: `SELECT c.* FROM conversations c JOIN participants p ON p.conversation_sid = c.sid
    WHERE p.identity = ? ORDER BY c.date_created_ms, c.sid`,
  // A field not given (NULL flag) keeps its value; friendlyName and uniqueName may be set to NULL.
  // OR IGNORE: a uniqueName taken by another conversation skips the row (no change, no row back).
  updateConversation: `UPDATE OR IGNORE conversations SET
      friendly_name = CASE WHEN @setFriendlyName THEN @friendlyName ELSE friendly_name END,
      unique_name = CASE WHEN @setUniqueName THEN @uniqueName ELSE unique_name END,
      attributes = COALESCE(@attributes, attributes)
    WHERE sid = @sid RETURNING *`,

  insertParticipant: `INSERT INTO participants (sid, conversation_sid, identity, attributes, date_created_ms)
    VALUES (@sid, @conversationSid, @identity, @attributes, @dateCreatedMs)
    ON CONFLICT (conversation_sid, identity) DO NOTHING RETURNING *`,
  getParticipant: 'SELECT * FROM participants WHERE conversation_sid = ? AND identity = ?',
  removeParticipant: 'DELETE FROM participants WHERE conversation_sid = ? AND identity = ? RETURNING *',
  participants: 'SELECT * FROM participants WHERE conversation_sid = ? ORDER BY date_created_ms, rowid',
  isParticipant: 'SELECT EXISTS (SELECT 1 FROM participants WHERE conversation_sid = ? AND identity = ?) AS yes',
  updateParticipantAttributes: 'UPDATE participants SET attributes = ? WHERE conversation_sid = ? AND identity = ? RETURNING *',
  setLastReadMessageIndex: 'UPDATE participants SET last_read_message_index = ? WHERE conversation_sid = ? AND identity = ? RETURNING *',

  nextMessageIndex: `UPDATE conversations SET next_message_index = next_message_index + 1
    WHERE sid = ? RETURNING next_message_index - 1 AS idx`,
  insertMessage: `INSERT INTO messages (sid, conversation_sid, idx, author, body, attributes, date_created_ms, media)
    VALUES (@sid, @conversationSid, @idx, @author, @body, @attributes, @dateCreatedMs, @media) RETURNING *`,
  // Only the uploader's own finished upload to this conversation, not attached yet.
  claimMedia: `UPDATE media SET message_sid = @messageSid
    WHERE sid = @sid AND conversation_sid = @conversationSid AND uploader = @uploader AND message_sid IS NULL AND size IS NOT NULL
    RETURNING *`,
  removeMessageMedia: 'DELETE FROM media WHERE conversation_sid = ? AND message_sid = ? RETURNING sid',
  getMessage: 'SELECT * FROM messages WHERE conversation_sid = ? AND sid = ?',
  messagesForward: `SELECT * FROM messages WHERE conversation_sid = ? AND idx >= ? ORDER BY idx LIMIT ?`,
  messagesBackwards: `SELECT * FROM (
      SELECT * FROM messages WHERE conversation_sid = ? AND idx <= ? ORDER BY idx DESC LIMIT ?
    ) ORDER BY idx`,
  updateMessage: `UPDATE messages SET body = COALESCE(?, body), attributes = COALESCE(?, attributes), date_updated_ms = ?
    WHERE conversation_sid = ? AND sid = ? RETURNING *`,
  removeMessage: 'DELETE FROM messages WHERE conversation_sid = ? AND sid = ? RETURNING *',
  countMessagesAfter: 'SELECT COUNT(*) AS n FROM messages WHERE conversation_sid = ? AND idx > ?',
} as const;

/** Thrown inside a savepoint to roll back a message whose media cannot be attached. */
const MEDIA_UNAVAILABLE = new Error('store: media unavailable');

export function sqliteRelay(connection: SqliteConnection, files: MediaFiles): RelayStore {
  const stmt = connection.prepare(SQL);
  const { one, must, all } = connection;

  const addParticipant = connection.immediate((participant: NewRelayParticipant & { attributes: string }) => {
    const inserted = one(stmt.insertParticipant, participant);
    if (inserted) return { participant: toParticipant(inserted), created: true };
    const existing = must(stmt.getParticipant, participant.conversationSid, participant.identity);
    return { participant: toParticipant(existing), created: false };
  });

  const appendMessage = connection.grouped((message: NewRelayMessage, mediaSids: readonly string[]) => {
    const media = mediaSids.map((sid) => {
      const row = one(stmt.claimMedia, { sid, conversationSid: message.conversationSid, uploader: message.author, messageSid: message.sid });
      if (!row) throw MEDIA_UNAVAILABLE;
      return toMedia(row);
    });
    const next = one(stmt.nextMessageIndex, message.conversationSid);
    if (!next) throw new Error(`store: unknown conversation ${message.conversationSid}`);
    return toMessage(must(stmt.insertMessage, { ...message, idx: next.idx, media: media.length > 0 ? mediaListText(media) : null }));
  });

  const removeMessage = connection.immediate((conversationSid: string, messageSid: string) => {
    const row = one(stmt.removeMessage, conversationSid, messageSid);
    const mediaSids = all(stmt.removeMessageMedia, conversationSid, messageSid).map((r) => r.sid as string);
    return { message: row ? toMessage(row) : null, mediaSids };
  });

  return {
    async createConversation(conversation) {
      const row = one(stmt.insertConversation, conversation);
      return row ? toConversation(row) : null;
    },
    async getConversation(sidOrUniqueName) {
      const row = one(stmt.getConversation, { key: sidOrUniqueName });
      return row ? toConversation(row) : null;
    },
    async conversationsOf(identity) {
      return all(stmt.conversationsOf, identity).map(toConversation);
    },
    async updateConversation(sid, change) {
      const row = one(stmt.updateConversation, {
        sid,
        setFriendlyName: change.friendlyName === undefined ? 0 : 1,
        friendlyName: change.friendlyName ?? null,
        setUniqueName: change.uniqueName === undefined ? 0 : 1,
        uniqueName: change.uniqueName ?? null,
        attributes: change.attributes ?? null,
      });
      return row ? toConversation(row) : null;
    },

    async addParticipant(participant) {
      return addParticipant({ ...participant, attributes: participant.attributes ?? '{}' });
    },
    async removeParticipant(conversationSid, identity) {
      const row = one(stmt.removeParticipant, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },
    async participants(conversationSid) {
      return all(stmt.participants, conversationSid).map(toParticipant);
    },
    async isParticipant(conversationSid, identity) {
      return bool(must(stmt.isParticipant, conversationSid, identity), 'yes');
    },
    async getParticipant(conversationSid, identity) {
      const row = one(stmt.getParticipant, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },
    async updateParticipantAttributes(conversationSid, identity, attributes) {
      const row = one(stmt.updateParticipantAttributes, attributes, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },
    async setLastReadMessageIndex(conversationSid, identity, index) {
      const row = one(stmt.setLastReadMessageIndex, index, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },

    async appendMessage(message) {
      return appendMessage(message, []);
    },
    async appendMediaMessage(message, mediaSids) {
      try {
        return await appendMessage(message, mediaSids);
      } catch (err) {
        if (err === MEDIA_UNAVAILABLE) return null;
        throw err;
      }
    },
    async getMessage(conversationSid, messageSid) {
      const row = one(stmt.getMessage, conversationSid, messageSid);
      return row ? toMessage(row) : null;
    },
    async messages(conversationSid, query) {
      const { backwards, anchor, limit } = pageBounds(query);
      return all(backwards ? stmt.messagesBackwards : stmt.messagesForward, conversationSid, anchor, limit).map(toMessage);
    },
    async updateMessage(conversationSid, messageSid, change, nowMs) {
      const row = one(stmt.updateMessage, change.body ?? null, change.attributes ?? null, nowMs, conversationSid, messageSid);
      return row ? toMessage(row) : null;
    },
    async removeMessage(conversationSid, messageSid) {
      const { message, mediaSids } = removeMessage(conversationSid, messageSid);
      // After the commit: a file whose deletion is lost is swept as one without a row.
      await files.remove(mediaSids);
      return message;
    },
    async countMessagesAfter(conversationSid, after) {
      return int(must(stmt.countMessagesAfter, conversationSid, after), 'n');
    },
  };
}
