/**
 * MediaStore on PostgreSQL: each blob is a large object, written and read a chunk per statement
 * (lo_put, lo_get: no transaction holds a pooled connection for the length of an upload). The row
 * is inserted first, with the large object's oid and a NULL size, so an interrupted upload is
 * always found (and swept); it counts as stored once its size is set.
 */
import type { PostgresConnection } from './connection.postgres.js';
import { int, required, toMedia } from './rows.js';
import type { MediaStore } from './types.js';

/** Bytes per lo_put and lo_get. */
const CHUNK_BYTES = 1024 * 1024;

const SQL = {
  begin: `INSERT INTO media (sid, conversation_sid, uploader, filename, content_type, date_created_ms, content_oid)
    VALUES ($1, $2, $3, $4, $5, $6, lo_create(0)) RETURNING content_oid`,
  put: 'SELECT lo_put($1, $2, $3)',
  finish: 'UPDATE media SET size = $2 WHERE sid = $1 RETURNING *',
  discard: `WITH gone AS (DELETE FROM media WHERE sid = $1 RETURNING content_oid)
    SELECT lo_unlink(content_oid) FROM gone WHERE content_oid IS NOT NULL`,
  get: 'SELECT * FROM media WHERE sid = $1 AND size IS NOT NULL',
  read: 'SELECT lo_get($1, $2, $3) AS bytes',
  unattachedBytes: 'SELECT COALESCE(SUM(size), 0)::bigint AS n FROM media WHERE uploader = $1 AND message_sid IS NULL',
  // Unattached blobs, and uploads that never finished, from before the cutoff.
  sweep: `WITH gone AS (DELETE FROM media WHERE message_sid IS NULL AND date_created_ms < $1 RETURNING content_oid)
    SELECT lo_unlink(content_oid) FROM gone WHERE content_oid IS NOT NULL`,
} as const;

/** Deletes the media rows matching a WHERE clause and their large objects, in one statement. */
export const DELETE_MESSAGE_MEDIA = `WITH gone AS (DELETE FROM media WHERE conversation_sid = $1 AND message_sid = $2 RETURNING content_oid)
  SELECT lo_unlink(content_oid) FROM gone WHERE content_oid IS NOT NULL`;

export function postgresMedia({ rows, first }: PostgresConnection): MediaStore {
  return {
    async putMedia(m, content) {
      const oid = int(required(await first(SQL.begin, [m.sid, m.conversationSid, m.uploader, m.filename, m.contentType, m.dateCreatedMs])), 'content_oid');
      let size = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        await first(SQL.put, [oid, size - pendingBytes, Buffer.concat(pending, pendingBytes)]);
        pending = [];
        pendingBytes = 0;
      };
      try {
        for await (const chunk of content) {
          pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          pendingBytes += chunk.byteLength;
          size += chunk.byteLength;
          if (pendingBytes >= CHUNK_BYTES) await flush();
        }
        await flush();
        return toMedia(required(await first(SQL.finish, [m.sid, size])));
      } catch (err) {
        await first(SQL.discard, [m.sid]).catch(() => undefined); // the sweep catches what this misses
        throw err;
      }
    },
    async getMedia(sid) {
      const row = await first(SQL.get, [sid]);
      return row ? toMedia(row) : null;
    },
    async readMedia(sid) {
      const row = await first(SQL.get, [sid]);
      if (!row) return null;
      const oid = int(row, 'content_oid');
      const size = int(row, 'size');
      return (async function* () {
        for (let offset = 0; offset < size; offset += CHUNK_BYTES) {
          yield required(await first(SQL.read, [oid, offset, Math.min(CHUNK_BYTES, size - offset)])).bytes as Buffer;
        }
      })();
    },
    async unattachedMediaBytes(uploader) {
      return int(required(await first(SQL.unattachedBytes, [uploader])), 'n');
    },
    async sweepMedia(beforeMs) {
      return (await rows(SQL.sweep, [beforeMs])).length;
    },
  };
}
