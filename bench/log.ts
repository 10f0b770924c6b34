/**
 * The card transparency log's costs (`npx tsx bench/log.ts [events]`), on real stores: SQLite in
 * temporary directories (WAL, synchronous=FULL), PostgreSQL at TEST_DATABASE_URL when it answers:
 *
 * - card registrations per second through POST /v1/cards (bench/server.ts, 10 connections) on the
 *   real app (SQLite), against the same app whose card store appends no event
 *   (BENCH_SERVER_LOG=off), runs alternated; the target is at least 0.8x. `npm run bench`
 *   measures it too;
 * - the same at the store alone (the card module given an append that does nothing), 50
 *   concurrent registrations: the append's own cost, without the request's. SQLite's group
 *   commit shares one commit among them; PostgreSQL's log lock serializes them from the append
 *   to the commit;
 * - proof generation on a generated log of 1,000,000 events (default): inclusion proofs of random
 *   leaves in the full tree, and consistency proofs from random sizes, as the routes make them
 *   (server/log.ts reading the stored nodes); target p99 under 5 ms.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ready } from '../shared/index.js';
import { postgresCards } from '../server/store/cards.postgres.js';
import { sqliteCards } from '../server/store/cards.sqlite.js';
import { PostgresConnection } from '../server/store/connection.postgres.js';
import { SqliteConnection } from '../server/store/connection.sqlite.js';
import { appendEvent as appendPostgresEvent } from '../server/store/log.postgres.js';
import { sqliteLog } from '../server/store/log.sqlite.js';
import { migratePostgres } from '../server/store/migrate.postgres.js';
import { openSqliteStore, SQLITE_FILENAME } from '../server/store/sqlite.js';
import type { CardStore, StoredCard } from '../server/store/types.js';
import { TransparencyLog } from '../server/log.js';
import type { LogConfig } from '../server/config-log.js';
import { logKeyFor } from '../server/config-log.js';
import { startBenchServer } from './child.js';
import { syntheticCard } from './fixtures.js';
import { generateLog } from './log-fixture.js';
import type { LoadResult } from './load.js';
import { benchRegistration, REGISTRATION_CONNECTIONS, WITHOUT_LOG } from './server.js';
import { quantile, round } from './stats.js';

const med = (v: number[]) => quantile(v, 0.5);

/**
 * POST /v1/cards per second with the log and without, and the server's CPU time per request (its
 * process, all threads: less swayed than the rate by other work on the machine), each the median
 * of `rounds` alternated runs of `seconds`. `databaseUrl`: each server on PostgreSQL, in a schema
 * of its own dropped afterwards.
 */
async function httpRatio(databaseUrl?: string, seconds = 5, rounds = 5): Promise<{ perSec: [number, number]; cpuUs: [number, number]; ratio: number }> {
  const schemas = [0, 1].map(() => `bench_log_http_${randomBytes(6).toString('hex')}`);
  const on = (i: number): Record<string, string> => (databaseUrl ? { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schemas[i]! } : {});
  const servers = await Promise.all([startBenchServer(on(0)), startBenchServer({ ...on(1), ...WITHOUT_LOG })]);
  try {
    const runs: [LoadResult[], LoadResult[]] = [[], []];
    for (let r = 0; r < rounds; r += 1) {
      for (const [i, server] of servers.entries()) runs[i]!.push(await benchRegistration(server, { seconds, warmupSeconds: 1 }, REGISTRATION_CONNECTIONS));
    }
    const perSec = runs.map((list) => round(med(list.map((l) => l.perSec)))) as [number, number];
    const cpuUs = runs.map((list) => round(med(list.map((l) => l.server!.cpuUsPerRequest)))) as [number, number];
    return { perSec, cpuUs, ratio: round(perSec[0] / perSec[1]) };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    if (databaseUrl) await dropSchemas(databaseUrl, schemas);
  }
}

async function dropSchemas(connectionString: string, schemas: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await client.end();
}


/** Registrations per second: `total` cards in batches of `concurrency` at once. */
async function throughput(register: (card: StoredCard) => Promise<unknown>, run: string, total: number, concurrency: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < total; i += concurrency) {
    await Promise.all(Array.from({ length: concurrency }, (_, j) => register(syntheticCard(i + j, run, 5))));
  }
  return (total * 1000) / (performance.now() - started);
}

/** One database's card store with the log append and without it (an append that does nothing). */
interface CardStores {
  logged: CardStore;
  unlogged: CardStore;
  close(): Promise<void>;
}

async function sqliteStores(): Promise<CardStores> {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-bench-log-'));
  await (await openSqliteStore({ dataDir: dir })).close(); // the tables
  const connection = new SqliteConnection(new Database(join(dir, SQLITE_FILENAME)));
  connection.db.pragma('journal_mode = WAL');
  connection.db.pragma('synchronous = FULL');
  return {
    logged: sqliteCards(connection, sqliteLog(connection).appendEvent),
    unlogged: sqliteCards(connection, () => {}),
    async close() {
      connection.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PostgreSQL at `connectionString`, in a schema of its own dropped afterwards. */
async function postgresStores(connectionString: string): Promise<CardStores> {
  const schema = `bench_log_${randomBytes(6).toString('hex')}`;
  await migratePostgres({ connectionString, schema });
  const types = new pg.TypeOverrides();
  types.setTypeParser(20, Number); // BIGINT as numbers, as the store's pool reads them
  const pool = new pg.Pool({ connectionString, max: 10, types, options: `-c search_path=${schema}` });
  const connection = new PostgresConnection(pool);
  return {
    logged: postgresCards(connection, appendPostgresEvent),
    unlogged: postgresCards(connection, async () => {}),
    async close() {
      await pool.end();
      await dropSchemas(connectionString, [schema]);
    },
  };
}

/** Registrations per second with the log and without, each the median of `rounds` alternated runs. */
async function registrationRatio(stores: CardStores, total: number, concurrency = 50, rounds = 3): Promise<{ withLog: number; without: number; ratio: number }> {
  try {
    const options = { maxActivePerIdentity: 20, now: 1_760_000_000 };
    const withLog: number[] = [];
    const without: number[] = [];
    for (let r = 0; r < rounds; r += 1) {
      // Interleaved, so the database's growth weighs on both alike.
      withLog.push(await throughput((c) => stores.logged.registerCard(c, options), `with-${r}`, total, concurrency));
      without.push(await throughput((c) => stores.unlogged.registerCard(c, options), `without-${r}`, total, concurrency));
    }
    return { withLog: round(med(withLog)), without: round(med(without)), ratio: round(med(withLog) / med(without)) };
  } finally {
    await stores.close();
  }
}


async function proofTimes(size: number, samples = 2000): Promise<{ inclusionP99: number; consistencyP99: number; inclusionMedian: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-bench-log-'));
  try {
    await (await openSqliteStore({ dataDir: dir })).close();
    const started = performance.now();
    generateLog(dir, size, { identityPrefix: 'user', eventsPerIdentity: 4 });
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

/** PostgreSQL at TEST_DATABASE_URL (the tests' default) when it answers. */
async function postgresUrl(): Promise<string | null> {
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return url;
  } catch (err) {
    console.log(`PostgreSQL not measured (${(err as Error).message})`);
    return null;
  }
}

await ready();
const size = Number(process.argv[2] ?? 1_000_000);
const postgres = await postgresUrl();
const rate = (label: string, r: { perSec: [number, number]; cpuUs: [number, number]; ratio: number }) =>
  console.log(
    `POST /v1/cards/s (${label}, ${REGISTRATION_CONNECTIONS} connections): with the log ${r.perSec[0]}, without ${r.perSec[1]}: ${r.ratio}x (target >= 0.8x); ` +
      `server CPU per request ${r.cpuUs[0]} us and ${r.cpuUs[1]} us`,
  );
rate('SQLite', await httpRatio());
if (postgres) rate('PostgreSQL', await httpRatio(postgres));
const sqlite = await registrationRatio(await sqliteStores(), 4000);
console.log(`the store alone, registrations/s (SQLite, 50 at once): with the log ${sqlite.withLog}, without ${sqlite.without}: ${sqlite.ratio}x`);
if (postgres) {
  const r = await registrationRatio(await postgresStores(postgres), 1000);
  console.log(`the store alone, registrations/s (PostgreSQL, 50 at once, pool of 10): with the log ${r.withLog}, without ${r.without}: ${r.ratio}x`);
}
const proofs = await proofTimes(size);
console.log(`proofs in a log of ${size} events: inclusion median ${proofs.inclusionMedian} ms, p99 ${proofs.inclusionP99} ms; consistency p99 ${proofs.consistencyP99} ms (target p99 < 5 ms)`);
