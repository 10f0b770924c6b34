/**
 * The embedded store: one SQLite file in the data directory (better-sqlite3, synchronous).
 *
 * Every method runs to completion synchronously, so within one process nothing interleaves; the
 * write transactions are BEGIN IMMEDIATE so that a second process on the same file waits on the
 * busy timeout instead of failing halfway. WAL with synchronous=FULL: a call that resolved
 * (history acknowledged to a client) survives a power loss, not just a process crash.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { bool, int, required, type Row, text, toCard, toConversation, toHistory, toMessage, toParticipant, toPendingDevice } from './rows.js';
import { clampLimit, groupByIdentity, pageBounds, planRegistration, toRegistrationFacts } from './rules.js';
import type {
  AddPendingDeviceOptions,
  HistoryRecord,
  PendingDeviceRecord,
  RegisterCardOptions,
  RelayMessage,
  RelayParticipant,
  Store,
  StoredCard,
} from './types.js';

type NewMessage = Omit<RelayMessage, 'index' | 'dateUpdatedMs'>;

export interface SqliteStoreOptions {
  /** Directory of the database file, created when missing. Default `./.data`. */
  dataDir?: string;
  /** File name inside dataDir, or ':memory:' (tests). Default `twilio-e2ee.sqlite`. */
  filename?: string;
}

export const SQLITE_FILENAME = 'twilio-e2ee.sqlite';
const BUSY_TIMEOUT_MS = 5_000;

/** Applied in order at open; a version is never edited once released, only followed by a new one. */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;

      -- rowid gives the registration order among cards registered in the same second.
      CREATE TABLE cards (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        device_id TEXT NOT NULL,
        sign_key TEXT NOT NULL UNIQUE,
        box_key TEXT NOT NULL UNIQUE,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        app_signature TEXT NOT NULL,
        app_key_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        registered_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
      CREATE INDEX cards_active ON cards (identity, registered_at) WHERE revoked_at IS NULL;

      CREATE TABLE conversations (
        sid TEXT PRIMARY KEY,
        unique_name TEXT UNIQUE,
        friendly_name TEXT,
        attributes TEXT NOT NULL,
        created_by TEXT NOT NULL,
        date_created_ms INTEGER NOT NULL,
        next_message_index INTEGER NOT NULL DEFAULT 0
      ) STRICT;

      CREATE TABLE participants (
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        identity TEXT NOT NULL,
        date_created_ms INTEGER NOT NULL,
        UNIQUE (conversation_sid, identity)
      ) STRICT;
      CREATE INDEX participants_identity ON participants (identity);

      CREATE TABLE messages (
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        idx INTEGER NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        date_created_ms INTEGER NOT NULL,
        date_updated_ms INTEGER,
        UNIQUE (conversation_sid, idx)
      ) STRICT;

      -- No foreign key to conversations: with Twilio, conversations live at Twilio, not here.
      CREATE TABLE history (
        conversation_sid TEXT NOT NULL,
        message_sid TEXT NOT NULL,
        idx INTEGER NOT NULL,
        author TEXT NOT NULL,
        sender_card_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        org_wrap TEXT NOT NULL,
        stored_at_ms INTEGER NOT NULL,
        PRIMARY KEY (conversation_sid, message_sid)
      ) STRICT;
      CREATE INDEX history_order ON history (conversation_sid, idx);
    `,
  },
  {
    version: 2,
    sql: `
      -- New devices waiting for an existing device's approval (NEW_DEVICE_POLICY=approval).
      CREATE TABLE pending_devices (
        card_id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        device_name TEXT NOT NULL,
        sign_key TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'rejected'))
      ) STRICT;
      CREATE INDEX pending_devices_identity ON pending_devices (identity, requested_at);
    `,
  },
  {
    version: 3,
    sql: `
      -- Participant attributes (the relay's participant.updateAttributes).
      ALTER TABLE participants ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    `,
  },
];

const MIGRATION_SQL = {
  createTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT`,
  appliedVersions: 'SELECT version FROM schema_migrations',
  record: 'INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)',
} as const;

/** Every statement the store runs, prepared once at open. */
const SQL = {
  ping: 'SELECT 1',
  getSetting: 'SELECT value FROM settings WHERE key = ?',
  insertSetting: 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING',

  registrationFacts: `SELECT
      EXISTS (SELECT 1 FROM cards WHERE id = @id) AS id_taken,
      EXISTS (SELECT 1 FROM cards WHERE sign_key = @signKey OR box_key = @boxKey) AS key_taken,
      (SELECT count(*) FROM cards WHERE identity = @identity AND revoked_at IS NULL) AS active_count,
      EXISTS (SELECT 1 FROM cards WHERE id = @supersedes AND identity = @identity AND revoked_at IS NULL)
        AS supersedable`,
  supersede: 'UPDATE cards SET revoked_at = ? WHERE id = ?',
  insertCard: `INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature,
      app_signature, app_key_id, created_at, registered_at, revoked_at)
    VALUES (@id, @identity, @deviceId, @signKey, @boxKey, @snapshot, @selfSignature,
      @appSignature, @appKeyId, @createdAt, @registeredAt, @revokedAt)`,
  getCard: 'SELECT * FROM cards WHERE id = ?',
  activeCards: `SELECT * FROM cards
    WHERE identity IN (SELECT value FROM json_each(?)) AND revoked_at IS NULL
    ORDER BY registered_at, rowid`,
  revokeCard: 'UPDATE cards SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING *',

  dropStalePending: `DELETE FROM pending_devices
    WHERE identity = @identity AND (expires_at <= @now OR (sign_key = @signKey AND card_id <> @cardId))`,
  countPending: `SELECT count(*) AS n FROM pending_devices WHERE identity = ? AND status = 'pending'`,
  insertPending: `INSERT INTO pending_devices (card_id, identity, device_name, sign_key, snapshot, self_signature,
      requested_at, expires_at, status)
    VALUES (@cardId, @identity, @deviceName, @signKey, @snapshot, @selfSignature, @requestedAt, @expiresAt, @status)`,
  getPending: 'SELECT * FROM pending_devices WHERE card_id = ? AND expires_at > ?',
  pendingOf: `SELECT * FROM pending_devices WHERE identity = ? AND status = 'pending' AND expires_at > ?
    ORDER BY requested_at, rowid`,
  takePending: `DELETE FROM pending_devices
    WHERE card_id = ? AND identity = ? AND status = 'pending' AND expires_at > ? RETURNING *`,
  rejectPending: `UPDATE pending_devices SET status = 'rejected'
    WHERE card_id = ? AND identity = ? AND status = 'pending' AND expires_at > ? RETURNING *`,

  insertConversation: `INSERT INTO conversations (sid, unique_name, friendly_name, attributes, created_by, date_created_ms)
    VALUES (@sid, @uniqueName, @friendlyName, @attributes, @createdBy, @dateCreatedMs)
    ON CONFLICT DO NOTHING RETURNING *`,
  // A sid wins over another conversation's uniqueName that happens to equal it.
  getConversation: `SELECT * FROM conversations WHERE sid = @key OR unique_name = @key
    ORDER BY sid = @key DESC LIMIT 1`,
  conversationsOf: `SELECT c.* FROM conversations c JOIN participants p ON p.conversation_sid = c.sid
    WHERE p.identity = ? ORDER BY c.date_created_ms, c.sid`,

  insertParticipant: `INSERT INTO participants (sid, conversation_sid, identity, attributes, date_created_ms)
    VALUES (@sid, @conversationSid, @identity, @attributes, @dateCreatedMs)
    ON CONFLICT (conversation_sid, identity) DO NOTHING RETURNING *`,
  getParticipant: 'SELECT * FROM participants WHERE conversation_sid = ? AND identity = ?',
  removeParticipant: 'DELETE FROM participants WHERE conversation_sid = ? AND identity = ? RETURNING *',
  participants: 'SELECT * FROM participants WHERE conversation_sid = ? ORDER BY date_created_ms, rowid',
  isParticipant: 'SELECT EXISTS (SELECT 1 FROM participants WHERE conversation_sid = ? AND identity = ?) AS yes',
  updateParticipantAttributes: 'UPDATE participants SET attributes = ? WHERE conversation_sid = ? AND identity = ? RETURNING *',

  nextMessageIndex: `UPDATE conversations SET next_message_index = next_message_index + 1
    WHERE sid = ? RETURNING next_message_index - 1 AS idx`,
  insertMessage: `INSERT INTO messages (sid, conversation_sid, idx, author, body, attributes, date_created_ms)
    VALUES (@sid, @conversationSid, @idx, @author, @body, @attributes, @dateCreatedMs) RETURNING *`,
  getMessage: 'SELECT * FROM messages WHERE conversation_sid = ? AND sid = ?',
  messagesForward: `SELECT * FROM messages WHERE conversation_sid = ? AND idx >= ? ORDER BY idx LIMIT ?`,
  messagesBackwards: `SELECT * FROM (
      SELECT * FROM messages WHERE conversation_sid = ? AND idx <= ? ORDER BY idx DESC LIMIT ?
    ) ORDER BY idx`,
  updateMessageBody: `UPDATE messages SET body = ?, date_updated_ms = ?
    WHERE conversation_sid = ? AND sid = ? RETURNING *`,

  insertHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms)
    VALUES (@conversationSid, @messageSid, @index, @author, @senderCardId, @envelope, @orgWrap, @storedAtMs)
    ON CONFLICT (conversation_sid, message_sid) DO NOTHING`,
  history: `SELECT * FROM history WHERE conversation_sid = ? AND idx > ?
    ORDER BY idx, message_sid LIMIT ?`,
} as const;

function openDatabase(options: SqliteStoreOptions): Database.Database {
  if (options.filename === ':memory:') return new Database(':memory:', { timeout: BUSY_TIMEOUT_MS });
  const dataDir = options.dataDir ?? './.data';
  mkdirSync(dataDir, { recursive: true });
  return new Database(join(dataDir, options.filename ?? SQLITE_FILENAME), { timeout: BUSY_TIMEOUT_MS });
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(MIGRATION_SQL.createTable);
    // Read inside the write lock: another process may have migrated while this one waited.
    const applied = new Set(db.prepare(MIGRATION_SQL.appliedVersions).pluck().all());
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      db.prepare(MIGRATION_SQL.record).run(migration.version, Date.now());
    }
  }).immediate();
}

export async function openSqliteStore(options: SqliteStoreOptions = {}): Promise<Store> {
  const db = openDatabase(options);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return sqliteStore(db);
  } catch (err) {
    db.close();
    throw err;
  }
}

function sqliteStore(db: Database.Database): Store {
  const stmt = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Record<
    keyof typeof SQL,
    Database.Statement
  >;
  const one = (statement: Database.Statement, ...params: unknown[]): Row | undefined =>
    statement.get(...params) as Row | undefined;
  const must = (statement: Database.Statement, ...params: unknown[]): Row => required(one(statement, ...params));
  const all = (statement: Database.Statement, ...params: unknown[]): Row[] => statement.all(...params) as Row[];

  // IMMEDIATE takes the write lock up front: no read-then-upgrade deadlock with another process.
  const immediate = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const transaction = db.transaction(fn);
    return (...args: A): R => transaction.immediate(...args);
  };

  /**
   * Group commit for the durable writes of the hot paths (card registrations, relay messages,
   * history backups): the writes requested in one turn of the event loop run in one IMMEDIATE
   * transaction, each in its own savepoint (a failing one rolls back only itself), and share one
   * fsync, most of a write's cost under synchronous=FULL. No write resolves before its commit.
   */
  type Queued = { run(): unknown; resolve(value: unknown): void; reject(error: unknown): void };
  let commitQueue: Queued[] = [];
  const commitBatch = db.transaction((items: Queued[]) =>
    items.map((item) => {
      try {
        return { ok: true as const, value: item.run() };
      } catch (error) {
        return { ok: false as const, error };
      }
    }),
  );
  const flushCommits = () => {
    const items = commitQueue;
    commitQueue = [];
    if (items.length === 0 || !db.open) {
      for (const item of items) item.reject(new Error('store: closed'));
      return;
    }
    let results: ReturnType<typeof commitBatch>;
    try {
      results = commitBatch.immediate(items);
    } catch (err) {
      for (const item of items) item.reject(err); // the commit itself failed: nothing was written
      return;
    }
    results.forEach((r, i) => (r.ok ? items[i]!.resolve(r.value) : items[i]!.reject(r.error)));
  };
  const grouped = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const savepoint = db.transaction(fn); // nested in the batch's transaction: a savepoint
    return (...args: A): Promise<R> =>
      new Promise((resolve, reject) => {
        commitQueue.push({ run: () => savepoint(...args), resolve: resolve as (value: unknown) => void, reject });
        if (commitQueue.length === 1) setImmediate(flushCommits);
      });
  };

  const putSettingIfAbsent = immediate((key: string, value: string): string => {
    stmt.insertSetting.run(key, value);
    return text(must(stmt.getSetting, key), 'value');
  });

  const registerCard = grouped((card: StoredCard, options: RegisterCardOptions) => {
    const facts = toRegistrationFacts(must(stmt.registrationFacts, { ...card, supersedes: options.supersedes ?? null }));
    const result = planRegistration(facts, options);
    if (!result.ok) return result;
    if (result.superseded !== null) stmt.supersede.run(options.now, result.superseded);
    stmt.insertCard.run(card);
    return result;
  });

  const addPendingDevice = immediate((record: PendingDeviceRecord, options: AddPendingDeviceOptions) => {
    stmt.dropStalePending.run({ identity: record.identity, now: options.now, signKey: record.signKey, cardId: record.cardId });
    const existing = one(stmt.getPending, record.cardId, options.now);
    if (existing) return toPendingDevice(existing);
    if (int(must(stmt.countPending, record.identity), 'n') >= options.maxPerIdentity) return 'TOO_MANY_PENDING' as const;
    stmt.insertPending.run(record);
    return record;
  });

  const addParticipant = immediate((participant: RelayParticipant) => {
    const inserted = one(stmt.insertParticipant, participant);
    if (inserted) return { participant: toParticipant(inserted), created: true };
    const existing = must(stmt.getParticipant, participant.conversationSid, participant.identity);
    return { participant: toParticipant(existing), created: false };
  });

  const appendMessage = grouped((message: NewMessage) => {
    const next = one(stmt.nextMessageIndex, message.conversationSid);
    if (!next) throw new Error(`store: unknown conversation ${message.conversationSid}`);
    return toMessage(must(stmt.insertMessage, { ...message, idx: next.idx }));
  });

  const putHistory = grouped((record: HistoryRecord): 'created' | 'exists' => (stmt.insertHistory.run(record).changes === 1 ? 'created' : 'exists'));

  return {
    kind: 'sqlite',

    async ping() {
      one(stmt.ping);
    },
    async close() {
      flushCommits(); // writes already requested are committed, not dropped
      if (db.open) db.close();
    },

    async getSetting(key) {
      const row = one(stmt.getSetting, key);
      return row ? text(row, 'value') : null;
    },
    async putSettingIfAbsent(key, value) {
      return putSettingIfAbsent(key, value);
    },

    async registerCard(card, options) {
      return registerCard(card, options);
    },
    async getCard(id) {
      const row = one(stmt.getCard, id);
      return row ? toCard(row) : null;
    },
    async activeCards(identities) {
      const rows = identities.length === 0 ? [] : all(stmt.activeCards, JSON.stringify(identities));
      return groupByIdentity(identities, rows.map(toCard));
    },
    async revokeCard(id, now) {
      const row = one(stmt.revokeCard, now, id);
      return row ? toCard(row) : null;
    },

    async addPendingDevice(record, options) {
      return addPendingDevice(record, options);
    },
    async getPendingDevice(cardId, now) {
      const row = one(stmt.getPending, cardId, now);
      return row ? toPendingDevice(row) : null;
    },
    async pendingDevices(identity, now) {
      return all(stmt.pendingOf, identity, now).map(toPendingDevice);
    },
    async takePendingDevice(cardId, identity, now) {
      const row = one(stmt.takePending, cardId, identity, now);
      return row ? toPendingDevice(row) : null;
    },
    async rejectPendingDevice(cardId, identity, now) {
      const row = one(stmt.rejectPending, cardId, identity, now);
      return row ? toPendingDevice(row) : null;
    },

    async createConversation(conversation) {
      const row = one(stmt.insertConversation, conversation);
      return row ? toConversation(row) : null;
    },
    async getConversation(sidOrUniqueName) {
      const row = one(stmt.getConversation, { key: sidOrUniqueName });
      return row ? toConversation(row) : null;
    },
    async conversationsOf(identity) {
      return all(stmt.conversationsOf, identity).map(toConversation);
    },
    async addParticipant(participant) {
      return addParticipant({ ...participant, attributes: participant.attributes ?? '{}' });
    },
    async removeParticipant(conversationSid, identity) {
      const row = one(stmt.removeParticipant, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },
    async participants(conversationSid) {
      return all(stmt.participants, conversationSid).map(toParticipant);
    },
    async isParticipant(conversationSid, identity) {
      return bool(must(stmt.isParticipant, conversationSid, identity), 'yes');
    },
    async updateParticipantAttributes(conversationSid, identity, attributes) {
      const row = one(stmt.updateParticipantAttributes, attributes, conversationSid, identity);
      return row ? toParticipant(row) : null;
    },
    async appendMessage(message) {
      return appendMessage(message);
    },
    async getMessage(conversationSid, messageSid) {
      const row = one(stmt.getMessage, conversationSid, messageSid);
      return row ? toMessage(row) : null;
    },
    async messages(conversationSid, query) {
      const { backwards, anchor, limit } = pageBounds(query);
      return all(backwards ? stmt.messagesBackwards : stmt.messagesForward, conversationSid, anchor, limit).map(toMessage);
    },
    async updateMessageBody(conversationSid, messageSid, body, nowMs) {
      const row = one(stmt.updateMessageBody, body, nowMs, conversationSid, messageSid);
      return row ? toMessage(row) : null;
    },

    async putHistory(record) {
      return putHistory(record);
    },
    async history(conversationSid, after, limit) {
      return all(stmt.history, conversationSid, after, clampLimit(limit)).map(toHistory);
    },
  };
}
