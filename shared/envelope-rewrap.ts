/**
 * Rewrap (docs/PROTOCOL.md section 6): a message's CEK wrapped for one more box key after the
 * fact, for organization backups and history sync. b64u(E' || ChaCha20-Poly1305(KEK, 0, CEK)),
 * the KEK bound to the whole original envelope, so a rewrap opens only that envelope.
 */
import { KEY_BYTES, REWRAP_BYTES, REWRAP_LABEL } from './constants.js';
import { checkBytes, concatBytes, fromB64u, toB64u } from './encoding.js';
import { WRAP_NONCE, deriveKek, type ParsedEnvelope } from './envelope-layout.js';
import { E2EEError, ErrorCode } from './errors.js';
import type { AsyncDeviceKeys } from './keys.js';
import { blake2b256, chachaOpen, chachaSeal, randomBytes, x25519, x25519Base } from './sodium.js';

/** Rewraps a message's CEK for one more box key (org backups, history sync). */
export function createRewrap(cek: Uint8Array, envelope: ParsedEnvelope, recipientBoxPublicKey: Uint8Array): string {
  return createRewrapper(recipientBoxPublicKey)(cek, envelope);
}

/**
 * A rewrapper for many messages to one box key (a page of history): one ephemeral key and one
 * X25519 for all of them. Sound because every KEK still binds its own envelope's hash, so each
 * KEK wraps one CEK (the same envelope twice gives the same rewrap, which reveals nothing new).
 */
export function createRewrapper(recipientBoxPublicKey: Uint8Array): (cek: Uint8Array, envelope: ParsedEnvelope) => string {
  return rewrapperWithEphemeral(recipientBoxPublicKey, randomBytes(KEY_BYTES));
}

/** createRewrapper with the given ephemeral secret. Not exported from the package: see shared/testing.ts. */
export function rewrapperWithEphemeral(recipientBoxPublicKey: Uint8Array, ephemeralSecret: Uint8Array): (cek: Uint8Array, envelope: ParsedEnvelope) => string {
  checkBytes(recipientBoxPublicKey, KEY_BYTES, 'recipientBoxPublicKey');
  const secret = checkBytes(ephemeralSecret, KEY_BYTES, 'ephemeralSecret');
  const ephemeralPublic = x25519Base(secret);
  const shared = x25519(secret, recipientBoxPublicKey);
  if (!shared) throw new E2EEError(ErrorCode.CARD_WEAK_KEY, 'the rewrap recipient box key has low order');
  // KEK input = label || E' || R || BLAKE2b-256(envelope); only the hash changes per message.
  const kdfInput = concatBytes(REWRAP_LABEL, ephemeralPublic, recipientBoxPublicKey, new Uint8Array(32));
  const hashOffset = kdfInput.length - 32;
  const out = new Uint8Array(REWRAP_BYTES);
  out.set(ephemeralPublic, 0);
  return (cek, envelope) => {
    checkBytes(cek, KEY_BYTES, 'cek');
    kdfInput.set(blake2b256(envelope.binary), hashOffset);
    out.set(chachaSeal(blake2b256(kdfInput, shared), WRAP_NONCE, cek, null), KEY_BYTES);
    return toB64u(out);
  };
}

/** Opens a rewrap addressed to this box key pair, giving the CEK (not yet checked against the commitment). */
export function openRewrap(rewrap: string, envelope: ParsedEnvelope, me: { boxSecretKey: Uint8Array; boxPublicKey: Uint8Array }): Uint8Array {
  const bytes = parseRewrap(rewrap);
  const ephemeralPublic = bytes.subarray(0, KEY_BYTES);
  return unwrapRewrap(bytes, deriveKek(REWRAP_LABEL, ephemeralPublic, me.boxPublicKey, x25519(me.boxSecretKey, ephemeralPublic), blake2b256(envelope.binary)));
}

/** openRewrap for a box key behind AsyncDeviceKeys (e.g. a non-extractable WebCrypto key). */
export async function openRewrapAsync(rewrap: string, envelope: ParsedEnvelope, keys: Pick<AsyncDeviceKeys, 'boxPublicKey' | 'agree'>): Promise<Uint8Array> {
  const bytes = parseRewrap(rewrap);
  const ephemeralPublic = bytes.subarray(0, KEY_BYTES);
  return unwrapRewrap(bytes, deriveKek(REWRAP_LABEL, ephemeralPublic, keys.boxPublicKey, await keys.agree(ephemeralPublic), blake2b256(envelope.binary)));
}

/** A rewrap's bytes: E' (32) || wrapped CEK (48). */
function parseRewrap(rewrap: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = fromB64u(rewrap, 'rewrap');
  } catch {
    throw new E2EEError(ErrorCode.REWRAP_MALFORMED, 'rewrap is not canonical base64url');
  }
  if (bytes.length !== REWRAP_BYTES) throw new E2EEError(ErrorCode.REWRAP_MALFORMED, `rewrap must be ${REWRAP_BYTES} bytes, got ${bytes.length}`);
  return bytes;
}

function unwrapRewrap(bytes: Uint8Array, kek: Uint8Array | undefined): Uint8Array {
  const cek = kek && chachaOpen(kek, WRAP_NONCE, bytes.subarray(KEY_BYTES), null);
  if (!cek) throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, 'the rewrap does not decrypt for this key');
  return cek;
}
