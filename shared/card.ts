/**
 * Card v1 (docs/PROTOCOL.md "Card v1"): a device's public keys in a snapshot the client makes
 * once and nobody re-serializes, self-signed by the device and countersigned by the AppKey.
 */
import {
  CARD_APP_LABEL,
  CARD_SELF_LABEL,
  CARD_VERSION,
  KEY_BYTES,
  KEY_ID_BYTES,
  SIGNATURE_BYTES,
} from './constants.js';
import { concatBytes, fromB64u, fromB64uExact, fromHex, fromUtf8, toB64u, toHex, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { MAX_DEVICE_ID_CHARS, MAX_DEVICE_NAME_CHARS, MAX_IDENTITY_CHARS, MAX_SNAPSHOT_BYTES } from './limits.js';
import { parseFlatObject } from './json.js';
import { appKeyIdOf, type AppKey, type AsyncDeviceKeys, type DeviceKeys } from './keys.js';
import { blake2b256, sign, verify } from './sodium.js';

/** The members of a snapshot. */
export interface CardSnapshot {
  v: 1;
  identity: string;
  deviceId: string;
  deviceName: string;
  /** b64u of the 32-byte Ed25519 public key. */
  signKey: string;
  /** b64u of the 32-byte X25519 public key. */
  boxKey: string;
  /** Unix seconds. */
  createdAt: number;
  /** Hex id of the card this one replaces. */
  previousCardId?: string;
}

/** What a client posts to POST /v1/cards. */
export interface CardRequest {
  snapshot: string;
  selfSignature: string;
}

/** The wire form of a countersigned card (JSON). */
export interface CardWire {
  id: string;
  snapshot: string;
  selfSignature: string;
  appSignature: string;
  appKeyId: string;
  revokedAt: number | null;
}

/** A card request whose snapshot parsed and whose self-signature verified. */
export interface SelfSignedCard {
  id: string;
  snapshotBytes: Uint8Array;
  fields: CardSnapshot;
  signPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
  selfSignature: Uint8Array;
}

/** A card that passed every check of verifyCard. */
export interface VerifiedCard extends SelfSignedCard {
  identity: string;
  appKeyId: string;
  revokedAt: number | null;
  wire: CardWire;
}

/** A pinned AppKey public key, as configured in a client. */
export interface TrustedAppKey {
  publicKey: Uint8Array;
  appKeyId: string;
}

const REQUIRED_MEMBERS = ['v', 'identity', 'deviceId', 'deviceName', 'signKey', 'boxKey', 'createdAt'] as const;
const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]+$/;
const CARD_ID_PATTERN = /^[0-9a-f]{64}$/;
const WIRE_MEMBERS = ['id', 'snapshot', 'selfSignature', 'appSignature', 'appKeyId', 'revokedAt'];

/** card id = hex(BLAKE2b-256(snapshot)). */
export function cardIdOf(snapshotBytes: Uint8Array): string {
  return toHex(blake2b256(snapshotBytes));
}

/** The first 8 bytes of a card id: how an envelope names a recipient. */
export function keyIdOf(cardId: string): Uint8Array {
  return fromHex(cardId, 'cardId').subarray(0, KEY_ID_BYTES);
}

function malformed(message: string): E2EEError {
  return new E2EEError(ErrorCode.CARD_MALFORMED, message);
}

function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * A snapshot's bytes → its members, checking exactly the members, types and sizes of card v1
 * and that the box key is not of low order (X25519 with it would yield all zeros).
 */
export function parseSnapshot(snapshotBytes: Uint8Array): CardSnapshot {
  if (snapshotBytes.length > MAX_SNAPSHOT_BYTES) {
    throw new E2EEError(ErrorCode.CARD_TOO_LARGE, `card snapshot is ${snapshotBytes.length} bytes, the limit is ${MAX_SNAPSHOT_BYTES}`);
  }
  let text: string;
  try {
    text = fromUtf8(snapshotBytes);
  } catch {
    throw malformed('card snapshot is not valid UTF-8');
  }
  const obj = parseFlatObject(text);
  if (!obj) throw malformed('card snapshot is not a flat JSON object with unique members');
  for (const key of Object.keys(obj)) {
    if (!(REQUIRED_MEMBERS as readonly string[]).includes(key) && key !== 'previousCardId') {
      throw malformed(`card snapshot has unknown member "${key}"`);
    }
  }
  for (const key of REQUIRED_MEMBERS) if (!(key in obj)) throw malformed(`card snapshot lacks member "${key}"`);
  const { v, identity, deviceId, deviceName, signKey, boxKey, createdAt, previousCardId } = obj;
  if (v !== CARD_VERSION) throw malformed(`card snapshot "v" must be ${CARD_VERSION}`);
  if (typeof identity !== 'string' || identity.length === 0 || charCount(identity) > MAX_IDENTITY_CHARS) {
    throw malformed(`card snapshot "identity" must be a string of 1..${MAX_IDENTITY_CHARS} characters`);
  }
  if (typeof deviceId !== 'string' || deviceId.length > MAX_DEVICE_ID_CHARS || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw malformed(`card snapshot "deviceId" must be 1..${MAX_DEVICE_ID_CHARS} characters of [A-Za-z0-9_-]`);
  }
  if (typeof deviceName !== 'string' || charCount(deviceName) > MAX_DEVICE_NAME_CHARS) {
    throw malformed(`card snapshot "deviceName" must be a string of 0..${MAX_DEVICE_NAME_CHARS} characters`);
  }
  if (typeof signKey !== 'string' || typeof boxKey !== 'string') throw malformed('card snapshot keys must be b64u strings');
  fromB64uExact(signKey, KEY_BYTES, 'signKey');
  const boxPublic = fromB64uExact(boxKey, KEY_BYTES, 'boxKey');
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) {
    throw malformed('card snapshot "createdAt" must be a non-negative integer (unix seconds)');
  }
  if (previousCardId !== undefined && (typeof previousCardId !== 'string' || !CARD_ID_PATTERN.test(previousCardId))) {
    throw malformed('card snapshot "previousCardId" must be a card id (64 lowercase hex characters)');
  }
  if (!isCanonicalX25519(boxPublic)) throw new E2EEError(ErrorCode.CARD_WEAK_KEY, 'card box key is not a canonical X25519 public key');
  if (isLowOrder(boxPublic)) throw new E2EEError(ErrorCode.CARD_WEAK_KEY, 'card box key has low order');
  const fields: CardSnapshot = { v: CARD_VERSION, identity, deviceId, deviceName, signKey, boxKey, createdAt };
  if (previousCardId !== undefined) fields.previousCardId = previousCardId;
  return fields;
}

/**
 * X25519 ignores bit 255 and reduces values >= p = 2^255 - 19, so one key has several 32-byte
 * spellings; only the canonical one (< p) is accepted, or "keys unused" could be evaded.
 */
function isCanonicalX25519(key: Uint8Array): boolean {
  if ((key[31]! & 0x80) !== 0) return false;
  // key >= p only when bytes 1..30 are 0xff, byte 31 is 0x7f and byte 0 is >= 0xed.
  if (key[31] !== 0x7f || key[0]! < 0xed) return true;
  for (let i = 1; i < 31; i++) if (key[i] !== 0xff) return true;
  return false;
}

/**
 * The canonical encodings (< p) of the points of low order on Curve25519: 0, 1, the two points
 * of order 8, and p - 1. X25519 with any of them yields all zeros. Comparing costs nothing next
 * to a scalar multiplication, and non-canonical spellings are refused before this check.
 */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
function isLowOrder(boxPublic: Uint8Array): boolean {
  return LOW_ORDER_POINTS.includes(toHex(boxPublic));
}

export interface NewCardFields {
  identity: string;
  deviceId: string;
  deviceName?: string;
  /** Unix seconds; defaults to now. */
  createdAt?: number;
  previousCardId?: string;
}

/**
 * Makes the registration request for a device: the snapshot bytes (b64u) and the device's self
 * signature over them, ready for POST /v1/cards.
 */
export function createCardRequest(keys: DeviceKeys, fields: NewCardFields): CardRequest {
  const snapshotBytes = newSnapshot(keys, fields);
  return cardRequest(snapshotBytes, sign(concatBytes(CARD_SELF_LABEL, snapshotBytes), keys.signSecretKey));
}

/** createCardRequest for keys behind AsyncDeviceKeys (e.g. non-extractable WebCrypto keys). */
export async function createCardRequestAsync(keys: AsyncDeviceKeys, fields: NewCardFields): Promise<CardRequest> {
  const snapshotBytes = newSnapshot(keys, fields);
  return cardRequest(snapshotBytes, await keys.sign(concatBytes(CARD_SELF_LABEL, snapshotBytes)));
}

function cardRequest(snapshotBytes: Uint8Array, selfSignature: Uint8Array): CardRequest {
  return { snapshot: toB64u(snapshotBytes), selfSignature: toB64u(selfSignature) };
}

/** The snapshot bytes of a new card, checked as the server will check them before anything leaves the device. */
function newSnapshot(keys: { signPublicKey: Uint8Array; boxPublicKey: Uint8Array }, fields: NewCardFields): Uint8Array {
  const snapshot: CardSnapshot = {
    v: CARD_VERSION,
    identity: fields.identity,
    deviceId: fields.deviceId,
    deviceName: fields.deviceName ?? '',
    signKey: toB64u(keys.signPublicKey),
    boxKey: toB64u(keys.boxPublicKey),
    createdAt: fields.createdAt ?? Math.floor(Date.now() / 1000),
  };
  if (fields.previousCardId !== undefined) snapshot.previousCardId = fields.previousCardId;
  const snapshotBytes = utf8(JSON.stringify(snapshot));
  parseSnapshot(snapshotBytes);
  return snapshotBytes;
}

/** Parses a registration request and verifies its self-signature (the server's first step). */
export function parseCardRequest(request: CardRequest): SelfSignedCard {
  if (typeof request !== 'object' || request === null) throw malformed('card request must be an object');
  if (typeof request.snapshot !== 'string' || typeof request.selfSignature !== 'string') {
    throw malformed('card request needs "snapshot" and "selfSignature" strings');
  }
  // Bound the decoding work before decoding: b64u of 2048 bytes is 2731 characters.
  if (request.snapshot.length > Math.ceil((MAX_SNAPSHOT_BYTES * 4) / 3)) {
    throw new E2EEError(ErrorCode.CARD_TOO_LARGE, `card snapshot exceeds ${MAX_SNAPSHOT_BYTES} bytes`);
  }
  const snapshotBytes = fromB64u(request.snapshot, 'snapshot');
  const fields = parseSnapshot(snapshotBytes);
  const selfSignature = fromB64uExact(request.selfSignature, SIGNATURE_BYTES, 'selfSignature');
  const signPublicKey = fromB64u(fields.signKey);
  if (!verify(selfSignature, concatBytes(CARD_SELF_LABEL, snapshotBytes), signPublicKey)) {
    throw new E2EEError(ErrorCode.CARD_SELF_SIGNATURE_INVALID, 'card self-signature does not verify');
  }
  return { id: cardIdOf(snapshotBytes), snapshotBytes, fields, signPublicKey, boxPublicKey: fromB64u(fields.boxKey), selfSignature };
}

/** Countersigns a self-signed card with the AppKey, giving its wire form. */
export function countersignCard(card: SelfSignedCard, appKey: AppKey, revokedAt: number | null = null): CardWire {
  const appSignature = sign(concatBytes(CARD_APP_LABEL, card.snapshotBytes, card.selfSignature), appKey.secretKey);
  return {
    id: card.id,
    snapshot: toB64u(card.snapshotBytes),
    selfSignature: toB64u(card.selfSignature),
    appSignature: toB64u(appSignature),
    appKeyId: appKey.appKeyId,
    revokedAt,
  };
}

/** Pins AppKey public keys given as b64u (the client configuration's `appPublicKeys`). */
export function trustAppKeys(publicKeys: readonly string[]): TrustedAppKey[] {
  return publicKeys.map((text) => {
    const publicKey = fromB64uExact(text, KEY_BYTES, 'appPublicKey');
    return { publicKey, appKeyId: appKeyIdOf(publicKey) };
  });
}

export interface VerifyCardOptions {
  /** The pinned AppKey public keys: never only what the server says today. */
  trustedAppKeys: readonly TrustedAppKey[];
  /** The identity the caller expects this card to belong to. */
  identity?: string;
  /** Accept a revoked card (to verify a message sent before the revocation). Default false. */
  allowRevoked?: boolean;
}

/**
 * Verifies a card in wire form: shape, id, snapshot members, expected identity, self-signature,
 * pinned AppKey and its countersignature, revocation. Throws an E2EEError naming the first failure.
 */
export function verifyCard(wire: unknown, options: VerifyCardOptions): VerifiedCard {
  const card = wire as CardWire;
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) throw malformed('card must be a JSON object');
  for (const key of Object.keys(wire)) if (!WIRE_MEMBERS.includes(key)) throw malformed(`card has unknown member "${key}"`);
  for (const key of ['id', 'snapshot', 'selfSignature', 'appSignature', 'appKeyId'] as const) {
    if (typeof card[key] !== 'string') throw malformed(`card "${key}" must be a string`);
  }
  if (!CARD_ID_PATTERN.test(card.id)) throw malformed('card "id" must be 64 lowercase hex characters');
  if (!/^[0-9a-f]{16}$/.test(card.appKeyId)) throw malformed('card "appKeyId" must be 16 lowercase hex characters');
  const revokedAt = card.revokedAt;
  if (revokedAt !== null && !(typeof revokedAt === 'number' && Number.isSafeInteger(revokedAt) && revokedAt >= 0)) {
    throw malformed('card "revokedAt" must be null or unix seconds');
  }
  if (card.snapshot.length > Math.ceil((MAX_SNAPSHOT_BYTES * 4) / 3)) {
    throw new E2EEError(ErrorCode.CARD_TOO_LARGE, `card snapshot exceeds ${MAX_SNAPSHOT_BYTES} bytes`);
  }
  const snapshotBytes = fromB64u(card.snapshot, 'snapshot');
  if (cardIdOf(snapshotBytes) !== card.id) throw new E2EEError(ErrorCode.CARD_ID_MISMATCH, 'card id does not match its snapshot');
  const fields = parseSnapshot(snapshotBytes);
  if (options.identity !== undefined && fields.identity !== options.identity) {
    throw new E2EEError(ErrorCode.CARD_IDENTITY_MISMATCH, `card belongs to "${fields.identity}", expected "${options.identity}"`);
  }
  const selfSignature = fromB64uExact(card.selfSignature, SIGNATURE_BYTES, 'selfSignature');
  const appSignature = fromB64uExact(card.appSignature, SIGNATURE_BYTES, 'appSignature');
  const signPublicKey = fromB64u(fields.signKey);
  if (!verify(selfSignature, concatBytes(CARD_SELF_LABEL, snapshotBytes), signPublicKey)) {
    throw new E2EEError(ErrorCode.CARD_SELF_SIGNATURE_INVALID, 'card self-signature does not verify');
  }
  const appKey = options.trustedAppKeys.find((k) => k.appKeyId === card.appKeyId);
  if (!appKey) throw new E2EEError(ErrorCode.CARD_APP_KEY_UNTRUSTED, `card is signed by app key ${card.appKeyId}, which is not pinned`);
  if (!verify(appSignature, concatBytes(CARD_APP_LABEL, snapshotBytes, selfSignature), appKey.publicKey)) {
    throw new E2EEError(ErrorCode.CARD_APP_SIGNATURE_INVALID, 'card app signature does not verify');
  }
  if (revokedAt !== null && !options.allowRevoked) throw new E2EEError(ErrorCode.CARD_REVOKED, `card was revoked at ${revokedAt}`);
  return {
    id: card.id,
    snapshotBytes,
    fields,
    signPublicKey,
    boxPublicKey: fromB64u(fields.boxKey),
    selfSignature,
    identity: fields.identity,
    appKeyId: card.appKeyId,
    revokedAt,
    wire: { id: card.id, snapshot: card.snapshot, selfSignature: card.selfSignature, appSignature: card.appSignature, appKeyId: card.appKeyId, revokedAt },
  };
}
