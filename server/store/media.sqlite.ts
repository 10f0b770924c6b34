/**
 * MediaStore on SQLite: each blob is a file named by its sid in the media directory (DATA_DIR/media),
 * its record a row. A file is written under a partial name, fsynced, renamed and its directory
 * fsynced before the row is inserted, so a row always names a whole, durable file; what a crash
 * leaves (a partial file, a file without a row) is swept.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqliteConnection } from './connection.sqlite.js';
import { int, toMedia } from './rows.js';
import type { MediaStore, NewRelayMedia } from './types.js';

/** Media sids are the relay's own (ME + 32 hex): nothing else ever becomes a path. */
const MEDIA_SID = /^ME[0-9a-f]{32}$/;
const PARTIAL = '.partial-';

const SQL = {
  insert: `INSERT INTO media (sid, conversation_sid, uploader, filename, content_type, size, date_created_ms)
    VALUES (@sid, @conversationSid, @uploader, @filename, @contentType, @size, @dateCreatedMs) RETURNING *`,
  get: 'SELECT * FROM media WHERE sid = ? AND size IS NOT NULL',
  exists: 'SELECT 1 FROM media WHERE sid = ?',
  unattachedBytes: 'SELECT COALESCE(SUM(size), 0) AS n FROM media WHERE uploader = ? AND message_sid IS NULL',
  sweep: 'DELETE FROM media WHERE message_sid IS NULL AND date_created_ms < ? RETURNING sid',
} as const;

/** The blob files of one media directory. */
export class MediaFiles {
  constructor(readonly dir: string) {}

  /** The file of a sid; null for anything that is not a media sid. */
  path(sid: string): string | null {
    return MEDIA_SID.test(sid) ? join(this.dir, sid) : null;
  }

  /** Writes `content` to the sid's file durably; returns its size. Nothing is left when it fails. */
  async write(sid: string, content: AsyncIterable<Uint8Array>): Promise<number> {
    const target = this.path(sid);
    if (target === null) throw new Error(`store: not a media sid: ${sid}`);
    await mkdir(this.dir, { recursive: true });
    const partial = join(this.dir, PARTIAL + sid);
    const handle = await open(partial, 'wx');
    let size = 0;
    try {
      for await (const chunk of content) {
        for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
        size += chunk.length;
      }
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(partial, { force: true });
      throw err;
    }
    await handle.close();
    await rename(partial, target);
    // The rename is durable only once the directory is.
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return size;
  }

  /** Deletes the files of these sids (missing ones are fine). */
  async remove(sids: Iterable<string>): Promise<void> {
    for (const sid of sids) {
      const file = this.path(sid);
      if (file !== null) await rm(file, { force: true });
    }
  }

  /** Files not written to since `beforeMs` for which `keep` is false (partial files are never kept). */
  async sweep(beforeMs: number, keep: (sid: string) => boolean): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return; // no media directory yet
    }
    for (const name of names) {
      const partial = name.startsWith(PARTIAL);
      if (!partial && (!MEDIA_SID.test(name) || keep(name))) continue;
      const file = join(this.dir, name);
      const info = await stat(file).catch(() => null);
      if (info !== null && info.mtimeMs < beforeMs) await rm(file, { force: true });
    }
  }
}

export function sqliteMedia(connection: SqliteConnection, files: MediaFiles): MediaStore {
  const stmt = connection.prepare(SQL);
  const { one, must, all } = connection;

  return {
    async putMedia(media: NewRelayMedia, content) {
      const size = await files.write(media.sid, content);
      try {
        return toMedia(must(stmt.insert, { ...media, size }));
      } catch (err) {
        await files.remove([media.sid]);
        throw err;
      }
    },
    async getMedia(sid) {
      const row = one(stmt.get, sid);
      return row ? toMedia(row) : null;
    },
    async readMedia(sid) {
      const file = files.path(sid);
      if (file === null || !one(stmt.get, sid)) return null;
      return createReadStream(file);
    },
    async unattachedMediaBytes(uploader) {
      return int(must(stmt.unattachedBytes, uploader), 'n');
    },
    async sweepMedia(beforeMs) {
      const gone = all(stmt.sweep, beforeMs).map((row) => row.sid as string);
      await files.remove(gone);
      await files.sweep(beforeMs, (sid) => one(stmt.exists, sid) !== undefined);
      return gone.length;
    },
  };
}
