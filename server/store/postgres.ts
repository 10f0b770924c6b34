/**
 * The shared store for several stateless server instances: PostgreSQL through a pg Pool, each
 * concern in its own module (settings, cards, relay, media, history, log .postgres.ts) on one PostgresConnection.
 *
 * Races between processes are settled in the database: migrations under an advisory lock
 * (migrate.postgres.ts), card registration under a per-identity advisory lock (the active-card
 * limit) plus unique indexes (ids and keys across identities), message indexes from a
 * per-conversation counter row bumped in the same statement as the insert, idempotent writes with
 * ON CONFLICT DO NOTHING.
 */
import pg from 'pg';
import { postgresAuthorizations } from './authorizations.postgres.js';
import { postgresCards } from './cards.postgres.js';
import { CONNECT_TIMEOUT_MS, PostgresConnection } from './connection.postgres.js';
import { postgresHistory } from './history.postgres.js';
import { appendEvent, postgresLog } from './log.postgres.js';
import { postgresMedia } from './media.postgres.js';
import { checkPostgres, migratePostgres, type PostgresTarget } from './migrate.postgres.js';
import { postgresRelay } from './relay.postgres.js';
import { postgresSettings } from './settings.postgres.js';
import type { Store } from './types.js';

export interface PostgresStoreOptions extends PostgresTarget {
  /** Connections per process. Default 10. */
  poolSize?: number | undefined;
  /** Told about errors of idle pooled connections (the pool drops them; the next query reconnects). */
  onError?: ((err: Error) => void) | undefined;
  /** false: apply no migration, only check none is pending (they were run ahead, migrateStore). Default true. */
  migrate?: boolean | undefined;
}

const DEFAULT_POOL_SIZE = 10;
/** OID of BIGINT (int8). pg hands it over as a string by default. */
const INT8_OID = 20;

/** A pool whose every connection, made now or later, resolves the store's table names in `schema`. */
function openPool(options: PostgresStoreOptions, schema: string): pg.Pool {
  // Unix ms and counts are BIGINT; all of them are far below 2^53, so plain numbers are exact.
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, (value: string) => Number(value));
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types,
    // Awaited by the pool before the connection is handed out (unlike the 'connect' event), and
    // not overridden by an `options` parameter in the connection string.
    onConnect: async (client: pg.ClientBase) => {
      await client.query(`SET search_path TO ${pg.escapeIdentifier(schema)}`);
    },
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => options.onError?.(err));
  return pool;
}

/** Opens the PostgreSQL store, bringing its tables up to date first (or checking they are, `migrate: false`). */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const { schema } = options.migrate === false ? await checkPostgres(options) : await migratePostgres(options);
  return postgresStore(new PostgresConnection(openPool(options, schema)));
}

function postgresStore(connection: PostgresConnection): Store {
  let closed = false;
  return {
    kind: 'postgres',
    async ping() {
      await connection.pool.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await connection.pool.end();
    },
    ...postgresSettings(connection),
    ...postgresCards(connection, appendEvent),
    ...postgresRelay(connection),
    ...postgresMedia(connection),
    ...postgresHistory(connection),
    ...postgresAuthorizations(connection),
    ...postgresLog(connection),
  };
}
