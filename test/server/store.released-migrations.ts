/**
 * The migrations exactly as released before the schema was written once for both dialects
 * (server/store/migrations.ts), frozen: a database made by those releases must keep opening.
 * Never edit; test/server/store.schema.test.ts builds databases from them.
 */
export const RELEASED_SQLITE_MIGRATIONS: readonly string[] = [
  `
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
  `
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
  `
      -- Participant attributes (the relay's participant.updateAttributes).
      ALTER TABLE participants ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    `,
];

export const RELEASED_POSTGRES_MIGRATIONS: readonly string[] = [
  `
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
  `
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
  `
      -- Participant attributes (the relay's participant.updateAttributes).
      ALTER TABLE participants ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    `,
];

export const RELEASED_SQLITE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL) STRICT`;

export const RELEASED_POSTGRES_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)`;
