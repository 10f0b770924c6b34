/**
 * The card transparency log's costs (`npx tsx bench/log.ts [events]`), on a real SQLite store in
 * a temporary directory (WAL, synchronous=FULL):
 *
 * - card registration throughput with the log append against the same store without it (the
 *   card module given an append that does nothing), concurrent registrations sharing group
 *   commits as POST /v1/cards does; the target is at least 0.8x;
 * - proof generation on a generated log of 1,000,000 events (default): inclusion proofs of random
 *   leaves in the full tree, and consistency proofs from random sizes, as the routes make them
 *   (server/log.ts reading the stored nodes); target p99 under 5 ms.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ready } from '../shared/index.js';
import { encodeCardEvent, type CardEvent } from '../shared/log-event.js';
import { leafHash, MerkleTree } from '../shared/merkle.js';
import { sqliteCards } from '../server/store/cards.sqlite.js';
import { SqliteConnection } from '../server/store/connection.sqlite.js';
import { buffer, KIND_CODES, nextEvent, type ChainHead } from '../server/store/log.js';
import { sqliteLog } from '../server/store/log.sqlite.js';
import { openSqliteStore, SQLITE_FILENAME } from '../server/store/sqlite.js';
import type { StoredCard } from '../server/store/types.js';
import { TransparencyLog } from '../server/log.js';
import type { LogConfig } from '../server/config-log.js';
import { logKeyFor } from '../server/config-log.js';
import { quantile, round } from './stats.js';

const b64u = (n: number) => randomBytes(n).toString('base64url');
const card = (i: number, run: string): StoredCard => ({
  id: randomBytes(32).toString('hex'),
  identity: `${run}-${Math.floor(i / 5)}`,
  deviceId: `device-${i % 5}`,
  signKey: b64u(32),
  boxKey: b64u(32),
  snapshot: b64u(260),
  selfSignature: b64u(64),
  appSignature: b64u(64),
  appKeyId: '0123456789abcdef',
  createdAt: 1_760_000_000,
  registeredAt: 1_760_000_000,
  revokedAt: null,
});

/** Registrations per second: `total` cards in batches of `concurrency` at once. */
async function throughput(register: (card: StoredCard) => Promise<unknown>, run: string, total: number, concurrency: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i += concurrency) {
    await Promise.all(Array.from({ length: concurrency }, (_, j) => register(card(i + j, run))));
  }
  return (total * 1000) / (performance.now() - started);
}

async function registrationRatio(total = 4000, concurrency = 50, rounds = 3): Promise<{ withLog: number; without: number; ratio: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-bench-log-'));
  try {
    await (await openSqliteStore({ dataDir: dir })).close(); // the tables
    const connection = new SqliteConnection(new Database(join(dir, SQLITE_FILENAME)));
    connection.db.pragma('journal_mode = WAL');
    connection.db.pragma('synchronous = FULL');
    const logged = sqliteCards(connection, sqliteLog(connection).appendEvent);
    const unlogged = sqliteCards(connection, () => {});
    const options = { maxActivePerIdentity: 20, now: 1_760_000_000 };
    const withLog: number[] = [];
    const without: number[] = [];
    for (let r = 0; r < rounds; r += 1) {
      // Interleaved, so the file's growth weighs on both alike.
      withLog.push(await throughput((c) => logged.registerCard(c, options), `with-${r}`, total, concurrency));
      without.push(await throughput((c) => unlogged.registerCard(c, options), `without-${r}`, total, concurrency));
    }
    connection.close();
    const med = (v: number[]) => quantile(v, 0.5);
    return { withLog: round(med(withLog)), without: round(med(without)), ratio: round(med(withLog) / med(without)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes a generated log of `size` events (identities of 4 events each) straight into the tables. */
function generateLog(dir: string, size: number): void {
  const db = new Database(join(dir, SQLITE_FILENAME));
  const insertEvent = db.prepare('INSERT INTO log_events (idx, identity, chain_seq, card_id, kind, event_time, leaf) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const insertNode = db.prepare('INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)');
  const tree = new MerkleTree();
  const heads = new Map<string, ChainHead>();
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i += 1) {
      const identity = `user-${Math.floor(i / 4)}`;
      const event: CardEvent = nextEvent(identity, heads.get(identity) ?? null, 'registration', randomBytes(32).toString('hex'), 1_760_000_000 + i);
      const leaf = encodeCardEvent(event);
      const hash = leafHash(leaf);
      heads.set(identity, { seq: event.seq, hash, time: event.time });
      if (event.seq === 3) heads.delete(identity);
      insertEvent.run(i, identity, event.seq, event.cardId, KIND_CODES.registration, event.time, buffer(leaf));
      tree.append(hash);
      for (let level = 0, index = i; ; level += 1, index = (index - 1) / 2) {
        insertNode.run(level, index, buffer(tree.node({ level, index })));
        if (index % 2 === 0) break;
      }
    }
  });
  for (let from = 0; from < size; from += 50_000) batch(from, Math.min(size, from + 50_000));
  db.close();
}

async function proofTimes(size: number, samples = 2000): Promise<{ inclusionP99: number; consistencyP99: number; inclusionMedian: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-bench-log-'));
  try {
    await (await openSqliteStore({ dataDir: dir })).close();
    const started = performance.now();
    generateLog(dir, size);
    console.log(`generated a log of ${size} events in ${round((performance.now() - started) / 1000)} s`);
    const store = await openSqliteStore({ dataDir: dir });
    const config: LogConfig = { origin: 'bench/log', ...logKeyFor('bench/log', new Uint8Array(32).fill(1)), keySource: 'LOG_KEY', keyFile: null, checkpointIntervalMs: 2000, witnesses: [], witnessTimeoutMs: 5000 };
    const log = new TransparencyLog(store, config, { logger: console as never });
    const inclusion: number[] = [];
    const consistency: number[] = [];
    for (let i = 0; i < samples; i += 1) {
      const index = Math.floor(Math.random() * size);
      let t = performance.now();
      await log.inclusionProofs([index], size);
      inclusion.push(performance.now() - t);
      const from = 1 + Math.floor(Math.random() * (size - 1));
      t = performance.now();
      await log.consistencyProof(from, size);
      consistency.push(performance.now() - t);
    }
    await store.close();
    const ms = (v: number) => round(v);
    return { inclusionMedian: ms(quantile(inclusion, 0.5)), inclusionP99: ms(quantile(inclusion, 0.99)), consistencyP99: ms(quantile(consistency, 0.99)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await ready();
const size = Number(process.argv[2] ?? 1_000_000);
const registration = await registrationRatio();
console.log(`card registrations/s (SQLite, 50 at once): with the log ${registration.withLog}, without ${registration.without}: ${registration.ratio}x (target >= 0.8x)`);
const proofs = await proofTimes(size);
console.log(`proofs in a log of ${size} events: inclusion median ${proofs.inclusionMedian} ms, p99 ${proofs.inclusionP99} ms; consistency p99 ${proofs.consistencyP99} ms (target p99 < 5 ms)`);
