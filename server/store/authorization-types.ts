/** The kept device proofs behind card events (docs/PROTOCOL.md 17.8), apart from types.ts for its size. */

/**
 * The X-E2EE-Device proof a device sent with a request that changed its identity's cards (an
 * approval, a revocation, a registration with a proof), kept so that the identity's other devices
 * can check the change was made by one of them (docs/PROTOCOL.md 17.8).
 */
export interface CardAuthorization {
  /** The card whose sign key made the proof. */
  signerCardId: string;
  /** The proof's unix seconds. */
  timestamp: number;
  signature: Uint8Array;
  /** The request as signed: method, path below the mount prefix, body bytes. */
  method: string;
  path: string;
  body: Uint8Array;
}

/** An authorization with the card event it made (a card has at most one of each kind). */
export interface CardAuthorizationRecord extends CardAuthorization {
  cardId: string;
  kind: 'registration' | 'revocation';
}

/** The kept device proofs (written by the CardStore in the card change's transaction). */
export interface AuthorizationStore {
  /** Every authorization kept for events of these cards. */
  cardAuthorizations(cardIds: readonly string[]): Promise<CardAuthorizationRecord[]>;
}
