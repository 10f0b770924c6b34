/**
 * The schema, written once for both databases: each migration renders its DDL for a dialect, so
 * the SQLite and PostgreSQL tables cannot drift apart (test/server/store.schema.test.ts compares
 * the two as built). Applied in order at open (or ahead of it, migrateStore), each version
 * recorded in MIGRATIONS_TABLE; a version is never edited once released (the same DDL for an
 * existing database), only followed by a new one. Migrations only add: a release can run on the
 * tables of the next one.
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { LOG_BACKFILL_SELECT, logBackfill } from './log.js';
import type { Row } from './rows.js';

/** PostgreSQL schema of the tables when none is configured (DATABASE_SCHEMA). */
export const DEFAULT_SCHEMA = 'twilio_e2ee';

/** The migrations table: named after the project, so it never meets an app's own `schema_migrations`. */
export const MIGRATIONS_TABLE = 'twilio_e2ee_migrations';

/** Its name in the releases before, renamed to MIGRATIONS_TABLE by the first migration run that finds it. */
export const RELEASED_MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Why `name` cannot be a schema name, or undefined when it can: PostgreSQL cuts identifiers to 63
 * bytes (two long names could name one schema) and reserves `pg_`.
 */
export function schemaNameProblem(name: string): string | undefined {
  if (name.length === 0 || Buffer.byteLength(name) > 63) return 'must be 1 to 63 bytes long';
  if (name.includes('\0')) return 'must not contain NUL';
  if (/^pg_/i.test(name)) return 'must not start with pg_ (reserved by PostgreSQL)';
  return undefined;
}

/** The few places where the two databases spell the same schema differently. */
export interface Dialect {
  /** A 64-bit integer column (unix seconds and ms, indexes): SQLite's INTEGER, PostgreSQL's BIGINT. */
  readonly int: string;
  /** After a CREATE TABLE's closing parenthesis: SQLite's STRICT (types enforced), or nothing. */
  readonly tableOptions: string;
  /**
   * The insertion order of rows created in the same second: SQLite's implicit rowid, or a
   * PostgreSQL identity column `seq`, which this adds as a first column (with its comma).
   */
  readonly orderColumn: string;
  /** That order as the last key of an index (`, seq`); empty for SQLite, whose indexes end in rowid. */
  readonly orderKey: string;
  /** A byte string column (hashes, log leaves): SQLite's BLOB, PostgreSQL's BYTEA. */
  readonly bytes: string;
}

export const SQLITE_DIALECT: Dialect = { int: 'INTEGER', tableOptions: ' STRICT', orderColumn: '', orderKey: '', bytes: 'BLOB' };

export const POSTGRES_DIALECT: Dialect = {
  int: 'BIGINT',
  tableOptions: '',
  orderColumn: 'seq BIGINT GENERATED ALWAYS AS IDENTITY,',
  orderKey: ', seq',
  bytes: 'BYTEA',
};

/** A statement with `?` placeholders and its values (PostgreSQL's $n are numbered from them). */
export type DataStatement = readonly [sql: string, values: readonly unknown[]];

/** `sql` with its `?` placeholders numbered as PostgreSQL's $1, $2, ... */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export interface Migration {
  version: number;
  sql(dialect: Dialect): string;
  /**
   * Rows the migration derives from existing data, after its DDL and in its transaction: the
   * rows `select` reads become the statements `statements` returns (the same for both dialects).
   */
  data?: { select: string; statements(rows: readonly Row[]): DataStatement[] };
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: ({ int, tableOptions, orderColumn, orderKey }) => `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      )${tableOptions};

      -- The constraint names tell a PostgreSQL unique violation's cause (server/store/cards.postgres.ts).
      CREATE TABLE cards (
        ${orderColumn}
        id TEXT CONSTRAINT cards_id_unique PRIMARY KEY,
        identity TEXT NOT NULL,
        device_id TEXT NOT NULL,
        sign_key TEXT NOT NULL CONSTRAINT cards_sign_key_unique UNIQUE,
        box_key TEXT NOT NULL CONSTRAINT cards_box_key_unique UNIQUE,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        app_signature TEXT NOT NULL,
        app_key_id TEXT NOT NULL,
        created_at ${int} NOT NULL,
        registered_at ${int} NOT NULL,
        revoked_at ${int}
      )${tableOptions};
      CREATE INDEX cards_active ON cards (identity, registered_at${orderKey}) WHERE revoked_at IS NULL;

      CREATE TABLE conversations (
        sid TEXT PRIMARY KEY,
        unique_name TEXT UNIQUE,
        friendly_name TEXT,
        attributes TEXT NOT NULL,
        created_by TEXT NOT NULL,
        date_created_ms ${int} NOT NULL,
        next_message_index ${int} NOT NULL DEFAULT 0
      )${tableOptions};

      CREATE TABLE participants (
        ${orderColumn}
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        identity TEXT NOT NULL,
        date_created_ms ${int} NOT NULL,
        UNIQUE (conversation_sid, identity)
      )${tableOptions};
      CREATE INDEX participants_identity ON participants (identity);

      CREATE TABLE messages (
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        idx ${int} NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        date_created_ms ${int} NOT NULL,
        date_updated_ms ${int},
        UNIQUE (conversation_sid, idx)
      )${tableOptions};

      -- No foreign key to conversations: with Twilio, conversations live at Twilio, not here.
      CREATE TABLE history (
        conversation_sid TEXT NOT NULL,
        message_sid TEXT NOT NULL,
        idx ${int} NOT NULL,
        author TEXT NOT NULL,
        sender_card_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        org_wrap TEXT NOT NULL,
        stored_at_ms ${int} NOT NULL,
        PRIMARY KEY (conversation_sid, message_sid)
      )${tableOptions};
      CREATE INDEX history_order ON history (conversation_sid, idx);
    `,
  },
  {
    version: 2,
    sql: ({ int, tableOptions, orderColumn, orderKey }) => `
      -- New devices waiting for an existing device's approval (NEW_DEVICE_POLICY=approval).
      CREATE TABLE pending_devices (
        ${orderColumn}
        card_id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        device_name TEXT NOT NULL,
        sign_key TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        requested_at ${int} NOT NULL,
        expires_at ${int} NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'rejected'))
      )${tableOptions};
      CREATE INDEX pending_devices_identity ON pending_devices (identity, requested_at${orderKey});
    `,
  },
  {
    version: 3,
    sql: () => `
      -- Participant attributes (the relay's participant.updateAttributes).
      ALTER TABLE participants ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 4,
    sql: ({ int }) => `
      -- Each participant's read horizon (the relay's updateLastReadMessageIndex); NULL: not set.
      ALTER TABLE participants ADD COLUMN last_read_message_index ${int};
    `,
  },
  {
    version: 5,
    sql: ({ int }) => `
      -- The edit counter of the version a history copy holds (0: the original), so that only a
      -- newer version of the message replaces it.
      ALTER TABLE history ADD COLUMN edit_n ${int} NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 6,
    sql: () => `
      -- The id of the OrgKey a history copy's orgWrap is for (server/org-key-ring.ts), so a read
      -- opens it with that key alone and rewrap-history finds the copies of earlier keys. NULL:
      -- stored before this was recorded, by whichever ORG_KEY the server held then.
      ALTER TABLE history ADD COLUMN org_key_id TEXT;
    `,
  },
  {
    version: 7,
    sql: ({ int, tableOptions, orderColumn }) => `
      -- The local relay's media (its stand-in for Twilio's Media Content Service). The bytes are a
      -- file named by the sid under DATA_DIR/media (SQLite) or the large object content_oid
      -- (PostgreSQL; NULL in SQLite). size is NULL while a PostgreSQL upload is in progress.
      CREATE TABLE media (
        ${orderColumn}
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        uploader TEXT NOT NULL,
        filename TEXT,
        content_type TEXT NOT NULL,
        size ${int},
        date_created_ms ${int} NOT NULL,
        message_sid TEXT,
        content_oid ${int}
      )${tableOptions};
      CREATE INDEX media_message ON media (conversation_sid, message_sid) WHERE message_sid IS NOT NULL;
      CREATE INDEX media_unattached ON media (uploader, date_created_ms) WHERE message_sid IS NULL;
      -- The media a message lists, as sent (JSON: [{sid, filename, contentType, size}]); NULL: none.
      ALTER TABLE messages ADD COLUMN media TEXT;
    `,
  },
  {
    version: 8,
    sql: ({ int, bytes, tableOptions }) => `
      -- The card transparency log (docs/PROTOCOL.md 17.6): every card event is one leaf, idx its
      -- place in the log; kind 1 registration, 2 revocation (the leaf's own encoding); leaf the
      -- exact leaf bytes. (identity, chain_seq) is the identity's chain; a card has one event of each kind.
      CREATE TABLE log_events (
        idx ${int} PRIMARY KEY,
        identity TEXT NOT NULL,
        chain_seq ${int} NOT NULL,
        card_id TEXT NOT NULL,
        kind ${int} NOT NULL CHECK (kind IN (1, 2)),
        event_time ${int} NOT NULL,
        leaf ${bytes} NOT NULL,
        UNIQUE (identity, chain_seq),
        UNIQUE (card_id, kind)
      )${tableOptions};
      -- The log's perfect subtrees: the 2^level leaves from idx * 2^level (level 0: leaf hashes).
      CREATE TABLE log_nodes (
        level ${int} NOT NULL,
        idx ${int} NOT NULL,
        hash ${bytes} NOT NULL,
        PRIMARY KEY (level, idx)
      )${tableOptions};
      -- Signed checkpoints, one per tree size; note is the LogKey's signed note alone.
      CREATE TABLE log_checkpoints (
        size ${int} PRIMARY KEY,
        root_hash ${bytes} NOT NULL,
        note TEXT NOT NULL,
        created_at_ms ${int} NOT NULL
      )${tableOptions};
      -- Witness cosignatures of a checkpoint: one signature line per witness key.
      CREATE TABLE log_cosignatures (
        size ${int} NOT NULL REFERENCES log_checkpoints (size),
        key_name TEXT NOT NULL,
        key_id ${int} NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (size, key_name, key_id)
      )${tableOptions};
    `,
    // Cards registered before the log: their events, in the order logBackfill documents.
    data: { select: LOG_BACKFILL_SELECT, statements: logBackfill },
  },
  {
    version: 9,
    sql: ({ int, bytes, tableOptions }) => `
      -- The device proof that authorized a card event (docs/PROTOCOL.md 17.8): kind as in
      -- log_events; the request as its signer signed it (method, path, body), the proof's time
      -- and signature. Written with the card change; events made without a proof have none.
      CREATE TABLE card_authorizations (
        card_id TEXT NOT NULL,
        kind ${int} NOT NULL CHECK (kind IN (1, 2)),
        signer_card_id TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        body ${bytes} NOT NULL,
        proof_time ${int} NOT NULL,
        signature ${bytes} NOT NULL,
        PRIMARY KEY (card_id, kind)
      )${tableOptions};
    `,
  },
];

/** The migrations table itself, created before anything else when missing. */
export const migrationsTable = ({ int, tableOptions }: Dialect): string =>
  `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, applied_at_ms ${int} NOT NULL)${tableOptions}`;

/** The versions not yet applied, in order. */
export function pendingMigrations(applied: Iterable<number>): Migration[] {
  const done = new Set(applied);
  return MIGRATIONS.filter((migration) => !done.has(migration.version));
}

/** Opened with `migrate: false` on tables this release cannot use yet. */
export function migrationsPending(where: string, pending: readonly Migration[]): E2EEError {
  const versions = pending.map((m) => m.version);
  return new E2EEError(
    ErrorCode.STORE_UNAVAILABLE,
    `the store in ${where} lacks migration${versions.length > 1 ? 's' : ''} ${versions.join(', ')} of this release: run migrateStore() (or \`node dist/server/migrate.js\`) first, or open it without migrate: false`,
    { details: { pending: versions } },
  );
}
