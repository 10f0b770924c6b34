/** Device proofs behind card events on PostgreSQL (authorizations.ts): written inside the card store's transactions. */
import type pg from 'pg';
import type { PostgresConnection } from './connection.postgres.js';
import { authorizationValues, INSERT_AUTHORIZATION, toAuthorization } from './authorizations.js';
import { numberedPlaceholders } from './migrations.js';
import type { AuthorizationStore, CardAuthorization } from './types.js';

const SQL = {
  insert: numberedPlaceholders(INSERT_AUTHORIZATION),
  ofCards: 'SELECT * FROM card_authorizations WHERE card_id = ANY($1) ORDER BY card_id, kind',
} as const;

/**
 * Keeps `authorization` for the registration of `registered` and the revocation of `revoked`
 * (either may be null) in `client`'s transaction: the card change's.
 */
export async function recordAuthorization(client: pg.PoolClient, authorization: CardAuthorization, registered: string | null, revoked: string | null): Promise<void> {
  for (const [cardId, kind] of [[registered, 'registration'], [revoked, 'revocation']] as const) {
    if (cardId !== null) await client.query({ name: 'authorization-insert', text: SQL.insert, values: authorizationValues(cardId, kind, authorization) });
  }
}

export function postgresAuthorizations({ rows }: PostgresConnection): AuthorizationStore {
  return {
    async cardAuthorizations(cardIds) {
      return cardIds.length === 0 ? [] : (await rows(SQL.ofCards, [cardIds])).map(toAuthorization);
    },
  };
}
