/** Limits of the card directory, with the reasoning, in one place. */

/** A registration's createdAt may differ from the server clock by at most this (shared/constants.ts). */
export { CARD_MAX_CLOCK_SKEW_SECONDS } from '../shared/constants.js';

/**
 * Active cards per identity. Every sender encrypts for every card of every participant, so this
 * also bounds envelope size: 20 devices is far above real use and far below the 4096 recipients
 * of an envelope.
 */
export const MAX_ACTIVE_CARDS_PER_IDENTITY = 20;

/** Identities per GET /v1/cards: a large group's lookup fits in one request, and a query stays cheap. */
export const MAX_LOOKUP_IDENTITIES = 100;
