/**
 * The embedded store: one SQLite file in the data directory (better-sqlite3, synchronous), each
 * concern in its own module (settings, cards, relay, media, history, log, authorizations .sqlite.ts) on one
 * SqliteConnection; the relay's media files in DATA_DIR/media.
 * WAL with synchronous=FULL: a call that resolved (history acknowledged to a client) survives a
 * power loss, not just a process crash.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { sqliteAuthorizations } from './authorizations.sqlite.js';
import { sqliteCards } from './cards.sqlite.js';
import { SqliteConnection } from './connection.sqlite.js';
import { sqliteHistory } from './history.sqlite.js';
import { sqliteLog } from './log.sqlite.js';
import { MediaFiles, sqliteMedia } from './media.sqlite.js';
import {
  type Migration,
  MIGRATIONS_TABLE,
  migrationsPending,
  migrationsTable,
  pendingMigrations,
  RELEASED_MIGRATIONS_TABLE,
  SQLITE_DIALECT,
} from './migrations.js';
import { sqliteRelay } from './relay.sqlite.js';
import type { Row } from './rows.js';
import { sqliteSettings } from './settings.sqlite.js';
import type { Store } from './types.js';

export interface SqliteStoreOptions {
  /** Directory of the database file, created when missing. Default `./.data`. */
  dataDir?: string;
  /** File name inside dataDir, or ':memory:' (tests). Default `twilio-e2ee.sqlite`. */
  filename?: string;
  /** false: apply no migration, only check none is pending (they were run ahead, migrateStore). Default true. */
  migrate?: boolean | undefined;
}

export const SQLITE_FILENAME = 'twilio-e2ee.sqlite';
const BUSY_TIMEOUT_MS = 5_000;

function openFile(options: SqliteStoreOptions): Database.Database {
  if (options.filename === ':memory:') return new Database(':memory:', { timeout: BUSY_TIMEOUT_MS });
  const dataDir = options.dataDir ?? './.data';
  const file = join(dataDir, options.filename ?? SQLITE_FILENAME);
  try {
    mkdirSync(dataDir, { recursive: true });
    return new Database(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    // A bare EACCES or "unable to open database file" does not say which setting to fix.
    throw new E2EEError(ErrorCode.STORE_UNAVAILABLE, `cannot open the SQLite database ${file} (DATA_DIR, openStore's dataDir): ${(err as Error).message}`);
  }
}

/** Opens the file with the settings every connection to it needs; closed again when that fails. */
function openDatabase(options: SqliteStoreOptions): Database.Database {
  const db = openFile(options);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

const hasTable = (db: Database.Database, name: string): boolean =>
  db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(name) !== undefined;

const appliedVersions = (db: Database.Database, table: string): number[] =>
  db.prepare(`SELECT version FROM ${table}`).pluck().all() as number[];

/** Brings the tables up to date in one IMMEDIATE transaction; returns the versions applied now. */
function migrate(db: Database.Database): number[] {
  return db
    .transaction(() => {
      // A file made by an earlier release: its migrations table takes this release's name.
      if (hasTable(db, RELEASED_MIGRATIONS_TABLE) && !hasTable(db, MIGRATIONS_TABLE)) {
        db.exec(`ALTER TABLE ${RELEASED_MIGRATIONS_TABLE} RENAME TO ${MIGRATIONS_TABLE}`);
      }
      db.exec(migrationsTable(SQLITE_DIALECT));
      // Read inside the write lock: another process may have migrated while this one waited.
      const pending = pendingMigrations(appliedVersions(db, MIGRATIONS_TABLE));
      const record = db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (version, applied_at_ms) VALUES (?, ?)`);
      for (const migration of pending) {
        db.exec(migration.sql(SQLITE_DIALECT));
        if (migration.data) runData(db, migration.data);
        record.run(migration.version, Date.now());
      }
      return pending.map((m) => m.version);
    })
    .immediate();
}

/** A migration's derived rows (Migration.data), each distinct statement prepared once. */
function runData(db: Database.Database, data: NonNullable<Migration['data']>): void {
  const prepared = new Map<string, Database.Statement>();
  for (const [sql, values] of data.statements(db.prepare(data.select).all() as Row[])) {
    if (!prepared.has(sql)) prepared.set(sql, db.prepare(sql));
    prepared.get(sql)!.run(...values);
  }
}

/** For `migrate: false`: throws STORE_UNAVAILABLE when migrations are pending, changing nothing. */
function checkMigrated(db: Database.Database): void {
  const table = [MIGRATIONS_TABLE, RELEASED_MIGRATIONS_TABLE].find((name) => hasTable(db, name));
  const pending = pendingMigrations(table === undefined ? [] : appliedVersions(db, table));
  if (pending.length > 0) throw migrationsPending(`the SQLite file ${db.name}`, pending);
}

/** Brings the file's tables up to date and closes it; returns the versions applied now. */
export async function migrateSqlite(options: SqliteStoreOptions = {}): Promise<number[]> {
  const db = openDatabase(options);
  try {
    return migrate(db);
  } finally {
    db.close();
  }
}

/** Opens the SQLite store, bringing its tables up to date first (or checking they are, `migrate: false`). */
export async function openSqliteStore(options: SqliteStoreOptions = {}): Promise<Store> {
  const db = openDatabase(options);
  try {
    if (options.migrate === false) checkMigrated(db);
    else migrate(db);
    // The relay's media files beside the database file; an in-memory database gets a temporary directory.
    const mediaDir = options.filename === ':memory:' ? mkdtempSync(join(tmpdir(), 'twilio-e2ee-media-')) : join(options.dataDir ?? './.data', 'media');
    return sqliteStore(new SqliteConnection(db), new MediaFiles(mediaDir));
  } catch (err) {
    db.close();
    throw err;
  }
}

function sqliteStore(connection: SqliteConnection, files: MediaFiles): Store {
  const ping = connection.db.prepare('SELECT 1');
  const { appendEvent, ...log } = sqliteLog(connection);
  return {
    kind: 'sqlite',
    async ping() {
      connection.one(ping);
    },
    async close() {
      connection.close();
    },
    ...sqliteSettings(connection),
    ...sqliteCards(connection, appendEvent),
    ...sqliteRelay(connection, files),
    ...sqliteMedia(connection, files),
    ...sqliteHistory(connection),
    ...log,
    ...sqliteAuthorizations(connection),
  };
}
