/**
 * Safety numbers: 60 digits two people compare (aloud, or by scanning) to confirm that the cards
 * each one's app sees for the other are the same, i.e. the card service has substituted nothing.
 * Each side contributes 30 digits computed from its identity and the sign keys of its cards: the
 * client gives every card it has seen for that identity, revoked ones included
 * (client/card-directory.ts), so a device added changes the number and one that came and went
 * unseen by the other side makes the two numbers differ. Version 2 also commits to the identity's
 * chain head in the card transparency log (the leaf hash of its newest event), so equal numbers
 * mean both apps were shown the same history of devices, not only the same devices today.
 * docs/PROTOCOL.md section 8 specifies it; docs/test-vectors.json has fixed examples.
 */
import { MERKLE_HASH_BYTES, SAFETY_NUMBER_ITERATIONS, SAFETY_NUMBER_LABEL, SAFETY_NUMBER_VERSION, SAFETY_NUMBER_VERSION_CARDS_ONLY } from './constants.js';
import { concatBytes, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { blake2b256 } from './sodium.js';

export interface SafetyNumberSide {
  identity: string;
  /**
   * Ed25519 public keys of the identity's cards, in any order: for a client, every card it has
   * seen for the identity, revoked ones included.
   */
  signPublicKeys: readonly Uint8Array[];
  /**
   * The identity's chain head (32 bytes): the leaf hash of its newest event in the card
   * transparency log (shared/log-event.ts `IdentityChain.head.hash`). Given: version 2; absent:
   * version 1, the cards only.
   */
  chainHead?: Uint8Array;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const u16 = (n: number): Uint8Array => new Uint8Array([n >> 8, n & 0xff]);

/** The version a side's fingerprint is computed with: 2 with a chain head, 1 without. */
export function safetyNumberVersion(side: SafetyNumberSide): number {
  return side.chainHead === undefined ? SAFETY_NUMBER_VERSION_CARDS_ONLY : SAFETY_NUMBER_VERSION;
}

/**
 * 30 digits for one side: version 2 over the chain head and the keys, version 1 (no chain head)
 * over the keys. Also the OrgCard's fingerprint (version 1), over its identity and both its keys.
 */
export function fingerprintDigits(side: SafetyNumberSide): string {
  const { chainHead } = side;
  if (chainHead !== undefined && (!(chainHead instanceof Uint8Array) || chainHead.length !== MERKLE_HASH_BYTES)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `"chainHead" expected Uint8Array of length ${MERKLE_HASH_BYTES}`);
  }
  const identity = utf8(side.identity);
  // Version 2 puts the head before the keys, in the first hash and in every iteration.
  const material = concatBytes(...(chainHead ? [chainHead] : []), ...[...side.signPublicKeys].sort(compareBytes));
  let hash = blake2b256(concatBytes(SAFETY_NUMBER_LABEL, u16(safetyNumberVersion(side)), u16(identity.length), identity, material));
  for (let i = 1; i < SAFETY_NUMBER_ITERATIONS; i++) hash = blake2b256(concatBytes(hash, material));
  let digits = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 256 + hash[chunk * 5 + j]!;
    digits += String(value % 100000).padStart(5, '0');
  }
  return digits;
}

/**
 * The 60-digit safety number of two identities, the same on both sides (the side whose identity
 * sorts first comes first). Both sides have a chain head (version 2) or neither (version 1):
 * INVALID_ARGUMENT otherwise. Compare with `===`; format in groups of five for people. An app
 * that stores a verified number should store its version (`safetyNumberVersion`) with it: a
 * number of another version is not comparable.
 */
export function safetyNumber(a: SafetyNumberSide, b: SafetyNumberSide): string {
  if (a.signPublicKeys.length === 0 || b.signPublicKeys.length === 0) {
    throw new E2EEError(ErrorCode.NO_CARDS, 'a safety number needs at least one card on each side');
  }
  if ((a.chainHead === undefined) !== (b.chainHead === undefined)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'a safety number needs a chain head on both sides (version 2) or on neither (version 1)');
  }
  const [first, second] = a.identity <= b.identity ? [a, b] : [b, a];
  return fingerprintDigits(first) + fingerprintDigits(second);
}
