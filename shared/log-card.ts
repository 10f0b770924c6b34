/**
 * A card as the transparency log vouches for it (docs/PROTOCOL.md 17.6): the lookup's proof of
 * the card's registration event, checked against a checkpoint the verifier already opened with
 * the pinned LogKey. A card without an event in the log (one inserted behind the service's back,
 * or hidden from the log) is refused.
 */
import type { LogLeafProof } from './api.js';
import { fromB64u } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import type { Checkpoint } from './log-checkpoint.js';
import { decodeCardEvent, type CardEvent } from './log-event.js';
import { leafHash, verifyInclusion } from './merkle.js';

function refused(cardId: string, message: string, cause?: unknown): E2EEError {
  return new E2EEError(ErrorCode.LOG_INCLUSION_INVALID, `card ${cardId}: ${message}`, { cause, details: { cardId } });
}

/**
 * Verifies that `entry` (the lookup's `log.proofs[cardId]`) proves the registration of card
 * `cardId` of `identity` in the tree `checkpoint` states; returns the event. Throws
 * LOG_INCLUSION_INVALID when there is no entry, no proof yet (the event is newer than the
 * checkpoint: ask again after the next one), or it does not prove that registration.
 */
export function verifyLoggedCard(cardId: string, identity: string, entry: LogLeafProof | undefined, checkpoint: Checkpoint): CardEvent {
  if (!entry) throw refused(cardId, 'it has no event in the log');
  if (!Array.isArray(entry.proof)) throw refused(cardId, `its event is not in the checkpoint of size ${checkpoint.size} yet`);
  let leaf: Uint8Array;
  let event: CardEvent;
  try {
    leaf = fromB64u(entry.leaf, 'leaf');
    event = decodeCardEvent(leaf);
  } catch (err) {
    throw refused(cardId, 'its leaf is not a card event', err);
  }
  if (event.kind !== 'registration' || event.cardId !== cardId || event.identity !== identity) {
    throw refused(cardId, `the leaf is not this card's registration for ${identity}`);
  }
  let proof: Uint8Array[];
  try {
    proof = entry.proof.map((hash) => fromB64u(hash, 'proof'));
  } catch (err) {
    throw refused(cardId, 'its proof is not base64url', err);
  }
  verifyInclusion({ index: entry.index, size: checkpoint.size, leafHash: leafHash(leaf), proof, root: checkpoint.rootHash });
  return event;
}
