/**
 * Helpers shared by the crypto core's tests: fixtures, typed-error assertions, test devices and
 * cards, a card forger that signs arbitrary snapshot bytes, and an independent envelope builder
 * written from docs/PROTOCOL.md sections 5 and 6 (so the tests can make near-valid envelopes the sealer never
 * would, and cross-check the sealer's bytes against the contract).
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import {
  CARD_APP_LABEL,
  CARD_SELF_LABEL,
  COMMIT_LABEL,
  E2EEError,
  ErrorCode,
  MESSAGE_LABEL,
  PADDING_BLOCK,
  REWRAP_LABEL,
  WRAP_LABEL,
  appKeyIdOf,
  countersignCard,
  createCardRequest,
  generateAppKey,
  generateDeviceKeys,
  openEnvelope,
  parseCardRequest,
  sealEnvelope,
  toB64u,
  trustAppKeys,
  verifyCard,
  type AppKey,
  type CardRequest,
  type CardWire,
  type DeviceKeys,
  type EnvelopeOpener,
  type EnvelopeSender,
  type OpenOptions,
  type OpenedEnvelope,
  type SealInput,
  type SealedEnvelope,
  type TrustedAppKey,
  type VerifiedCard,
} from '../../shared/index.js';
import { blake2b256, chachaSeal, sign, x25519, x25519Base, xchachaSeal } from '../../shared/sodium.js';

// ---------------------------------------------------------------------------------------------
// Bytes (independent of shared/encoding.ts, so encoding bugs cannot cancel out)

export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`test helper: bad hex ${hex}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function bytesToHex(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : Buffer.from(bytes).toString('hex');
}

/** Node's base64url encoder (no padding): the reference the project's encoder must agree with. */
export function refB64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

export const textBytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * Changes the unused low bits of the last character of a b64u string (when it has any), giving
 * a non-canonical spelling of the same bytes that a lax decoder would accept.
 */
export function nonCanonicalB64u(canonical: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  if (canonical.length % 4 === 0) throw new Error('test helper: no spare bits in a b64u string of length 0 mod 4');
  const last = alphabet.indexOf(canonical[canonical.length - 1]!);
  return canonical.slice(0, -1) + alphabet[last ^ 1]!;
}

// ---------------------------------------------------------------------------------------------
// Wycheproof

const FIXTURES = new URL('../fixtures/', import.meta.url);

export function loadWycheproof<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`wycheproof/${name}`, FIXTURES), 'utf8')) as T;
}

interface XdhFile {
  testGroups: { tests: { public: string; shared: string; flags: string[] }[] }[];
}

/**
 * Every distinct X25519 public key in the Wycheproof file that yields an all-zero shared secret:
 * the points of order 1, 2, 4 and 8, in canonical and non-canonical encodings.
 */
export function lowOrderPoints(): Uint8Array[] {
  const file = loadWycheproof<XdhFile>('x25519_test.json');
  const set = new Set<string>();
  for (const g of file.testGroups) for (const t of g.tests) if (/^(00)+$/.test(t.shared)) set.add(t.public);
  return [...set].sort().map(hexToBytes);
}

// ---------------------------------------------------------------------------------------------
// Typed errors

export const ALL_ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Runs fn and returns what it threw; fails the test when it returns normally. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned normally');
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}${err instanceof E2EEError ? ` [${err.code}]` : ''}`;
  return String(err);
}

/** Asserts fn throws an E2EEError with exactly this code, and returns it. */
export function expectCode(fn: () => unknown, code: ErrorCode): E2EEError {
  const err = thrownBy(fn);
  if (!(err instanceof E2EEError)) throw new Error(`expected E2EEError ${code}, got ${describeError(err)}`, { cause: err });
  expect(err.code, err.message).toBe(code);
  return err;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: E2EEError };

/**
 * Runs fn; an E2EEError whose code is a known ErrorCode (and in `allowed`, when given) becomes a
 * failed outcome; any other exception (TypeError, RangeError, libsodium's own errors, unknown
 * codes) fails the test with a description.
 */
export function typedOutcome<T>(fn: () => T, allowed?: ReadonlySet<string>): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (!(err instanceof E2EEError)) throw new Error(`untyped exception: ${describeError(err)}`, { cause: err });
    if (!ALL_ERROR_CODES.has(err.code)) throw new Error(`E2EEError with unknown code ${String(err.code)}`, { cause: err });
    if (allowed && !allowed.has(err.code)) throw new Error(`unexpected error code ${err.code}: ${err.message}`, { cause: err });
    return { ok: false, error: err };
  }
}

/** Asserts fn throws an E2EEError with a known code (from `allowed`, when given). */
export function expectTypedError(fn: () => unknown, allowed?: ReadonlySet<string>): E2EEError {
  const outcome = typedOutcome(fn, allowed);
  if (outcome.ok) throw new Error('expected an E2EEError, but the call succeeded');
  return outcome.error;
}

/** The codes each function of the core may report, by concern. */
export const CARD_CODES: ReadonlySet<string> = new Set([
  ErrorCode.ENCODING_INVALID,
  ErrorCode.CARD_MALFORMED,
  ErrorCode.CARD_TOO_LARGE,
  ErrorCode.CARD_ID_MISMATCH,
  ErrorCode.CARD_SELF_SIGNATURE_INVALID,
  ErrorCode.CARD_APP_SIGNATURE_INVALID,
  ErrorCode.CARD_APP_KEY_UNTRUSTED,
  ErrorCode.CARD_IDENTITY_MISMATCH,
  ErrorCode.CARD_REVOKED,
  ErrorCode.CARD_WEAK_KEY,
]);
export const ENVELOPE_PARSE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.ENVELOPE_MALFORMED,
  ErrorCode.ENVELOPE_TOO_LARGE,
  ErrorCode.ENVELOPE_UNSUPPORTED_VERSION,
]);
export const ENVELOPE_OPEN_CODES: ReadonlySet<string> = new Set(
  Object.values(ErrorCode).filter((c) => c.startsWith('ENVELOPE_') || c === ErrorCode.REWRAP_MALFORMED),
);

// ---------------------------------------------------------------------------------------------
// Apps, devices, cards

/** An AppKey made for the test, and the trust list that pins it. */
export interface AppKeyFixture {
  key: AppKey;
  trusted: TrustedAppKey[];
}

export function makeApp(): AppKeyFixture {
  const key = generateAppKey();
  return { key, trusted: trustAppKeys([toB64u(key.publicKey)]) };
}

/** A device with a card countersigned offline by an AppKeyFixture (no server): what sealing and opening need. */
export interface DeviceFixture {
  identity: string;
  keys: DeviceKeys;
  request: CardRequest;
  wire: CardWire;
  /** The card as verifyCard returns it (revoked cards verified with allowRevoked). */
  card: VerifiedCard;
  opener: EnvelopeOpener;
  sender: EnvelopeSender;
}

let deviceCounter = 0;

/** A device with fresh keys, registered (countersigned by `app`) and verified. */
export function makeDevice(app: AppKeyFixture, identity: string, options: { deviceId?: string; revokedAt?: number | null } = {}): DeviceFixture {
  const keys = generateDeviceKeys();
  const request = createCardRequest(keys, { identity, deviceId: options.deviceId ?? `device-${++deviceCounter}`, deviceName: 'test device' });
  const wire = countersignCard(parseCardRequest(request), app.key, options.revokedAt ?? null);
  const card = verifyCard(wire, { trustedAppKeys: app.trusted, identity, allowRevoked: true });
  return {
    identity,
    keys,
    request,
    wire,
    card,
    opener: { cardId: card.id, boxSecretKey: keys.boxSecretKey, boxPublicKey: keys.boxPublicKey },
    sender: { cardId: card.id, signSecretKey: keys.signSecretKey },
  };
}

/** The members of a valid snapshot for these keys, as a plain object (insertion order = JSON order). */
export function snapshotMembers(keys: DeviceKeys, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    identity: 'alice',
    deviceId: 'laptop-1',
    deviceName: 'Alice laptop',
    signKey: toB64u(keys.signPublicKey),
    boxKey: toB64u(keys.boxPublicKey),
    createdAt: 1_760_000_000,
    ...overrides,
  };
}

export interface ForgeOptions {
  /** Signs the self-signature with these keys instead of `keys` (a forger's key). */
  selfSigner?: DeviceKeys;
  /** Replaces the self-signature bytes outright. */
  selfSignature?: Uint8Array;
  /** Countersigns with this AppKey instead of `app`. */
  appSigner?: AppKey;
  /** Claims this appKeyId instead of the signer's. */
  appKeyId?: string;
  /** Claims this card id instead of hex(BLAKE2b-256(snapshot)). */
  id?: string;
  revokedAt?: number | null;
}

/**
 * Signs ARBITRARY snapshot bytes exactly as a device and the service would (docs/PROTOCOL.md section 4,
 * with the label constants), without parsing them: every forged card in the tests is correctly
 * signed except where the forgery is the signature itself, so the check under test is the one
 * that fails.
 */
export function signSnapshot(snapshot: Uint8Array | string, keys: DeviceKeys, app: AppKey, options: ForgeOptions = {}): CardWire {
  const bytes = typeof snapshot === 'string' ? textBytes(snapshot) : snapshot;
  const selfSignature = options.selfSignature ?? sign(cat(CARD_SELF_LABEL, bytes), (options.selfSigner ?? keys).signSecretKey);
  const appSigner = options.appSigner ?? app;
  const appSignature = sign(cat(CARD_APP_LABEL, bytes, selfSignature), appSigner.secretKey);
  return {
    id: options.id ?? bytesToHex(blake2b256(bytes))!,
    snapshot: refB64u(bytes),
    selfSignature: refB64u(selfSignature),
    appSignature: refB64u(appSignature),
    appKeyId: options.appKeyId ?? appKeyIdOf(appSigner.publicKey),
    revokedAt: options.revokedAt ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Envelopes

/** A conversation SID of Twilio's usual 34 characters. */
export const CONVERSATION = 'CH0123456789abcdef0123456789abcdef';
export const OTHER_CONVERSATION = 'CHfedcba9876543210fedcba9876543210';

export function seal(sender: DeviceFixture, recipients: readonly DeviceFixture[], body: string, extra: Partial<SealInput> = {}): SealedEnvelope {
  return sealEnvelope({ sender: sender.sender, recipients: recipients.map((d) => d.card), conversationSid: CONVERSATION, body, ...extra });
}

/** Opens as `me`, verifying against `sender`'s card, in CONVERSATION, posted by the sender's identity. */
export function openAs(envelope: Parameters<typeof openEnvelope>[0], me: DeviceFixture, sender: DeviceFixture, extra: Partial<OpenOptions> = {}): OpenedEnvelope {
  return openEnvelope(envelope, {
    recipient: me.opener,
    senderCard: sender.card,
    conversationSid: CONVERSATION,
    author: sender.identity,
    ...extra,
  });
}

export interface RawEnvelopeInput {
  senderCardId: string;
  recipients: readonly { id: string; boxPublicKey: Uint8Array }[];
  /** The payload bytes (need not be valid JSON). */
  payload: Uint8Array;
  /** Signs with this Ed25519 secret key; without it the signature is 64 zero bytes. */
  signSecretKey?: Uint8Array;
  /** Extra zero bytes after the normal padding (a multiple of 128 keeps the layout valid). */
  extraPadding?: number;
  cek?: Uint8Array;
  /** Wraps these content keys in the slots instead of `cek` (slot i gets slotCeks[i]). */
  slotCeks?: readonly Uint8Array[];
  ephemeralSecret?: Uint8Array;
  nonce?: Uint8Array;
  version?: number;
  flags?: number;
}

/**
 * Builds an envelope from docs/PROTOCOL.md sections 5 and 6 with the primitives, independently of
 * sealEnvelope: any payload, optional signature, any padding, any header bytes.
 */
export function buildEnvelope(input: RawEnvelopeInput): { binary: Uint8Array; cek: Uint8Array } {
  const cek = input.cek ?? crypto.getRandomValues(new Uint8Array(32));
  const e = input.ephemeralSecret ?? crypto.getRandomValues(new Uint8Array(32));
  const nonce = input.nonce ?? crypto.getRandomValues(new Uint8Array(24));
  const E = x25519Base(e);
  const n = input.recipients.length;
  const header: Uint8Array[] = [
    Uint8Array.of(input.version ?? 1, input.flags ?? 0),
    hexToBytes(input.senderCardId),
    E,
    blake2b256(COMMIT_LABEL, cek),
    Uint8Array.of(n >> 8, n & 0xff),
  ];
  input.recipients.forEach((r, i) => {
    const s = x25519(e, r.boxPublicKey);
    if (!s) throw new Error('test helper: low-order recipient');
    const kek = blake2b256(cat(WRAP_LABEL, E, r.boxPublicKey), s);
    header.push(hexToBytes(r.id).subarray(0, 8), chachaSeal(kek, new Uint8Array(12), input.slotCeks?.[i] ?? cek, null));
  });
  const headerBytes = cat(...header);
  const signature = input.signSecretKey
    ? sign(cat(MESSAGE_LABEL, blake2b256(headerBytes), input.payload), input.signSecretKey)
    : new Uint8Array(64);
  const unpadded = 64 + input.payload.length;
  const padded = Math.ceil(unpadded / PADDING_BLOCK) * PADDING_BLOCK + (input.extraPadding ?? 0);
  const plaintext = new Uint8Array(padded);
  plaintext.set(signature, 0);
  plaintext.set(input.payload, 64);
  const ad = cat(headerBytes, nonce);
  return { binary: cat(ad, xchachaSeal(cek, nonce, plaintext, ad)), cek };
}

/** A rewrap built by hand from docs/PROTOCOL.md sections 5 and 6 (not with createRewrap). */
export function buildRewrap(cek: Uint8Array, envelopeBinary: Uint8Array, recipientBoxPublicKey: Uint8Array): string {
  const e = crypto.getRandomValues(new Uint8Array(32));
  const E = x25519Base(e);
  const s = x25519(e, recipientBoxPublicKey);
  if (!s) throw new Error('test helper: low-order recipient');
  const kek = blake2b256(cat(REWRAP_LABEL, E, recipientBoxPublicKey, blake2b256(envelopeBinary)), s);
  return refB64u(cat(E, chachaSeal(kek, new Uint8Array(12), cek, null)));
}

/** The JSON payload of docs/PROTOCOL.md sections 5 and 6, as bytes. */
export function payloadBytes(fields: { conversationSid?: string; messageId?: string; sentAt?: number; body?: string } = {}): Uint8Array {
  return textBytes(
    JSON.stringify({
      conversationSid: fields.conversationSid ?? CONVERSATION,
      messageId: fields.messageId ?? '00112233445566778899aabbccddeeff',
      sentAt: fields.sentAt ?? 1_760_000_000_000,
      body: fields.body ?? 'hello',
    }),
  );
}
