/**
 * Opens the configured store: PostgreSQL when a database URL is given (several server instances),
 * the embedded SQLite file otherwise. The driver not chosen is never loaded.
 */
import type { AuthorizationStore, CardStore, HistoryStore, LogStore, MediaStore, RelayStore, SettingsStore, Store } from './types.js';

export type * from './types.js';
export type { PostgresStoreOptions } from './postgres.js';
export type { SqliteStoreOptions } from './sqlite.js';
export { DEFAULT_SCHEMA, MIGRATIONS_TABLE } from './migrations.js';

export interface OpenStoreOptions {
  /** DATABASE_URL: a postgres:// connection string selects PostgreSQL. */
  databaseUrl?: string | null | undefined;
  /** DATA_DIR: where the SQLite file lives when no databaseUrl is set. Default `./.data`. */
  dataDir?: string | undefined;
  /**
   * PostgreSQL only, DATABASE_SCHEMA: the schema of the tables, created when missing. Default
   * `twilio_e2ee`, or the schema where a release before this setting made them (with a warning).
   */
  schema?: string | null | undefined;
  /** PostgreSQL only: connections per process. */
  poolSize?: number | undefined;
  /** PostgreSQL only: errors of idle pooled connections, e.g. for the log. */
  onError?: ((err: Error) => void) | undefined;
  /** PostgreSQL only: the start-up warning about tables found where an earlier release made them. Default: console.warn. */
  onWarning?: ((message: string) => void) | undefined;
  /**
   * false: apply no migration, only check that none is pending (STORE_UNAVAILABLE otherwise), for
   * migrations run ahead with migrateStore. Default true: pending migrations are applied at open.
   */
  migrate?: boolean | undefined;
}

export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  if (options.databaseUrl) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore({ ...options, connectionString: options.databaseUrl });
  }
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore({ dataDir: options.dataDir, migrate: options.migrate });
}

export interface MigrationReport {
  kind: Store['kind'];
  /** PostgreSQL: the schema holding the tables. */
  schema?: string;
  /** The migration versions applied by this call, in order; empty when the tables were up to date. */
  applied: number[];
}

/**
 * Brings the store's tables up to date, as openStore does at open, without opening the store: for
 * a deploy step run before new instances start (docs/API.md, "Database and migrations").
 * @throws E2EEError STORE_UNAVAILABLE when the database cannot be reached, CONFIG_INVALID for a
 *   schema that cannot be the store's.
 */
export async function migrateStore(options: Pick<OpenStoreOptions, 'databaseUrl' | 'dataDir' | 'schema' | 'onWarning'> = {}): Promise<MigrationReport> {
  if (options.databaseUrl) {
    const { migratePostgres } = await import('./migrate.postgres.js');
    return { kind: 'postgres', ...(await migratePostgres({ ...options, connectionString: options.databaseUrl })) };
  }
  const { migrateSqlite } = await import('./sqlite.js');
  return { kind: 'sqlite', applied: await migrateSqlite({ dataDir: options.dataDir }) };
}

/**
 * Every method of Store, by concern: server/plugin.ts checks a given store has them all, so a
 * stale or foreign object fails at start-up, not on some later request.
 */
export const STORE_METHODS = [
  ...(['ping', 'close'] as const),
  ...(['getSetting', 'putSettingIfAbsent'] as const satisfies readonly (keyof SettingsStore)[]),
  ...([
    'registerCard', 'getCard', 'activeCards', 'revokeCard',
    'addPendingDevice', 'getPendingDevice', 'pendingDevices', 'takePendingDevice', 'rejectPendingDevice',
  ] as const satisfies readonly (keyof CardStore)[]),
  ...([
    'createConversation', 'getConversation', 'conversationsOf', 'updateConversation',
    'addParticipant', 'removeParticipant', 'participants', 'isParticipant', 'getParticipant', 'updateParticipantAttributes', 'setLastReadMessageIndex',
    'appendMessage', 'appendMediaMessage', 'getMessage', 'messages', 'updateMessage', 'removeMessage', 'countMessagesAfter',
  ] as const satisfies readonly (keyof RelayStore)[]),
  ...(['putMedia', 'getMedia', 'readMedia', 'unattachedMediaBytes', 'sweepMedia'] as const satisfies readonly (keyof MediaStore)[]),
  ...([
    'putHistory', 'getHistory', 'history', 'deleteHistory', 'historyNotWrappedFor', 'countHistoryNotWrappedFor', 'setOrgWraps',
  ] as const satisfies readonly (keyof HistoryStore)[]),
  ...([
    'logSize', 'logNodes', 'logEvent', 'cardEvents', 'identityEvents', 'latestCheckpoint', 'logCheckpoint', 'putCheckpoint', 'putLogCosignature', 'logCosignatures',
  ] as const satisfies readonly (keyof LogStore)[]),
  ...(['cardAuthorizations'] as const satisfies readonly (keyof AuthorizationStore)[]),
] as const;

// Fails to compile when Store gains a method the list lacks.
type Unlisted = Exclude<keyof Store, 'kind' | (typeof STORE_METHODS)[number]>;
const STORE_METHODS_COMPLETE: [Unlisted] extends [never] ? true : false = true;
