/** Device proofs behind card events on SQLite (authorizations.ts): written inside the card store's transactions. */
import type { SqliteConnection } from './connection.sqlite.js';
import { authorizationValues, INSERT_AUTHORIZATION, toAuthorization } from './authorizations.js';
import type { AuthorizationStore, CardAuthorization } from './types.js';

/**
 * Keeps `authorization` for the registration of `registered` and the revocation of `revoked`
 * (either may be null); called inside the card change's transaction.
 */
export type RecordAuthorization = (authorization: CardAuthorization, registered: string | null, revoked: string | null) => void;

export function authorizationWriter(connection: SqliteConnection): RecordAuthorization {
  const insert = connection.db.prepare(INSERT_AUTHORIZATION);
  return (authorization, registered, revoked) => {
    if (registered !== null) insert.run(...authorizationValues(registered, 'registration', authorization));
    if (revoked !== null) insert.run(...authorizationValues(revoked, 'revocation', authorization));
  };
}

export function sqliteAuthorizations(connection: SqliteConnection): AuthorizationStore {
  const ofCards = connection.db.prepare('SELECT * FROM card_authorizations WHERE card_id IN (SELECT value FROM json_each(?)) ORDER BY card_id, kind');
  return {
    async cardAuthorizations(cardIds) {
      return cardIds.length === 0 ? [] : connection.all(ofCards, JSON.stringify(cardIds)).map(toAuthorization);
    },
  };
}
