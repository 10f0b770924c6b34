/**
 * Deterministic sealing and rewrapping, for reproducible test vectors (docs/PROTOCOL.md section
 * 14) and tests only. A message sealed with fixed randomness repeats its CEK, ephemeral key and
 * nonce, which breaks its confidentiality: this module is not exported from shared/index.ts nor
 * from the package, so no application can reach it by accident.
 */
import type { ParsedEnvelope } from './envelope-layout.js';
import { rewrapperWithEphemeral } from './envelope-rewrap.js';

/** sealEnvelope with fixed randomness (CEK, ephemeral secret, nonce and messageId): the same input gives the same bytes. */
export { sealWithRandomness as sealEnvelopeDeterministic, type SealRandomness } from './envelope-seal.js';

/** createRewrap with a fixed ephemeral secret: the same input gives the same rewrap. */
export function createRewrapDeterministic(cek: Uint8Array, envelope: ParsedEnvelope, recipientBoxPublicKey: Uint8Array, ephemeralSecret: Uint8Array): string {
  return rewrapperWithEphemeral(recipientBoxPublicKey, ephemeralSecret)(cek, envelope);
}
