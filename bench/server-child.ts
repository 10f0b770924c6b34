/**
 * The server under load, in its own process (so the load generator in the parent does not share
 * its event loop or core): the real app (buildApp, the SQLite store in the data directory of the
 * environment, the configuration from the environment exactly as `npm start` reads it) and, on a
 * second port, the ceiling: a bare Fastify route doing one Ed25519 verify and one sign of a
 * snapshot-sized message with the same primitives, the crypto floor of a card registration.
 *
 * Started by bench/server.ts with an IPC channel: it reports its ports, and exits when asked or
 * when the parent goes away.
 *
 * BENCH_SERVER_BACKEND=libsodium (for comparisons only) puts every primitive back on libsodium
 * after the app installed its node:crypto backend.
 *
 * BENCH_SERVER_LOG=off (for comparisons only; not a setting of the service): card changes go
 * through a card store whose log append does nothing, on a second connection to the same
 * database, so that the same app prices what the transparency log adds to a registration.
 * DATABASE_URL (with DATABASE_SCHEMA) puts the store on PostgreSQL, as for `npm start`.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import pg from 'pg';
import { buildApp } from '../server/app.js';
import { loadConfig, type Config } from '../server/config.js';
import { postgresCards } from '../server/store/cards.postgres.js';
import { sqliteCards } from '../server/store/cards.sqlite.js';
import { PostgresConnection } from '../server/store/connection.postgres.js';
import { SqliteConnection } from '../server/store/connection.sqlite.js';
import { DEFAULT_SCHEMA, openStore } from '../server/store/index.js';
import { SQLITE_FILENAME } from '../server/store/sqlite.js';
import type { Store } from '../server/store/types.js';
import { CARD_APP_LABEL, CARD_SELF_LABEL } from '../shared/constants.js';
import { concatBytes, fromB64u, toB64u } from '../shared/encoding.js';
import { backendInfo, setBackend, sign, verify } from '../shared/sodium.js';

export interface ChildReady {
  type: 'ready';
  appUrl: string;
  ceilingUrl: string;
  backend: ReturnType<typeof backendInfo>;
  pid: number;
}

/** Cumulative use of the server process, for the parent to difference around each run. */
export interface ChildStats {
  type: 'stats';
  /** CPU time of the process (all threads), microseconds. */
  cpuUs: number;
  /** The main thread's event loop: time spent running (not waiting), ms, and in total, ms. */
  elu: { active: number; idle: number };
  wallMs: number;
}

/** Body of the ceiling route: a card request plus the public key its self-signature verifies with. */
export interface CeilingRequest {
  snapshot: string;
  selfSignature: string;
  signKey: string;
}

/** `store` with its card changes appending no log event (BENCH_SERVER_LOG=off), as a registration was before the log. */
function withoutLog(store: Store, config: Config): Store {
  if (config.databaseUrl) {
    // A pool like the store's: the same schema, BIGINT (OID 20) as numbers.
    const types = new pg.TypeOverrides();
    types.setTypeParser(20, Number);
    const pool = new pg.Pool({ connectionString: config.databaseUrl, types, options: `-c search_path=${config.databaseSchema ?? DEFAULT_SCHEMA}` });
    const cards = postgresCards(new PostgresConnection(pool), async () => {});
    return { ...store, ...cards, close: async () => (await pool.end(), store.close()) };
  }
  const db = new Database(join(config.dataDir, SQLITE_FILENAME), { timeout: 5000 });
  db.pragma('synchronous = FULL'); // as the store's own connection (the file is in WAL mode already)
  const connection = new SqliteConnection(db);
  return { ...store, ...sqliteCards(connection, () => {}), close: async () => (connection.close(), store.close()) };
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('bench/server-child.ts runs under bench/server.ts (it needs an IPC channel)');
  const config = await loadConfig(process.env);
  const opened = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.databaseSchema });
  const store = process.env.BENCH_SERVER_LOG === 'off' ? withoutLog(opened, config) : opened;
  const app = await buildApp({ config, store });
  if (process.env.BENCH_SERVER_BACKEND === 'libsodium') setBackend(null);
  await app.listen({ host: '127.0.0.1', port: 0 });

  const ceiling = Fastify({ logger: false });
  const appKey = config.appKey;
  ceiling.post('/ceiling', async (request) => {
    const body = request.body as CeilingRequest;
    const snapshot = fromB64u(body.snapshot);
    const selfSignature = fromB64u(body.selfSignature);
    if (!verify(selfSignature, concatBytes(CARD_SELF_LABEL, snapshot), fromB64u(body.signKey))) throw new Error('ceiling: bad signature');
    return { appSignature: toB64u(sign(concatBytes(CARD_APP_LABEL, snapshot, selfSignature), appKey.secretKey)) };
  });
  await ceiling.listen({ host: '127.0.0.1', port: 0 });

  const port = (server: typeof app.server) => (server.address() as { port: number }).port;
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(1), 5000).unref();
    await Promise.allSettled([app.close(), ceiling.close()]);
    await store.close();
    process.exit(0);
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stop') void close();
    if (message?.type === 'stats') {
      const cpu = process.cpuUsage();
      const elu = performance.eventLoopUtilization();
      const stats: ChildStats = { type: 'stats', cpuUs: cpu.user + cpu.system, elu: { active: elu.active, idle: elu.idle }, wallMs: performance.now() };
      process.send!(stats);
    }
  });
  process.on('disconnect', () => void close());
  const ready: ChildReady = {
    type: 'ready',
    appUrl: `http://127.0.0.1:${port(app.server)}`,
    ceilingUrl: `http://127.0.0.1:${port(ceiling.server)}`,
    backend: backendInfo(),
    pid: process.pid,
  };
  process.send(ready);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
