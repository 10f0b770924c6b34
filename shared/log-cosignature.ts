/**
 * Witness cosignatures (c2sp.org/tlog-cosignature, the timestamped Ed25519 "cosignature/v1"): a
 * witness that checked a checkpoint's consistency with everything it saw before signs
 *
 *   "cosignature/v1\n" || "time " || decimal(t) || "\n" || the checkpoint's note text
 *
 * and adds the note signature line "— <witness name> base64(key ID || u64(t) || signature)", its
 * key ID made with type 0x04. docs/PROTOCOL.md section 17.4.
 */
import { COSIGNATURE_V1_HEADER, KEY_BYTES, NOTE_TYPE_COSIGNATURE_V1, SIGNATURE_BYTES } from './constants.js';
import { concatBytes, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { COSIGNATURE_MAX_SKEW_SECONDS } from './limits.js';
import { isKeyName, type NoteSigner, type NoteVerifier, type VerifiedNote } from './signed-note.js';
import { noteKeyId, parseSignerKey, parseVerifierKey } from './signed-note-keys.js';
import { sign, signKeyPairFromSeed, verify } from './sodium.js';

/** A witness's verified cosignature. */
export interface Cosignature {
  name: string;
  keyId: number;
  /** When the witness signed, unix seconds. */
  timestamp: number;
}

const TIMESTAMP_BYTES = 8;
const MAX_TIMESTAMP = 2n ** 63n - 1n;

/** The bytes a cosignature/v1 signs: header, time line, then the checkpoint's note text. */
export function cosignatureMessage(text: Uint8Array, timestamp: bigint): Uint8Array {
  return concatBytes(utf8(`${COSIGNATURE_V1_HEADER}time ${timestamp}\n`), text);
}

/** The timestamp of a cosignature/v1 signature (after the key ID), or null when it is not 72 bytes. */
export function cosignatureTimestamp(signature: Uint8Array): bigint | null {
  if (signature.length !== TIMESTAMP_BYTES + SIGNATURE_BYTES) return null;
  return new DataView(signature.buffer, signature.byteOffset).getBigUint64(0);
}

function checkKey(name: string, key: Uint8Array, what: string): void {
  if (!isKeyName(name)) throw new E2EEError(ErrorCode.NOTE_KEY_INVALID, 'a key name is non-empty, without spaces or "+"');
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new E2EEError(ErrorCode.NOTE_KEY_INVALID, `an Ed25519 ${what} is ${KEY_BYTES} bytes`);
}

/** Verifies the cosignatures of witness `name` with its Ed25519 `publicKey` (timestamps: checkCosignatures). */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  checkKey(name, publicKey, 'public key');
  const key = publicKey.slice();
  return {
    name,
    keyId: noteKeyId(name, NOTE_TYPE_COSIGNATURE_V1, key),
    verify(text, signature) {
      const timestamp = cosignatureTimestamp(signature);
      return timestamp !== null && verify(signature.subarray(TIMESTAMP_BYTES), cosignatureMessage(text, timestamp), key);
    },
  };
}

/** The Unix time in seconds, the default clock of a witness. */
const unixNow = (): number => Math.floor(Date.now() / 1000);

/**
 * A witness's cosigner from its 32-byte Ed25519 seed. It signs note texts of at least three
 * lines (a checkpoint; the witness checks its consistency first) at the time `now()` gives.
 */
export function cosignatureSigner(name: string, seed: Uint8Array, now: () => number = unixNow): NoteSigner & { readonly publicKey: Uint8Array } {
  checkKey(name, seed, 'seed');
  const { publicKey, secretKey } = signKeyPairFromSeed(seed);
  return {
    name,
    publicKey,
    keyId: noteKeyId(name, NOTE_TYPE_COSIGNATURE_V1, publicKey),
    sign(text) {
      if (text.filter((byte) => byte === 0x0a).length < 3) throw new E2EEError(ErrorCode.CHECKPOINT_MALFORMED, 'a witness cosigns checkpoints only');
      const t = now();
      if (!Number.isSafeInteger(t) || t < 0) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'the clock gave no Unix time in seconds');
      const signature = new Uint8Array(TIMESTAMP_BYTES + SIGNATURE_BYTES);
      new DataView(signature.buffer).setBigUint64(0, BigInt(t));
      signature.set(sign(cosignatureMessage(text, BigInt(t)), secretKey), TIMESTAMP_BYTES);
      return signature;
    },
  };
}

/** A cosignature verifier from the witness's verifier key text (type 0x04). */
export function cosignatureVerifierFromKey(vkey: string): NoteVerifier {
  const { name, key } = parseVerifierKey(vkey, [NOTE_TYPE_COSIGNATURE_V1]);
  return cosignatureVerifier(name, key);
}

/** A cosigner from the witness's signer key text (type 0x04). */
export function cosignatureSignerFromKey(skey: string, now?: () => number): NoteSigner & { readonly publicKey: Uint8Array } {
  const { name, key } = parseSignerKey(skey, [NOTE_TYPE_COSIGNATURE_V1]);
  return cosignatureSigner(name, key, now);
}

/**
 * The cosignatures of `witnesses` among a note's verified signatures, with their times. A time
 * past 2^63 - 1, or more than COSIGNATURE_MAX_SKEW_SECONDS after `now` (unix seconds), is
 * COSIGNATURE_TIME_INVALID.
 */
export function checkCosignatures(note: VerifiedNote, witnesses: readonly NoteVerifier[], now: number): Cosignature[] {
  const ids = new Set(witnesses.map((w) => `${w.name}+${w.keyId}`));
  const found: Cosignature[] = [];
  for (const { name, keyId, signature } of note.verified) {
    if (!ids.has(`${name}+${keyId}`)) continue;
    const t = cosignatureTimestamp(signature);
    if (t === null || t > MAX_TIMESTAMP || t > BigInt(Math.floor(now)) + BigInt(COSIGNATURE_MAX_SKEW_SECONDS)) {
      throw new E2EEError(ErrorCode.COSIGNATURE_TIME_INVALID, `the cosignature of ${name} is dated in the future (${t})`);
    }
    found.push({ name, keyId, timestamp: Number(t) });
  }
  return found;
}
