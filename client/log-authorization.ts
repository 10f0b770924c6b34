/**
 * Sibling devices' acts in the owner's chain (docs/PROTOCOL.md 17.8): a card event the service
 * serves with `authorizedBy`, the X-E2EE-Device proof of the request that made it. The proof is
 * an Ed25519 signature by a card of the identity over the request, and only these requests make
 * the event, each naming its card (so a proof authorizes one event and cannot be moved to another):
 *
 *   registration  POST /v1/device-requests/<cardId>/approve (no body), or POST /v1/cards whose card is <cardId>
 *   revocation    DELETE /v1/cards/<cardId> (no body), or POST /v1/cards whose card supersedes <cardId>
 *
 * The service cannot make one without a device's sign key.
 */
import { ApiPath, type LogEventAuthorization } from '../shared/api.js';
import { parseCardRequest, type CardRequest } from '../shared/card.js';
import { verifyDeviceProof } from '../shared/device-proof.js';
import { fromB64u, fromB64uExact } from '../shared/encoding.js';
import type { CardEvent } from '../shared/log-event.js';
import { SIGNATURE_BYTES } from '../shared/constants.js';

/** The card a POST /v1/cards body registers, or null when it is not a card request. */
function registeredCard(body: Uint8Array): { id: string; previousCardId: string | undefined } | null {
  try {
    const card = parseCardRequest(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as CardRequest);
    return { id: card.id, previousCardId: card.fields.previousCardId };
  } catch {
    return null;
  }
}

/** Whether the request `a` describes is one that makes `event` (see above). */
function makesEvent(a: LogEventAuthorization, body: Uint8Array, event: CardEvent): boolean {
  const empty = body.length === 0;
  if (a.method === 'POST' && a.path === ApiPath.cards) {
    const card = registeredCard(body);
    return event.kind === 'registration' ? card?.id === event.cardId : card?.previousCardId === event.cardId;
  }
  if (event.kind === 'registration') return a.method === 'POST' && a.path === ApiPath.approveDevice(event.cardId) && empty;
  return a.method === 'DELETE' && a.path === ApiPath.card(event.cardId) && empty;
}

/**
 * Whether `a` proves that the holder of `signKey` (the sign key of card `a.cardId`, which the
 * caller already trusts as its own identity's) made `event`. Malformed members are just false.
 */
export function authorizes(a: LogEventAuthorization | undefined, event: CardEvent, signKey: Uint8Array): boolean {
  if (!a || typeof a.method !== 'string' || typeof a.path !== 'string' || !Number.isSafeInteger(a.timestamp)) return false;
  try {
    const body = fromB64u(a.body);
    if (!makesEvent(a, body, event)) return false;
    const proof = { cardId: a.cardId, timestamp: a.timestamp, signature: fromB64uExact(a.signature, SIGNATURE_BYTES, 'signature') };
    return verifyDeviceProof(proof, signKey, { method: a.method, path: a.path, body });
  } catch {
    return false;
  }
}
