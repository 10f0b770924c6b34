/**
 * Keys of signed notes (c2sp.org/signed-note): the 4-byte key ID, Ed25519 note signers and
 * verifiers, and the text forms other implementations exchange keys in (golang.org/x/mod's
 * note package, and the witnesses): a verifier key "<name>+<key ID hex>+base64(type || public
 * key)" and a signer key "PRIVATE+KEY+<name>+<key ID hex>+base64(type || seed)". The log's key
 * (the LogKey) is an Ed25519 note key; witness cosignature keys are in log-cosignature.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { KEY_BYTES, NOTE_TYPE_ED25519, SIGNATURE_BYTES } from './constants.js';
import { concatBytes, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { fromBase64, isKeyName, toBase64, type NoteSigner, type NoteVerifier } from './signed-note.js';
import { sign, signKeyPairFromSeed, verify } from './sodium.js';

/** A key in its parts: what a vkey (public) or skey (the 32-byte seed) carries. */
export interface NoteKey {
  name: string;
  keyId: number;
  /** The signature type byte (NOTE_TYPE_ED25519, NOTE_TYPE_COSIGNATURE_V1). */
  type: number;
  /** The public key, or the seed in a signer key. */
  key: Uint8Array;
}

function invalid(message: string): E2EEError {
  return new E2EEError(ErrorCode.NOTE_KEY_INVALID, message);
}

function checkName(name: string): void {
  if (!isKeyName(name)) throw invalid('a key name is non-empty, without spaces or "+"');
}

/** key ID = SHA-256(key name || 0x0A || type || public key)[0:4], big-endian. */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const hash = sha256(concatBytes(utf8(name), new Uint8Array([0x0a, type]), publicKey));
  return new DataView(hash.buffer, hash.byteOffset).getUint32(0);
}

const hex8 = (keyId: number) => keyId.toString(16).padStart(8, '0');

/** "<name>+<key ID>+base64(type || public key)". */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  checkName(name);
  return `${name}+${hex8(noteKeyId(name, type, publicKey))}+${toBase64(concatBytes(new Uint8Array([type]), publicKey))}`;
}

/** "PRIVATE+KEY+<name>+<key ID>+base64(type || seed)" for the Ed25519 seed of a key of `type`. */
export function formatSignerKey(name: string, type: number, seed: Uint8Array): string {
  checkName(name);
  const { publicKey } = signKeyPairFromSeed(seed);
  return `PRIVATE+KEY+${name}+${hex8(noteKeyId(name, type, publicKey))}+${toBase64(concatBytes(new Uint8Array([type]), seed))}`;
}

/** Splits "<name>+<key ID>+<base64>" (the base64 may hold "+" too), checking each part. */
function split(text: string, what: string): NoteKey {
  if (typeof text !== 'string') throw invalid(`a ${what} is text`);
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  const [name, id] = [text.slice(0, first), text.slice(first + 1, second)];
  const bytes = second < 0 ? null : fromBase64(text.slice(second + 1));
  if (second < 0 || !/^[0-9a-f]{8}$/.test(id) || !bytes || bytes.length < 2) throw invalid(`a ${what} is "<name>+<8 hex digits>+<base64>"`);
  checkName(name);
  return { name, keyId: parseInt(id, 16), type: bytes[0]!, key: bytes.slice(1) };
}

/** The parts of a verifier key of one of `types`; its key ID must be the one its name and key give. */
export function parseVerifierKey(vkey: string, types: readonly number[] = [NOTE_TYPE_ED25519]): NoteKey {
  const parsed = split(vkey, 'verifier key');
  if (!types.includes(parsed.type)) throw invalid(`verifier key type ${parsed.type} is not one of ${types.join(', ')}`);
  if (parsed.key.length !== KEY_BYTES) throw invalid(`an Ed25519 public key is ${KEY_BYTES} bytes`);
  if (noteKeyId(parsed.name, parsed.type, parsed.key) !== parsed.keyId) throw invalid(`the key ID of ${parsed.name} does not match its key`);
  return parsed;
}

/** The parts of a signer key of one of `types` (`key` is the seed); its key ID must match the public key. */
export function parseSignerKey(skey: string, types: readonly number[] = [NOTE_TYPE_ED25519]): NoteKey {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) throw invalid('a signer key starts with "PRIVATE+KEY+"');
  const parsed = split(skey.slice('PRIVATE+KEY+'.length), 'signer key');
  if (!types.includes(parsed.type)) throw invalid(`signer key type ${parsed.type} is not one of ${types.join(', ')}`);
  if (parsed.key.length !== KEY_BYTES) throw invalid(`an Ed25519 seed is ${KEY_BYTES} bytes`);
  if (noteKeyId(parsed.name, parsed.type, signKeyPairFromSeed(parsed.key).publicKey) !== parsed.keyId) {
    throw invalid(`the key ID of ${parsed.name} does not match its key`);
  }
  return parsed;
}

/** Verifies plain Ed25519 note signatures (type 0x01) of the key `name` with `publicKey` (32 bytes). */
export function ed25519NoteVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  checkName(name);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_BYTES) throw invalid(`an Ed25519 public key is ${KEY_BYTES} bytes`);
  const key = publicKey.slice();
  return {
    name,
    keyId: noteKeyId(name, NOTE_TYPE_ED25519, key),
    verify: (text, signature) => signature.length === SIGNATURE_BYTES && verify(signature, text, key),
  };
}

/** A plain Ed25519 note signer (type 0x01) from a 32-byte seed; `publicKey` for its verifier. */
export function ed25519NoteSigner(name: string, seed: Uint8Array): NoteSigner & { readonly publicKey: Uint8Array } {
  checkName(name);
  if (!(seed instanceof Uint8Array) || seed.length !== KEY_BYTES) throw invalid(`an Ed25519 seed is ${KEY_BYTES} bytes`);
  const { publicKey, secretKey } = signKeyPairFromSeed(seed);
  return { name, publicKey, keyId: noteKeyId(name, NOTE_TYPE_ED25519, publicKey), sign: (text) => sign(text, secretKey) };
}

/** An Ed25519 note verifier from its verifier key text (type 0x01). */
export function noteVerifierFromKey(vkey: string): NoteVerifier {
  const { name, key } = parseVerifierKey(vkey);
  return ed25519NoteVerifier(name, key);
}

/** An Ed25519 note signer from its signer key text (type 0x01). */
export function noteSignerFromKey(skey: string): NoteSigner & { readonly publicKey: Uint8Array } {
  const { name, key } = parseSignerKey(skey);
  return ed25519NoteSigner(name, key);
}
