/**
 * The embedded store: one SQLite file in the data directory (better-sqlite3, synchronous), each
 * concern in its own module (settings, cards, relay, history .sqlite.ts) on one SqliteConnection.
 * WAL with synchronous=FULL: a call that resolved (history acknowledged to a client) survives a
 * power loss, not just a process crash.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteCards } from './cards.sqlite.js';
import { SqliteConnection } from './connection.sqlite.js';
import { sqliteHistory } from './history.sqlite.js';
import { migrationsTable, pendingMigrations, SQLITE_DIALECT } from './migrations.js';
import { sqliteRelay } from './relay.sqlite.js';
import { sqliteSettings } from './settings.sqlite.js';
import type { Store } from './types.js';

export interface SqliteStoreOptions {
  /** Directory of the database file, created when missing. Default `./.data`. */
  dataDir?: string;
  /** File name inside dataDir, or ':memory:' (tests). Default `twilio-e2ee.sqlite`. */
  filename?: string;
}

export const SQLITE_FILENAME = 'twilio-e2ee.sqlite';
const BUSY_TIMEOUT_MS = 5_000;

function openDatabase(options: SqliteStoreOptions): Database.Database {
  if (options.filename === ':memory:') return new Database(':memory:', { timeout: BUSY_TIMEOUT_MS });
  const dataDir = options.dataDir ?? './.data';
  mkdirSync(dataDir, { recursive: true });
  return new Database(join(dataDir, options.filename ?? SQLITE_FILENAME), { timeout: BUSY_TIMEOUT_MS });
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(migrationsTable(SQLITE_DIALECT));
    // Read inside the write lock: another process may have migrated while this one waited.
    const applied = db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[];
    const record = db.prepare('INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)');
    for (const migration of pendingMigrations(applied)) {
      db.exec(migration.sql(SQLITE_DIALECT));
      record.run(migration.version, Date.now());
    }
  }).immediate();
}

/** Opens (creating and migrating when needed) the SQLite store. */
export async function openSqliteStore(options: SqliteStoreOptions = {}): Promise<Store> {
  const db = openDatabase(options);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return sqliteStore(new SqliteConnection(db));
  } catch (err) {
    db.close();
    throw err;
  }
}

function sqliteStore(connection: SqliteConnection): Store {
  const ping = connection.db.prepare('SELECT 1');
  return {
    kind: 'sqlite',
    async ping() {
      connection.one(ping);
    },
    async close() {
      connection.close();
    },
    ...sqliteSettings(connection),
    ...sqliteCards(connection),
    ...sqliteRelay(connection),
    ...sqliteHistory(connection),
  };
}
