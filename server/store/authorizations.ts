/**
 * The device proofs behind card events (docs/PROTOCOL.md 17.8), shared by both stores: the row
 * an authorization is written as, and the record read back. The card store writes it in the
 * transaction of the card change it authorized.
 */
import { buffer, bytes, KIND_CODES } from './log.js';
import { int, text, type Row } from './rows.js';
import type { CardAuthorization, CardAuthorizationRecord } from './types.js';

export const INSERT_AUTHORIZATION = `INSERT INTO card_authorizations (card_id, kind, signer_card_id, method, path, body, proof_time, signature)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;

/** The values of INSERT_AUTHORIZATION, in order. */
export function authorizationValues(cardId: string, kind: CardAuthorizationRecord['kind'], a: CardAuthorization): unknown[] {
  return [cardId, KIND_CODES[kind], a.signerCardId, a.method, a.path, buffer(a.body), a.timestamp, buffer(a.signature)];
}

export function toAuthorization(row: Row): CardAuthorizationRecord {
  return {
    cardId: text(row, 'card_id'),
    kind: int(row, 'kind') === KIND_CODES.registration ? 'registration' : 'revocation',
    signerCardId: text(row, 'signer_card_id'),
    timestamp: int(row, 'proof_time'),
    signature: bytes(row, 'signature'),
    method: text(row, 'method'),
    path: text(row, 'path'),
    body: bytes(row, 'body'),
  };
}
