/**
 * Opens the configured store: PostgreSQL when a database URL is given (several server instances),
 * the embedded SQLite file otherwise. The driver not chosen is never loaded.
 */
import type { CardStore, HistoryStore, RelayStore, SettingsStore, Store } from './types.js';

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
    'appendMessage', 'getMessage', 'messages', 'updateMessage', 'removeMessage', 'countMessagesAfter',
  ] as const satisfies readonly (keyof RelayStore)[]),
  ...(['putHistory', 'getHistory', 'history', 'deleteHistory'] as const satisfies readonly (keyof HistoryStore)[]),
] as const;

// Fails to compile when Store gains a method the list lacks.
type Unlisted = Exclude<keyof Store, 'kind' | (typeof STORE_METHODS)[number]>;
const STORE_METHODS_COMPLETE: [Unlisted] extends [never] ? true : false = true;
