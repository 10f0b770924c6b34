/**
 * Opens the configured store: PostgreSQL when a database URL is given (several server instances),
 * the embedded SQLite file otherwise. The driver not chosen is never loaded.
 */
import type { Store } from './types.js';

export type * from './types.js';
export type { PostgresStoreOptions } from './postgres.js';
export type { SqliteStoreOptions } from './sqlite.js';

export interface OpenStoreOptions {
  /** DATABASE_URL: a postgres:// connection string selects PostgreSQL. */
  databaseUrl?: string | undefined;
  /** DATA_DIR: where the SQLite file lives when no databaseUrl is set. Default `./.data`. */
  dataDir?: string | undefined;
  /** PostgreSQL only: schema for the tables (created when missing). */
  schema?: string | undefined;
  /** PostgreSQL only: connections per process. */
  poolSize?: number | undefined;
  /** PostgreSQL only: errors of idle pooled connections, e.g. for the log. */
  onError?: ((err: Error) => void) | undefined;
}

export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  if (options.databaseUrl) {
    const { openPostgresStore } = await import('./postgres.js');
    const { schema, poolSize, onError } = options;
    return openPostgresStore({ connectionString: options.databaseUrl, schema, poolSize, onError });
  }
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore({ dataDir: options.dataDir });
}
