/**
 * CardStore on PostgreSQL. Registrations and device requests run under a per-identity advisory
 * lock (the active-card and pending-request limits); the unique constraints catch a concurrent
 * registration of another identity taking the same id or key. Every card change appends its log
 * event in its transaction (log.postgres.ts).
 */
import { recordAuthorization } from './authorizations.postgres.js';
import { type PostgresConnection, violatedUniqueConstraint } from './connection.postgres.js';
import type { AppendEvent } from './log.postgres.js';
import { int, required, type Row, text, toCard, toPendingDevice } from './rows.js';
import { groupByIdentity, planRegistration, toRegistrationFacts } from './rules.js';
import type { AddPendingDeviceOptions, CardAuthorization, CardStore, PendingDeviceRecord, RegisterCardOptions, RegisterCardResult, StoredCard } from './types.js';

const SQL = {
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
  revokeCard: 'UPDATE cards SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING *',

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
} as const;

/** Unique constraints of cards (server/store/migrations.ts) that a concurrent registration of another identity can hit first. */
const CARD_CONSTRAINTS = new Map<string | undefined, 'CARD_EXISTS' | 'KEY_IN_USE'>([
  ['cards_id_unique', 'CARD_EXISTS'],
  ['cards_sign_key_unique', 'KEY_IN_USE'],
  ['cards_box_key_unique', 'KEY_IN_USE'],
]);

function cardValues(card: StoredCard): unknown[] {
  return [
    card.id, card.identity, card.deviceId, card.signKey, card.boxKey, card.snapshot, card.selfSignature,
    card.appSignature, card.appKeyId, card.createdAt, card.registeredAt, card.revokedAt,
  ];
}

function pendingValues(record: PendingDeviceRecord): unknown[] {
  return [
    record.cardId, record.identity, record.deviceName, record.signKey, record.snapshot, record.selfSignature,
    record.requestedAt, record.expiresAt, record.status,
  ];
}

export function postgresCards({ rows, first, transaction }: PostgresConnection, appendEvent: AppendEvent): CardStore {
  const registerCard = (card: StoredCard, options: RegisterCardOptions): Promise<RegisterCardResult> =>
    transaction(async (client) => {
      await client.query(SQL.lockIdentity, [card.identity]);
      const facts = await client.query<Row>(SQL.registrationFacts, [
        card.id, card.signKey, card.boxKey, card.identity, options.supersedes ?? null,
      ]);
      const result = planRegistration(toRegistrationFacts(required(facts.rows[0])), options);
      if (!result.ok) return result;
      if (result.superseded !== null) await client.query(SQL.supersede, [options.now, result.superseded]);
      await client.query(SQL.insertCard, cardValues(card));
      if (options.authorization) await recordAuthorization(client, options.authorization, card.id, result.superseded);
      // The events last: the first append takes the log's lock, which every instance's card changes wait for until the commit.
      if (result.superseded !== null) await appendEvent(client, 'revocation', card.identity, result.superseded, options.now);
      await appendEvent(client, 'registration', card.identity, card.id, card.registeredAt);
      return result;
    });

  // A card revoked already keeps its time and gets no second event.
  const revokeCard = (id: string, now: number, authorization?: CardAuthorization) =>
    transaction(async (client) => {
      const revoked = (await client.query<Row>(SQL.revokeCard, [now, id])).rows[0];
      if (revoked && authorization) await recordAuthorization(client, authorization, null, id);
      if (revoked) await appendEvent(client, 'revocation', text(revoked, 'identity'), id, now);
      const row = revoked ?? (await client.query<Row>(SQL.getCard, [id])).rows[0];
      return row ? toCard(row) : null;
    });

  const addPendingDevice = (record: PendingDeviceRecord, options: AddPendingDeviceOptions) =>
    transaction(async (client) => {
      await client.query(SQL.lockIdentity, [record.identity]);
      await client.query(SQL.dropStalePending, [record.identity, options.now, record.signKey, record.cardId]);
      const existing = (await client.query<Row>(SQL.getPending, [record.cardId, options.now])).rows[0];
      if (existing) return toPendingDevice(existing);
      const count = int(required((await client.query<Row>(SQL.countPending, [record.identity])).rows[0]), 'n');
      if (count >= options.maxPerIdentity) return 'TOO_MANY_PENDING' as const;
      await client.query(SQL.insertPending, pendingValues(record));
      return record;
    });

  return {
    async registerCard(card, options) {
      try {
        return await registerCard(card, options);
      } catch (err) {
        // The identity lock does not cover a registration of another identity taking the same id
        // or key between our read and our insert; the unique constraint catches it.
        const reason = CARD_CONSTRAINTS.get(violatedUniqueConstraint(err));
        if (reason) return { ok: false, reason };
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
    async revokeCard(id, now, authorization) {
      return revokeCard(id, now, authorization);
    },

    async addPendingDevice(record, options) {
      try {
        return await addPendingDevice(record, options);
      } catch (err) {
        // The same card id asked for another identity at the same moment (the lock is per identity).
        if (violatedUniqueConstraint(err) !== undefined) {
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
  };
}
