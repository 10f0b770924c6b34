/**
 * The shared store for several stateless server instances: PostgreSQL through a pg Pool.
 *
 * Races between processes are settled in the database: migrations under an advisory lock,
 * card registration under a per-identity advisory lock (the active-card limit) plus unique
 * indexes (ids and keys across identities), message indexes from a per-conversation counter row
 * bumped in the same statement as the insert, idempotent writes with ON CONFLICT DO NOTHING.
 */
import pg from 'pg';
import { bool, int, required, type Row, text, toCard, toConversation, toHistory, toMessage, toParticipant, toPendingDevice } from './rows.js';
import { clampLimit, groupByIdentity, pageBounds, planRegistration, toRegistrationFacts } from './rules.js';
import type { RegisterCardResult, Store, StoredCard } from './types.js';

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

/** Applied in order at open; a version is never edited once released, only followed by a new one. */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );

      -- seq gives the registration order among cards registered in the same second.
      CREATE TABLE cards (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        id TEXT CONSTRAINT cards_id_unique PRIMARY KEY,
        identity TEXT NOT NULL,
        device_id TEXT NOT NULL,
        sign_key TEXT NOT NULL CONSTRAINT cards_sign_key_unique UNIQUE,
        box_key TEXT NOT NULL CONSTRAINT cards_box_key_unique UNIQUE,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        app_signature TEXT NOT NULL,
        app_key_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        registered_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE INDEX cards_active ON cards (identity, registered_at, seq) WHERE revoked_at IS NULL;

      CREATE TABLE conversations (
        sid TEXT PRIMARY KEY,
        unique_name TEXT UNIQUE,
        friendly_name TEXT,
        attributes TEXT NOT NULL,
        created_by TEXT NOT NULL,
        date_created_ms BIGINT NOT NULL,
        next_message_index BIGINT NOT NULL DEFAULT 0
      );

      CREATE TABLE participants (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        identity TEXT NOT NULL,
        date_created_ms BIGINT NOT NULL,
        UNIQUE (conversation_sid, identity)
      );
      CREATE INDEX participants_identity ON participants (identity);

      CREATE TABLE messages (
        sid TEXT PRIMARY KEY,
        conversation_sid TEXT NOT NULL REFERENCES conversations (sid),
        idx BIGINT NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        date_created_ms BIGINT NOT NULL,
        date_updated_ms BIGINT,
        UNIQUE (conversation_sid, idx)
      );

      -- No foreign key to conversations: with Twilio, conversations live at Twilio, not here.
      CREATE TABLE history (
        conversation_sid TEXT NOT NULL,
        message_sid TEXT NOT NULL,
        idx BIGINT NOT NULL,
        author TEXT NOT NULL,
        sender_card_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        org_wrap TEXT NOT NULL,
        stored_at_ms BIGINT NOT NULL,
        PRIMARY KEY (conversation_sid, message_sid)
      );
      CREATE INDEX history_order ON history (conversation_sid, idx);
    `,
  },
  {
    version: 2,
    sql: `
      -- New devices waiting for an existing device's approval (NEW_DEVICE_POLICY=approval).
      CREATE TABLE pending_devices (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        card_id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        device_name TEXT NOT NULL,
        sign_key TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        self_signature TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'rejected'))
      );
      CREATE INDEX pending_devices_identity ON pending_devices (identity, requested_at, seq);
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
  // Database-wide (not per schema): harmless, migrations are short and run once per process start.
  lock: `SELECT pg_advisory_xact_lock(hashtext('twilio-e2ee:migrations'))`,
  createSchema: (schema: string) => `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`,
  createTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)`,
  appliedVersions: 'SELECT version FROM schema_migrations',
  record: 'INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)',
} as const;

/** Every statement the store runs. */
const SQL = {
  ping: 'SELECT 1',
  getSetting: 'SELECT value FROM settings WHERE key = $1',
  insertSetting: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value',

  // Two-key form: its own lock space, apart from the one-key migration lock.
  lockIdentity: `SELECT pg_advisory_xact_lock(hashtext('twilio-e2ee:cards'), hashtext($1))`,
  registrationFacts: `SELECT
      EXISTS (SELECT 1 FROM cards WHERE id = $1) AS id_taken,
      EXISTS (SELECT 1 FROM cards WHERE sign_key = $2 OR box_key = $3) AS key_taken,
      (SELECT count(*) FROM cards WHERE identity = $4 AND revoked_at IS NULL) AS active_count,
      EXISTS (SELECT 1 FROM cards WHERE id = $5 AND identity = $4 AND revoked_at IS NULL) AS supersedable`,
  supersede: 'UPDATE cards SET revoked_at = $1 WHERE id = $2',
  insertCard: `INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature,
      app_signature, app_key_id, created_at, registered_at, revoked_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
  getCard: 'SELECT * FROM cards WHERE id = $1',
  activeCards: `SELECT * FROM cards WHERE identity = ANY ($1::text[]) AND revoked_at IS NULL
    ORDER BY registered_at, seq`,
  revokeCard: 'UPDATE cards SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING *',

  dropStalePending: `DELETE FROM pending_devices
    WHERE identity = $1 AND (expires_at <= $2 OR (sign_key = $3 AND card_id <> $4))`,
  countPending: `SELECT count(*) AS n FROM pending_devices WHERE identity = $1 AND status = 'pending'`,
  insertPending: `INSERT INTO pending_devices (card_id, identity, device_name, sign_key, snapshot, self_signature,
      requested_at, expires_at, status)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
  getPending: 'SELECT * FROM pending_devices WHERE card_id = $1 AND expires_at > $2',
  pendingOf: `SELECT * FROM pending_devices WHERE identity = $1 AND status = 'pending' AND expires_at > $2
    ORDER BY requested_at, seq`,
  takePending: `DELETE FROM pending_devices
    WHERE card_id = $1 AND identity = $2 AND status = 'pending' AND expires_at > $3 RETURNING *`,
  rejectPending: `UPDATE pending_devices SET status = 'rejected'
    WHERE card_id = $1 AND identity = $2 AND status = 'pending' AND expires_at > $3 RETURNING *`,

  insertConversation: `INSERT INTO conversations (sid, unique_name, friendly_name, attributes, created_by, date_created_ms)
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *`,
  // A sid wins over another conversation's uniqueName that happens to equal it.
  getConversation: `SELECT * FROM conversations WHERE sid = $1 OR unique_name = $1
    ORDER BY sid = $1 DESC LIMIT 1`,
  conversationsOf: `SELECT c.* FROM conversations c JOIN participants p ON p.conversation_sid = c.sid
    WHERE p.identity = $1 ORDER BY c.date_created_ms, c.sid`,

  insertParticipant: `INSERT INTO participants (sid, conversation_sid, identity, attributes, date_created_ms)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_sid, identity) DO NOTHING RETURNING *`,
  getParticipant: 'SELECT * FROM participants WHERE conversation_sid = $1 AND identity = $2',
  removeParticipant: 'DELETE FROM participants WHERE conversation_sid = $1 AND identity = $2 RETURNING *',
  participants: 'SELECT * FROM participants WHERE conversation_sid = $1 ORDER BY date_created_ms, seq',
  isParticipant: 'SELECT EXISTS (SELECT 1 FROM participants WHERE conversation_sid = $1 AND identity = $2) AS yes',
  updateParticipantAttributes: 'UPDATE participants SET attributes = $3 WHERE conversation_sid = $1 AND identity = $2 RETURNING *',

  // One statement: the counter row's lock orders concurrent appends, and a failed insert rolls the
  // counter back with it, so indexes stay gap-free.
  appendMessage: `WITH next AS (
      UPDATE conversations SET next_message_index = next_message_index + 1
      WHERE sid = $1 RETURNING next_message_index - 1 AS idx
    )
    INSERT INTO messages (sid, conversation_sid, idx, author, body, attributes, date_created_ms)
    SELECT $2, $1, idx, $3, $4, $5, $6 FROM next
    RETURNING *`,
  getMessage: 'SELECT * FROM messages WHERE conversation_sid = $1 AND sid = $2',
  messagesForward: 'SELECT * FROM messages WHERE conversation_sid = $1 AND idx >= $2 ORDER BY idx LIMIT $3',
  messagesBackwards: `SELECT * FROM (
      SELECT * FROM messages WHERE conversation_sid = $1 AND idx <= $2 ORDER BY idx DESC LIMIT $3
    ) page ORDER BY idx`,
  updateMessageBody: `UPDATE messages SET body = $1, date_updated_ms = $2
    WHERE conversation_sid = $3 AND sid = $4 RETURNING *`,

  insertHistory: `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope,
      org_wrap, stored_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (conversation_sid, message_sid) DO NOTHING`,
  history: 'SELECT * FROM history WHERE conversation_sid = $1 AND idx > $2 ORDER BY idx, message_sid LIMIT $3',
} as const;

/** Unique indexes of cards that a concurrent registration of another identity can hit first. */
const CARD_CONSTRAINTS: Record<string, 'CARD_EXISTS' | 'KEY_IN_USE'> = {
  cards_id_unique: 'CARD_EXISTS',
  cards_sign_key_unique: 'KEY_IN_USE',
  cards_box_key_unique: 'KEY_IN_USE',
};
const UNIQUE_VIOLATION = '23505';

function cardValues(card: StoredCard): unknown[] {
  return [
    card.id, card.identity, card.deviceId, card.signKey, card.boxKey, card.snapshot, card.selfSignature,
    card.appSignature, card.appKeyId, card.createdAt, card.registeredAt, card.revokedAt,
  ];
}

/** BEGIN/COMMIT on one pooled connection. */
async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no pool error listener: a connection dropped between two statements
  // would crash the process. Ignoring the event is enough, the next statement rejects.
  const ignore = (): void => {};
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr;
    });
    throw err;
  } finally {
    client.off('error', ignore);
    // A connection that could not roll back is destroyed, not returned to the pool.
    client.release(broken);
  }
}

async function migrate(pool: pg.Pool, schema: string | undefined): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query(MIGRATION_SQL.lock);
    if (schema !== undefined) await client.query(MIGRATION_SQL.createSchema(schema));
    await client.query(MIGRATION_SQL.createTable);
    const applied = new Set((await client.query<Row>(MIGRATION_SQL.appliedVersions)).rows.map((r) => int(r, 'version')));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query(MIGRATION_SQL.record, [migration.version, Date.now()]);
    }
  });
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
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
  try {
    await migrate(pool, schema);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return postgresStore(pool);
}

function postgresStore(pool: pg.Pool): Store {
  let closed = false;
  const rows = async (sql: string, values: unknown[] = []): Promise<Row[]> => (await pool.query<Row>(sql, values)).rows;
  const first = async (sql: string, values: unknown[] = []): Promise<Row | undefined> => (await rows(sql, values))[0];

  return {
    kind: 'postgres',

    async ping() {
      await pool.query(SQL.ping);
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },

    async getSetting(key) {
      const row = await first(SQL.getSetting, [key]);
      return row ? text(row, 'value') : null;
    },
    async putSettingIfAbsent(key, value) {
      // ON CONFLICT waits for a concurrent first writer to commit, so the read after it finds the row.
      const row = (await first(SQL.insertSetting, [key, value])) ?? (await first(SQL.getSetting, [key]));
      return text(required(row), 'value');
    },

    async registerCard(card, options): Promise<RegisterCardResult> {
      try {
        return await transaction(pool, async (client) => {
          await client.query(SQL.lockIdentity, [card.identity]);
          const facts = await client.query<Row>(SQL.registrationFacts, [
            card.id, card.signKey, card.boxKey, card.identity, options.supersedes ?? null,
          ]);
          const result = planRegistration(toRegistrationFacts(required(facts.rows[0])), options);
          if (!result.ok) return result;
          if (result.superseded !== null) await client.query(SQL.supersede, [options.now, result.superseded]);
          await client.query(SQL.insertCard, cardValues(card));
          return result;
        });
      } catch (err) {
        // The identity lock does not cover a registration of another identity taking the same id
        // or key between our read and our insert; the unique index catches it.
        if (err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION && err.constraint !== undefined) {
          const reason = CARD_CONSTRAINTS[err.constraint];
          if (reason) return { ok: false, reason };
        }
        throw err;
      }
    },
    async getCard(id) {
      const row = await first(SQL.getCard, [id]);
      return row ? toCard(row) : null;
    },
    async activeCards(identities) {
      const found = identities.length === 0 ? [] : await rows(SQL.activeCards, [identities]);
      return groupByIdentity(identities, found.map(toCard));
    },
    async revokeCard(id, now) {
      const row = await first(SQL.revokeCard, [now, id]);
      return row ? toCard(row) : null;
    },

    async addPendingDevice(record, options) {
      try {
        return await transaction(pool, async (client) => {
          await client.query(SQL.lockIdentity, [record.identity]);
          await client.query(SQL.dropStalePending, [record.identity, options.now, record.signKey, record.cardId]);
          const existing = (await client.query<Row>(SQL.getPending, [record.cardId, options.now])).rows[0];
          if (existing) return toPendingDevice(existing);
          const count = int(required((await client.query<Row>(SQL.countPending, [record.identity])).rows[0]), 'n');
          if (count >= options.maxPerIdentity) return 'TOO_MANY_PENDING' as const;
          await client.query(SQL.insertPending, [
            record.cardId, record.identity, record.deviceName, record.signKey, record.snapshot, record.selfSignature,
            record.requestedAt, record.expiresAt, record.status,
          ]);
          return record;
        });
      } catch (err) {
        // The same card id asked for another identity at the same moment (the lock is per identity).
        if (err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION) {
          const row = await first(SQL.getPending, [record.cardId, options.now]);
          if (row) return toPendingDevice(row);
        }
        throw err;
      }
    },
    async getPendingDevice(cardId, now) {
      const row = await first(SQL.getPending, [cardId, now]);
      return row ? toPendingDevice(row) : null;
    },
    async pendingDevices(identity, now) {
      return (await rows(SQL.pendingOf, [identity, now])).map(toPendingDevice);
    },
    async takePendingDevice(cardId, identity, now) {
      const row = await first(SQL.takePending, [cardId, identity, now]);
      return row ? toPendingDevice(row) : null;
    },
    async rejectPendingDevice(cardId, identity, now) {
      const row = await first(SQL.rejectPending, [cardId, identity, now]);
      return row ? toPendingDevice(row) : null;
    },

    async createConversation(c) {
      const row = await first(SQL.insertConversation, [
        c.sid, c.uniqueName, c.friendlyName, c.attributes, c.createdBy, c.dateCreatedMs,
      ]);
      return row ? toConversation(row) : null;
    },
    async getConversation(sidOrUniqueName) {
      const row = await first(SQL.getConversation, [sidOrUniqueName]);
      return row ? toConversation(row) : null;
    },
    async conversationsOf(identity) {
      return (await rows(SQL.conversationsOf, [identity])).map(toConversation);
    },
    async addParticipant(p) {
      // Insert-or-read, retried: a concurrent remove can delete the row between the two statements.
      for (;;) {
        const inserted = await first(SQL.insertParticipant, [p.sid, p.conversationSid, p.identity, p.attributes ?? '{}', p.dateCreatedMs]);
        if (inserted) return { participant: toParticipant(inserted), created: true };
        const existing = await first(SQL.getParticipant, [p.conversationSid, p.identity]);
        if (existing) return { participant: toParticipant(existing), created: false };
      }
    },
    async removeParticipant(conversationSid, identity) {
      const row = await first(SQL.removeParticipant, [conversationSid, identity]);
      return row ? toParticipant(row) : null;
    },
    async participants(conversationSid) {
      return (await rows(SQL.participants, [conversationSid])).map(toParticipant);
    },
    async isParticipant(conversationSid, identity) {
      const row = await first(SQL.isParticipant, [conversationSid, identity]);
      return row !== undefined && bool(row, 'yes');
    },
    async updateParticipantAttributes(conversationSid, identity, attributes) {
      const row = await first(SQL.updateParticipantAttributes, [conversationSid, identity, attributes]);
      return row ? toParticipant(row) : null;
    },
    async appendMessage(m) {
      const row = await first(SQL.appendMessage, [m.conversationSid, m.sid, m.author, m.body, m.attributes, m.dateCreatedMs]);
      if (row === undefined) throw new Error(`store: unknown conversation ${m.conversationSid}`);
      return toMessage(row);
    },
    async getMessage(conversationSid, messageSid) {
      const row = await first(SQL.getMessage, [conversationSid, messageSid]);
      return row ? toMessage(row) : null;
    },
    async messages(conversationSid, query) {
      const { backwards, anchor, limit } = pageBounds(query);
      return (await rows(backwards ? SQL.messagesBackwards : SQL.messagesForward, [conversationSid, anchor, limit])).map(
        toMessage,
      );
    },
    async updateMessageBody(conversationSid, messageSid, body, nowMs) {
      const row = await first(SQL.updateMessageBody, [body, nowMs, conversationSid, messageSid]);
      return row ? toMessage(row) : null;
    },

    async putHistory(r) {
      const result = await pool.query(SQL.insertHistory, [
        r.conversationSid, r.messageSid, r.index, r.author, r.senderCardId, r.envelope, r.orgWrap, r.storedAtMs,
      ]);
      return result.rowCount === 1 ? 'created' : 'exists';
    },
    async history(conversationSid, after, limit) {
      return (await rows(SQL.history, [conversationSid, after, clampLimit(limit)])).map(toHistory);
    },
  };
}
