/**
 * CardStore on SQLite: registrations and revocations go through the group commit with their log
 * events, device requests in their own transaction.
 */
import { authorizationWriter } from './authorizations.sqlite.js';
import type { SqliteConnection } from './connection.sqlite.js';
import type { AppendEvent } from './log.sqlite.js';
import { int, text, toCard, toPendingDevice } from './rows.js';
import { groupByIdentity, planRegistration, toRegistrationFacts } from './rules.js';
import type { AddPendingDeviceOptions, CardAuthorization, CardStore, PendingDeviceRecord, RegisterCardOptions, StoredCard } from './types.js';

const SQL = {
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
  revokeCard: 'UPDATE cards SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *',

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
} as const;

export function sqliteCards(connection: SqliteConnection, appendEvent: AppendEvent): CardStore {
  const stmt = connection.prepare(SQL);
  const recordAuthorization = authorizationWriter(connection);
  const { one, must, all } = connection;

  const registerCard = connection.grouped((card: StoredCard, options: RegisterCardOptions) => {
    const facts = toRegistrationFacts(must(stmt.registrationFacts, { ...card, supersedes: options.supersedes ?? null }));
    const result = planRegistration(facts, options);
    if (!result.ok) return result;
    if (result.superseded !== null) {
      stmt.supersede.run(options.now, result.superseded);
      appendEvent('revocation', card.identity, result.superseded, options.now);
    }
    stmt.insertCard.run(card);
    appendEvent('registration', card.identity, card.id, card.registeredAt);
    if (options.authorization) recordAuthorization(options.authorization, card.id, result.superseded);
    return result;
  });

  // A card revoked already keeps its time and gets no second event.
  const revokeCard = connection.grouped((id: string, now: number, authorization?: CardAuthorization) => {
    const revoked = one(stmt.revokeCard, now, id);
    if (revoked) appendEvent('revocation', text(revoked, 'identity'), id, now);
    if (revoked && authorization) recordAuthorization(authorization, null, id);
    const row = revoked ?? one(stmt.getCard, id);
    return row ? toCard(row) : null;
  });

  const addPendingDevice = connection.immediate((record: PendingDeviceRecord, options: AddPendingDeviceOptions) => {
    stmt.dropStalePending.run({ identity: record.identity, now: options.now, signKey: record.signKey, cardId: record.cardId });
    const existing = one(stmt.getPending, record.cardId, options.now);
    if (existing) return toPendingDevice(existing);
    if (int(must(stmt.countPending, record.identity), 'n') >= options.maxPerIdentity) return 'TOO_MANY_PENDING' as const;
    stmt.insertPending.run(record);
    return record;
  });

  return {
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
    async revokeCard(id, now, authorization) {
      return revokeCard(id, now, authorization);
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
  };
}
