/**
 * The shared store for several stateless server instances: PostgreSQL through a pg Pool, each
 * concern in its own module (settings, cards, relay, history .postgres.ts) on one PostgresConnection.
 *
 * Races between processes are settled in the database: migrations under an advisory lock,
 * card registration under a per-identity advisory lock (the active-card limit) plus unique
 * indexes (ids and keys across identities), message indexes from a per-conversation counter row
 * bumped in the same statement as the insert, idempotent writes with ON CONFLICT DO NOTHING.
 */
import pg from 'pg';
import { postgresCards } from './cards.postgres.js';
import { PostgresConnection } from './connection.postgres.js';
import { postgresHistory } from './history.postgres.js';
import { migrationsTable, pendingMigrations, POSTGRES_DIALECT } from './migrations.js';
import { postgresRelay } from './relay.postgres.js';
import { int, type Row } from './rows.js';
import { postgresSettings } from './settings.postgres.js';
import type { Store } from './types.js';

export interface PostgresStoreOptions {
  connectionString: string;
  /** Schema holding the tables, created when missing; default: the connection's search_path. */
  schema?: string;
  /** Connections per process. Default 10. */
  poolSize?: number;
  /** Told about errors of idle pooled connections (the pool drops them; the next query reconnects). */
  onError?: (err: Error) => void;
}

const DEFAULT_POOL_SIZE = 10;
const CONNECT_TIMEOUT_MS = 10_000;
/** OID of BIGINT (int8). pg hands it over as a string by default. */
const INT8_OID = 20;

const MIGRATION_SQL = {
  // Database-wide (not per schema): harmless, migrations are short and run once per process start.
  lock: `SELECT pg_advisory_xact_lock(hashtext('twilio-e2ee:migrations'))`,
  createSchema: (schema: string) => `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`,
  appliedVersions: 'SELECT version FROM schema_migrations',
  record: 'INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)',
} as const;

async function migrate(connection: PostgresConnection, schema: string | undefined): Promise<void> {
  await connection.transaction(async (client) => {
    await client.query(MIGRATION_SQL.lock);
    if (schema !== undefined) await client.query(MIGRATION_SQL.createSchema(schema));
    await client.query(migrationsTable(POSTGRES_DIALECT));
    const applied = (await client.query<Row>(MIGRATION_SQL.appliedVersions)).rows.map((r) => int(r, 'version'));
    for (const migration of pendingMigrations(applied)) {
      await client.query(migration.sql(POSTGRES_DIALECT));
      await client.query(MIGRATION_SQL.record, [migration.version, Date.now()]);
    }
  });
}

function openPool(options: PostgresStoreOptions): pg.Pool {
  const { schema } = options;
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
    ...(schema === undefined
      ? {}
      : {
          onConnect: async (client: pg.ClientBase) => {
            await client.query(`SET search_path TO ${pg.escapeIdentifier(schema)}`);
          },
        }),
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => options.onError?.(err));
  return pool;
}

/** Opens (creating and migrating the schema when needed) the PostgreSQL store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const pool = openPool(options);
  const connection = new PostgresConnection(pool);
  try {
    await migrate(connection, options.schema);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return postgresStore(connection);
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
    ...postgresCards(connection),
    ...postgresRelay(connection),
    ...postgresHistory(connection),
  };
}
