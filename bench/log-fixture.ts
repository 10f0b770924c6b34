/**
 * Generated card-transparency logs for the benchmarks: registration events written straight
 * into a SQLite store's log tables (far faster than registering cards), after any events already
 * there, so a log of a million events takes seconds.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { encodeCardEvent, type CardEvent } from '../shared/log-event.js';
import { leafHash, MerkleTree } from '../shared/merkle.js';
import { buffer, KIND_CODES, nextEvent, type ChainHead } from '../server/store/log.js';
import { SQLITE_FILENAME } from '../server/store/sqlite.js';

export interface GeneratedLog {
  /** Identities are `<prefix>-<n>`; each gets this many registrations in a row (a chain). */
  identityPrefix: string;
  eventsPerIdentity: number;
}

/** Appends registration events to the store in `dir` until its log holds `size` events. */
export function generateLog(dir: string, size: number, { identityPrefix, eventsPerIdentity }: GeneratedLog): void {
  const db = new Database(join(dir, SQLITE_FILENAME));
  const insertEvent = db.prepare('INSERT INTO log_events (idx, identity, chain_seq, card_id, kind, event_time, leaf) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const insertNode = db.prepare('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)');
  const tree = new MerkleTree();
  for (const row of db.prepare('SELECT hash FROM log_nodes WHERE level = 0 ORDER BY idx').all() as Array<{ hash: Buffer }>) tree.append(new Uint8Array(row.hash));
  const start = tree.size;
  // Chains continue only within one call: appending must start on an identity's first event.
  if (start % eventsPerIdentity !== 0) throw new Error(`the log holds ${start} events, not a multiple of ${eventsPerIdentity}`);
  const heads = new Map<string, ChainHead>();
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i += 1) {
      const identity = `${identityPrefix}-${Math.floor(i / eventsPerIdentity)}`;
      const event: CardEvent = nextEvent(identity, heads.get(identity) ?? null, 'registration', randomBytes(32).toString('hex'), 1_760_000_000 + i);
      const leaf = encodeCardEvent(event);
      const hash = leafHash(leaf);
      if (event.seq + 1 < eventsPerIdentity) heads.set(identity, { seq: event.seq, hash, time: event.time });
      else heads.delete(identity);
      insertEvent.run(i, identity, event.seq, event.cardId, KIND_CODES.registration, event.time, buffer(leaf));
      tree.append(hash);
      // The nodes this leaf completes: itself and each right child's parent.
      for (let level = 0, index = i; ; level += 1, index = (index - 1) / 2) {
        insertNode.run(level, index, buffer(tree.node({ level, index })));
        if (index % 2 === 0) break;
      }
    }
  });
  for (let from = start; from < size; from += 50_000) batch(from, Math.min(size, from + 50_000));
  db.close();
}
