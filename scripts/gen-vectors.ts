/**
 * Generates docs/test-vectors.json: fixed keys and fixed randomness run through the real core
 * (shared/), plus invalid cards and envelopes, each with the one error code a conforming
 * implementation must report. docs/PROTOCOL.md ("Test vectors") describes the file.
 *
 *   npm run vectors          (= npx tsx scripts/gen-vectors.ts)
 *
 * Nothing here is random: every secret is BLAKE2b-256 of a label (see vectorSeed), and every
 * timestamp and message id is a constant, so the output is the same on every run and every
 * machine. test/shared/vectors.test.ts regenerates it in-process and compares byte for byte.
 *
 * Forged envelopes (a recipient stripped, a message forwarded, a CEK that does not match the
 * commitment) are built here with the primitives directly: the core refuses to make them.
 */
import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CARD_APP_LABEL,
  CARD_SELF_LABEL,
  COMMIT_LABEL,
  ENVELOPE_NONCE_BYTES,
  ENVELOPE_PREFIX,
  ErrorCode,
  KEY_ID_BYTES,
  MAX_SNAPSHOT_BYTES,
  MESSAGE_LABEL,
  PADDING_BLOCK,
  RECIPIENTS_OFFSET,
  RECIPIENT_SLOT_BYTES,
  SIGNATURE_BYTES,
  WRAP_LABEL,
  appKeyFromSeed,
  concatBytes,
  countersignCard,
  createCardRequest,
  createRewrap,
  deviceKeysFromSecrets,
  fromB64u,
  fromHex,
  orgKeyFromSeed,
  parseCardRequest,
  parseEnvelope,
  ready,
  sealEnvelope,
  toB64u,
  toHex,
  utf8,
  type AppKey,
  type CardWire,
  type DeviceKeys,
  type EnvelopePayload,
  type ErrorCode as ErrorCodeType,
} from '../shared/index.js';
import { blake2b256, chachaSeal, sign, x25519, x25519Base, xchachaOpen, xchachaSeal } from '../shared/sodium.js';

// ---------------------------------------------------------------------------------------------
// The file's shape (docs/PROTOCOL.md "Test vectors"). Bytes are b64u; ids are hex.

export interface AppKeyVector {
  seed: string;
  publicKey: string;
  appKeyId: string;
}

export interface DeviceVector {
  name: string;
  signSeed: string;
  boxSecret: string;
  card: CardWire;
}

export interface EnvelopeVector {
  name: string;
  sender: string;
  recipients: string[];
  payload: EnvelopePayload;
  cek: string;
  ephemeralSecret: string;
  nonce: string;
  envelope: string;
}

export interface RewrapVector {
  envelope: string;
  recipientBoxSecret: string;
  ephemeralSecret: string;
  rewrap: string;
}

export interface InvalidCardVector {
  name: string;
  card: unknown;
  identity?: string;
  error: ErrorCodeType;
}

export interface InvalidEnvelopeVector {
  name: string;
  recipient: string;
  sender?: string;
  conversationSid?: string;
  envelope: string;
  error: ErrorCodeType;
}

export interface TestVectors {
  appKey: AppKeyVector;
  devices: DeviceVector[];
  envelopes: EnvelopeVector[];
  rewraps: RewrapVector[];
  invalidCards: InvalidCardVector[];
  invalidEnvelopes: InvalidEnvelopeVector[];
}

// ---------------------------------------------------------------------------------------------
// Fixed inputs.

/** Prefix of every seed label. Not a protocol label: it only names the vectors' secrets. */
export const VECTOR_SEED_PREFIX = 'twilio-e2ee test vectors/';

/** A 32-byte secret: BLAKE2b-256(UTF-8(VECTOR_SEED_PREFIX || label)), unkeyed. */
export function vectorSeed(label: string): Uint8Array {
  return blake2b256(utf8(VECTOR_SEED_PREFIX + label));
}

/** The conversation every vector message is sealed for (a Twilio Conversation SID is "CH" + 32 hex). */
export const CONVERSATION_SID = 'CH0123456789abcdef0123456789abcdef';
/** Another conversation, for the re-posting case. */
export const OTHER_CONVERSATION_SID = 'CHfedcba9876543210fedcba9876543210';

/** 2026-01-01T00:00:00Z, unix seconds. */
const T0 = 1767225600;

/** An X25519 point of order 8 (from the list of low-order points in libsodium and RFC 7748 discussions). */
const LOW_ORDER_POINT = fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800');

interface DeviceSpec {
  name: string;
  identity: string;
  deviceName: string;
  createdAt: number;
  /** Label of an earlier card of the same device that this one replaces. */
  replaces?: string;
  /** The OrgCard: secrets derived from the OrgKey seed instead of from labels. */
  org?: boolean;
}

const DEVICE_SPECS: DeviceSpec[] = [
  { name: 'alice-laptop', identity: 'alice', deviceName: 'Alice’s laptop', createdAt: T0 },
  { name: 'alice-phone', identity: 'alice', deviceName: 'Téléphone d’Alice', createdAt: T0 + 3600, replaces: 'alice-phone-2025' },
  { name: 'bob-laptop', identity: 'bob', deviceName: 'Bob "the builder" laptop', createdAt: T0 + 60 },
  { name: 'carol-laptop', identity: 'carol', deviceName: '', createdAt: T0 + 120 },
  { name: 'org', identity: 'org:acme', deviceName: 'Acme history', createdAt: T0, org: true },
];

interface EnvelopeSpec {
  name: string;
  sender: string;
  recipients: string[];
  sentAt: number;
  body: string | ((payloadOverhead: number) => string);
}

const ENVELOPE_SPECS: EnvelopeSpec[] = [
  // The sender's own other devices are recipients too, as the client wrapper does it.
  { name: 'alice-to-bob', sender: 'alice-laptop', recipients: ['bob-laptop', 'alice-phone'], sentAt: T0 * 1000 + 300_000, body: 'Hi Bob! Lunch at noon?' },
  {
    name: 'bob-to-alice',
    sender: 'bob-laptop',
    recipients: ['alice-laptop', 'alice-phone', 'bob-laptop'],
    sentAt: T0 * 1000 + 360_123,
    body: 'Sure 🙂\n"Café Zoë" at 12:00 — see you\\there',
  },
  { name: 'empty-body', sender: 'alice-phone', recipients: ['bob-laptop'], sentAt: T0 * 1000 + 420_000, body: '' },
  // signature(64) || payload fills whole blocks exactly: no padding byte at all.
  {
    name: 'no-padding',
    sender: 'carol-laptop',
    recipients: ['alice-laptop', 'bob-laptop'],
    sentAt: T0 * 1000 + 480_000,
    body: (overhead) => 'x'.repeat(3 * PADDING_BLOCK - SIGNATURE_BYTES - overhead),
  },
];

interface RewrapSpec {
  envelope: string;
  recipient: string;
}

const REWRAP_SPECS: RewrapSpec[] = [
  { envelope: 'alice-to-bob', recipient: 'org' }, // the org backup posted with the message
  { envelope: 'alice-to-bob', recipient: 'carol-laptop' }, // history sync for a later participant
  { envelope: 'bob-to-alice', recipient: 'org' },
];

// ---------------------------------------------------------------------------------------------

interface Device {
  spec: DeviceSpec;
  keys: DeviceKeys;
  card: CardWire;
}

interface Sealed {
  spec: EnvelopeSpec;
  text: string;
  binary: Uint8Array;
  cek: Uint8Array;
  ephemeralSecret: Uint8Array;
  nonce: Uint8Array;
  payload: EnvelopePayload;
  payloadBytes: Uint8Array;
  signature: Uint8Array;
}

function deviceKeysFor(spec: DeviceSpec): DeviceKeys {
  if (spec.org) {
    const org = orgKeyFromSeed(vectorSeed('org-key'));
    return org.keys;
  }
  return deviceKeysFromSecrets(vectorSeed(`device/${spec.name}/sign`), vectorSeed(`device/${spec.name}/box`));
}

function makeCard(keys: DeviceKeys, spec: DeviceSpec, appKey: AppKey, previousCardId?: string): CardWire {
  const request = createCardRequest(keys, {
    identity: spec.identity,
    deviceId: spec.name,
    deviceName: spec.deviceName,
    createdAt: spec.createdAt,
    ...(previousCardId !== undefined ? { previousCardId } : {}),
  });
  return countersignCard(parseCardRequest(request), appKey);
}

/** A card from hand-made snapshot bytes, self-signed and countersigned: the core's parser is not consulted. */
function rawCard(snapshotBytes: Uint8Array, signer: DeviceKeys, appKey: AppKey, revokedAt: number | null = null): CardWire {
  const selfSignature = sign(concatBytes(CARD_SELF_LABEL, snapshotBytes), signer.signSecretKey);
  const appSignature = sign(concatBytes(CARD_APP_LABEL, snapshotBytes, selfSignature), appKey.secretKey);
  return {
    id: toHex(blake2b256(snapshotBytes)),
    snapshot: toB64u(snapshotBytes),
    selfSignature: toB64u(selfSignature),
    appSignature: toB64u(appSignature),
    appKeyId: appKey.appKeyId,
    revokedAt,
  };
}

function snapshotOf(card: CardWire): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(fromB64u(card.snapshot))) as Record<string, unknown>;
}

function payloadOverhead(conversationSid: string, sentAt: number): number {
  const sample: EnvelopePayload = { conversationSid, messageId: '0'.repeat(32), sentAt, body: '' };
  return utf8(JSON.stringify(sample)).length;
}

/** Opens an envelope we sealed, with its known CEK, to get at the signature (for the forgeries). */
function signatureOf(binary: Uint8Array, cek: Uint8Array): Uint8Array {
  const parsed = parseEnvelope(binary);
  const ad = binary.subarray(0, parsed.headerEnd + ENVELOPE_NONCE_BYTES);
  const plaintext = xchachaOpen(cek, parsed.nonce, parsed.ciphertext, ad);
  if (!plaintext) throw new Error('gen-vectors: own envelope does not decrypt');
  return plaintext.slice(0, SIGNATURE_BYTES);
}

interface ForgedSlot {
  cardId: string;
  boxPublicKey: Uint8Array;
  /** The key wrapped in this slot. */
  cek: Uint8Array;
}

interface ForgeSpec {
  senderCardId: string;
  ephemeralSecret: Uint8Array;
  /** The commitment is made to this key. */
  commitmentCek: Uint8Array;
  slots: ForgedSlot[];
  nonce: Uint8Array;
  /** The plaintext is encrypted under this key. */
  contentCek: Uint8Array;
  payloadBytes: Uint8Array;
  /** Either a signing key (sign the forged header) or a signature to reuse verbatim. */
  signWith: Uint8Array | { signature: Uint8Array };
  /** Zero bytes appended beyond the normal padding. */
  extraPadding?: number;
}

/**
 * Builds an envelope binary byte by byte from its parts, following docs/PROTOCOL.md "Envelope v1",
 * so that one part at a time can be made wrong.
 */
function forgeEnvelope(f: ForgeSpec): Uint8Array {
  const E = x25519Base(f.ephemeralSecret);
  const n = f.slots.length;
  const header = new Uint8Array(RECIPIENTS_OFFSET + n * RECIPIENT_SLOT_BYTES);
  header[0] = 1;
  header[1] = 0;
  header.set(fromHex(f.senderCardId), 2);
  header.set(E, 34);
  header.set(blake2b256(COMMIT_LABEL, f.commitmentCek), 66);
  header[98] = n >> 8;
  header[99] = n & 0xff;
  f.slots.forEach((slot, i) => {
    const shared = x25519(f.ephemeralSecret, slot.boxPublicKey);
    if (!shared) throw new Error('gen-vectors: low-order recipient');
    const kek = blake2b256(concatBytes(WRAP_LABEL, E, slot.boxPublicKey), shared);
    const o = RECIPIENTS_OFFSET + i * RECIPIENT_SLOT_BYTES;
    header.set(fromHex(slot.cardId).subarray(0, KEY_ID_BYTES), o);
    header.set(chachaSeal(kek, new Uint8Array(12), slot.cek, null), o + KEY_ID_BYTES);
  });
  const signature =
    f.signWith instanceof Uint8Array ? sign(concatBytes(MESSAGE_LABEL, blake2b256(header), f.payloadBytes), f.signWith) : f.signWith.signature;
  const padded = Math.ceil((SIGNATURE_BYTES + f.payloadBytes.length) / PADDING_BLOCK) * PADDING_BLOCK + (f.extraPadding ?? 0);
  const plaintext = new Uint8Array(padded);
  plaintext.set(signature, 0);
  plaintext.set(f.payloadBytes, SIGNATURE_BYTES);
  const ad = concatBytes(header, f.nonce);
  return concatBytes(ad, xchachaSeal(f.contentCek, f.nonce, plaintext, ad));
}

function envelopeText(binary: Uint8Array): string {
  return ENVELOPE_PREFIX + toB64u(binary);
}

/** A copy of `binary` with `edit` applied. */
function patched(binary: Uint8Array, edit: (copy: Uint8Array) => void): Uint8Array {
  const copy = binary.slice();
  edit(copy);
  return copy;
}

function flip(bytes: Uint8Array, offset: number, mask: number): void {
  bytes[offset] = bytes[offset]! ^ mask;
}

// ---------------------------------------------------------------------------------------------

/** Builds the whole vector set. Deterministic: the same output on every run. */
export async function generateVectors(): Promise<TestVectors> {
  await ready();

  const appKey = appKeyFromSeed(vectorSeed('app-key'));

  // Devices and their cards.
  const devices = new Map<string, Device>();
  for (const spec of DEVICE_SPECS) {
    const keys = deviceKeysFor(spec);
    let previousCardId: string | undefined;
    if (spec.replaces !== undefined) {
      const oldKeys = deviceKeysFromSecrets(vectorSeed(`device/${spec.replaces}/sign`), vectorSeed(`device/${spec.replaces}/box`));
      previousCardId = makeCard(oldKeys, { ...spec, createdAt: spec.createdAt - 86_400 * 30 }, appKey).id;
    }
    devices.set(spec.name, { spec, keys, card: makeCard(keys, spec, appKey, previousCardId) });
  }
  const device = (name: string): Device => {
    const d = devices.get(name);
    if (!d) throw new Error(`gen-vectors: no device ${name}`);
    return d;
  };
  const recipientOf = (name: string) => ({ id: device(name).card.id, boxPublicKey: device(name).keys.boxPublicKey });

  // Envelopes.
  const sealed = new Map<string, Sealed>();
  for (const spec of ENVELOPE_SPECS) {
    const sender = device(spec.sender);
    const randomness = {
      cek: vectorSeed(`envelope/${spec.name}/cek`),
      ephemeralSecret: vectorSeed(`envelope/${spec.name}/ephemeral`),
      nonce: vectorSeed(`envelope/${spec.name}/nonce`).slice(0, ENVELOPE_NONCE_BYTES),
    };
    const body = typeof spec.body === 'string' ? spec.body : spec.body(payloadOverhead(CONVERSATION_SID, spec.sentAt));
    const out = sealEnvelope({
      sender: { cardId: sender.card.id, signSecretKey: sender.keys.signSecretKey },
      recipients: spec.recipients.map(recipientOf),
      conversationSid: CONVERSATION_SID,
      body,
      sentAt: spec.sentAt,
      messageId: toHex(vectorSeed(`envelope/${spec.name}/message-id`).subarray(0, 16)),
      randomness,
    });
    sealed.set(spec.name, {
      spec,
      text: out.text,
      binary: out.binary,
      ...randomness,
      payload: out.payload,
      payloadBytes: utf8(JSON.stringify(out.payload)),
      signature: signatureOf(out.binary, out.cek),
    });
  }
  const envelope = (name: string): Sealed => {
    const e = sealed.get(name);
    if (!e) throw new Error(`gen-vectors: no envelope ${name}`);
    return e;
  };

  // Rewraps.
  const rewraps: RewrapVector[] = REWRAP_SPECS.map((spec) => {
    const env = envelope(spec.envelope);
    const to = device(spec.recipient);
    const ephemeralSecret = vectorSeed(`rewrap/${spec.envelope}/${spec.recipient}/ephemeral`);
    return {
      envelope: spec.envelope,
      recipientBoxSecret: toB64u(to.keys.boxSecretKey),
      ephemeralSecret: toB64u(ephemeralSecret),
      rewrap: createRewrap(env.cek, parseEnvelope(env.binary), to.keys.boxPublicKey, ephemeralSecret),
    };
  });

  return {
    appKey: { seed: toB64u(appKey.seed), publicKey: toB64u(appKey.publicKey), appKeyId: appKey.appKeyId },
    devices: DEVICE_SPECS.map((spec) => {
      const d = device(spec.name);
      return { name: spec.name, signSeed: toB64u(d.keys.signSeed), boxSecret: toB64u(d.keys.boxSecretKey), card: d.card };
    }),
    envelopes: ENVELOPE_SPECS.map((spec) => {
      const e = envelope(spec.name);
      return {
        name: spec.name,
        sender: spec.sender,
        recipients: spec.recipients,
        payload: e.payload,
        cek: toB64u(e.cek),
        ephemeralSecret: toB64u(e.ephemeralSecret),
        nonce: toB64u(e.nonce),
        envelope: e.text,
      };
    }),
    rewraps,
    invalidCards: invalidCards(appKey, device),
    invalidEnvelopes: invalidEnvelopes(device, envelope),
  };
}

function invalidCards(appKey: AppKey, device: (name: string) => Device): InvalidCardVector[] {
  const alice = device('alice-laptop');
  const bob = device('bob-laptop');
  const aliceSnapshot = fromB64u(alice.card.snapshot);
  const rogueAppKey = appKeyFromSeed(vectorSeed('rogue-app-key'));

  // A snapshot written by hand from alice-laptop's members, with `edit` applied to its JSON text.
  const handSnapshot = (edit: (json: string) => string): Uint8Array => utf8(edit(new TextDecoder().decode(aliceSnapshot)));

  const selfSignedByBob = (() => {
    const selfSignature = sign(concatBytes(CARD_SELF_LABEL, aliceSnapshot), bob.keys.signSecretKey);
    const appSignature = sign(concatBytes(CARD_APP_LABEL, aliceSnapshot, selfSignature), appKey.secretKey);
    return { ...alice.card, selfSignature: toB64u(selfSignature), appSignature: toB64u(appSignature) };
  })();

  const rogueCard = rawCard(aliceSnapshot, alice.keys, rogueAppKey);

  const weakFields = { ...snapshotOf(alice.card), deviceId: 'alice-tablet', deviceName: '', boxKey: toB64u(LOW_ORDER_POINT) };
  const weakCard = rawCard(utf8(JSON.stringify(weakFields)), alice.keys, appKey);

  const tooLarge = handSnapshot((json) => json.slice(0, -1) + ' '.repeat(MAX_SNAPSHOT_BYTES - aliceSnapshot.length + 1) + '}');
  if (tooLarge.length !== MAX_SNAPSHOT_BYTES + 1) throw new Error('gen-vectors: too-large snapshot has the wrong size');

  if (aliceSnapshot.length % 3 === 0) throw new Error('gen-vectors: padded b64u case needs a snapshot length not a multiple of 3');

  return [
    { name: 'id-mismatch', card: { ...alice.card, id: bob.card.id }, error: ErrorCode.CARD_ID_MISMATCH },
    { name: 'self-signature-by-other-key', card: selfSignedByBob, error: ErrorCode.CARD_SELF_SIGNATURE_INVALID },
    {
      name: 'app-signature-of-other-card',
      card: { ...alice.card, appSignature: device('alice-phone').card.appSignature },
      error: ErrorCode.CARD_APP_SIGNATURE_INVALID,
    },
    { name: 'app-key-not-pinned', card: rogueCard, error: ErrorCode.CARD_APP_KEY_UNTRUSTED },
    { name: 'app-key-id-spoofed', card: { ...rogueCard, appKeyId: appKey.appKeyId }, error: ErrorCode.CARD_APP_SIGNATURE_INVALID },
    { name: 'identity-mismatch', card: bob.card, identity: 'alice', error: ErrorCode.CARD_IDENTITY_MISMATCH },
    { name: 'revoked', card: { ...alice.card, revokedAt: T0 + 86_400 }, identity: 'alice', error: ErrorCode.CARD_REVOKED },
    { name: 'low-order-box-key', card: weakCard, error: ErrorCode.CARD_WEAK_KEY },
    {
      name: 'snapshot-unknown-member',
      card: rawCard(handSnapshot((json) => json.slice(0, -1) + ',"admin":true}'), alice.keys, appKey),
      error: ErrorCode.CARD_MALFORMED,
    },
    {
      // JSON.parse would keep the last "identity"; a strict parser must refuse the snapshot.
      name: 'snapshot-duplicate-member',
      card: rawCard(handSnapshot((json) => json.replace('{"v":1,', '{"v":1,"identity":"mallory",')), alice.keys, appKey),
      error: ErrorCode.CARD_MALFORMED,
    },
    {
      name: 'snapshot-missing-member',
      card: rawCard(handSnapshot((json) => json.replace(/"deviceName":"[^"]*",/, '')), alice.keys, appKey),
      error: ErrorCode.CARD_MALFORMED,
    },
    {
      name: 'snapshot-bad-device-id',
      card: rawCard(handSnapshot((json) => json.replace('"deviceId":"alice-laptop"', '"deviceId":"alice laptop"')), alice.keys, appKey),
      error: ErrorCode.CARD_MALFORMED,
    },
    { name: 'wire-unknown-member', card: { ...alice.card, trusted: true }, error: ErrorCode.CARD_MALFORMED },
    { name: 'snapshot-too-large', card: rawCard(tooLarge, alice.keys, appKey), error: ErrorCode.CARD_TOO_LARGE },
    { name: 'snapshot-b64u-padded', card: { ...alice.card, snapshot: alice.card.snapshot + '=' }, error: ErrorCode.ENCODING_INVALID },
  ];
}

function invalidEnvelopes(device: (name: string) => Device, envelope: (name: string) => Sealed): InvalidEnvelopeVector[] {
  const aliceToBob = envelope('alice-to-bob');
  const bobToAlice = envelope('bob-to-alice');
  const base = aliceToBob.binary;
  const parsedBase = parseEnvelope(base);
  const slotOf = (name: string): ForgedSlot => ({ cardId: device(name).card.id, boxPublicKey: device(name).keys.boxPublicKey, cek: aliceToBob.cek });
  // alice-to-bob's slots: [bob-laptop, alice-phone].
  const bobSlot = RECIPIENTS_OFFSET;
  const alicePhoneSlot = RECIPIENTS_OFFSET + RECIPIENT_SLOT_BYTES;
  const alice = device('alice-laptop');
  const carol = device('carol-laptop');

  // Carol signs a message whose header names alice-laptop as the sender.
  const impersonation = sealEnvelope({
    sender: { cardId: alice.card.id, signSecretKey: carol.keys.signSecretKey },
    recipients: [{ id: device('bob-laptop').card.id, boxPublicKey: device('bob-laptop').keys.boxPublicKey }],
    conversationSid: CONVERSATION_SID,
    body: 'Please send the keys to carol.',
    sentAt: T0 * 1000 + 540_000,
    messageId: toHex(vectorSeed('invalid/impersonation/message-id').subarray(0, 16)),
    randomness: {
      cek: vectorSeed('invalid/impersonation/cek'),
      ephemeralSecret: vectorSeed('invalid/impersonation/ephemeral'),
      nonce: vectorSeed('invalid/impersonation/nonce').slice(0, ENVELOPE_NONCE_BYTES),
    },
  });

  // Bob (who knows the CEK) forwards alice's message to carol: a fresh E' and one slot for carol,
  // alice's signature kept verbatim.
  const forwarded = forgeEnvelope({
    senderCardId: alice.card.id,
    ephemeralSecret: vectorSeed('invalid/forwarded/ephemeral'),
    commitmentCek: aliceToBob.cek,
    slots: [slotOf('carol-laptop')],
    nonce: aliceToBob.nonce,
    contentCek: aliceToBob.cek,
    payloadBytes: aliceToBob.payloadBytes,
    signWith: { signature: aliceToBob.signature },
  });

  // Alice-phone (who knows the CEK) drops bob-laptop's slot from bob's message and re-encrypts.
  const stripped = forgeEnvelope({
    senderCardId: device('bob-laptop').card.id,
    ephemeralSecret: bobToAlice.ephemeralSecret,
    commitmentCek: bobToAlice.cek,
    slots: ['alice-laptop', 'alice-phone'].map((name) => ({ ...slotOf(name), cek: bobToAlice.cek })),
    nonce: bobToAlice.nonce,
    contentCek: bobToAlice.cek,
    payloadBytes: bobToAlice.payloadBytes,
    signWith: { signature: bobToAlice.signature },
  });

  // A dishonest sender wraps another key for bob than the one committed to (and used for
  // alice-phone): alice-phone reads the message, bob must get a commitment error, not a
  // different plaintext.
  const partitioned = forgeEnvelope({
    senderCardId: alice.card.id,
    ephemeralSecret: aliceToBob.ephemeralSecret,
    commitmentCek: aliceToBob.cek,
    slots: [{ ...slotOf('bob-laptop'), cek: vectorSeed('invalid/commitment-mismatch/other-cek') }, slotOf('alice-phone')],
    nonce: aliceToBob.nonce,
    contentCek: aliceToBob.cek,
    payloadBytes: aliceToBob.payloadBytes,
    signWith: alice.keys.signSecretKey,
  });

  // An honest header and signature, but two blocks of zero padding instead of at most one.
  const overPadded = forgeEnvelope({
    senderCardId: alice.card.id,
    ephemeralSecret: aliceToBob.ephemeralSecret,
    commitmentCek: aliceToBob.cek,
    slots: [slotOf('bob-laptop'), slotOf('alice-phone')],
    nonce: aliceToBob.nonce,
    contentCek: aliceToBob.cek,
    payloadBytes: aliceToBob.payloadBytes,
    signWith: alice.keys.signSecretKey,
    extraPadding: PADDING_BLOCK,
  });
  // Same header as the real envelope: the forge must reproduce it exactly.
  if (toHex(overPadded.subarray(0, parsedBase.headerEnd)) !== toHex(base.subarray(0, parsedBase.headerEnd))) {
    throw new Error('gen-vectors: forged header differs from the sealed one');
  }

  const b64 = aliceToBob.text.slice(ENVELOPE_PREFIX.length);
  if (b64.length % 4 === 0) throw new Error('gen-vectors: padded b64u case needs a length not a multiple of 4');

  const verify = { sender: 'alice-laptop', conversationSid: CONVERSATION_SID };
  return [
    { name: 'not-for-me', recipient: 'carol-laptop', envelope: aliceToBob.text, error: ErrorCode.ENVELOPE_NOT_FOR_ME },
    {
      name: 'other-conversation',
      recipient: 'bob-laptop',
      sender: 'alice-laptop',
      conversationSid: OTHER_CONVERSATION_SID,
      envelope: aliceToBob.text,
      error: ErrorCode.ENVELOPE_CONVERSATION_MISMATCH,
    },
    {
      name: 'wrong-sender-card',
      recipient: 'bob-laptop',
      sender: 'carol-laptop',
      conversationSid: CONVERSATION_SID,
      envelope: aliceToBob.text,
      error: ErrorCode.ENVELOPE_SENDER_CARD_MISMATCH,
    },
    { name: 'signed-by-other-key', recipient: 'bob-laptop', ...verify, envelope: impersonation.text, error: ErrorCode.ENVELOPE_SIGNATURE_INVALID },
    { name: 'forwarded', recipient: 'carol-laptop', ...verify, envelope: envelopeText(forwarded), error: ErrorCode.ENVELOPE_SIGNATURE_INVALID },
    {
      name: 'recipient-stripped',
      recipient: 'alice-laptop',
      sender: 'bob-laptop',
      conversationSid: CONVERSATION_SID,
      envelope: envelopeText(stripped),
      error: ErrorCode.ENVELOPE_SIGNATURE_INVALID,
    },
    { name: 'commitment-mismatch', recipient: 'bob-laptop', envelope: envelopeText(partitioned), error: ErrorCode.ENVELOPE_COMMITMENT_MISMATCH },
    {
      name: 'wrapped-key-tampered',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => flip(b, bobSlot + KEY_ID_BYTES, 0x01))),
      error: ErrorCode.ENVELOPE_DECRYPT_FAILED,
    },
    {
      // Another recipient's key id changed: bob's slot still unwraps, but the header is AD.
      name: 'header-tampered',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => flip(b, alicePhoneSlot, 0x80))),
      error: ErrorCode.ENVELOPE_DECRYPT_FAILED,
    },
    {
      name: 'ciphertext-tampered',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => flip(b, b.length - 1, 0x01))),
      error: ErrorCode.ENVELOPE_DECRYPT_FAILED,
    },
    {
      name: 'low-order-ephemeral-key',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => b.set(LOW_ORDER_POINT, 34))),
      error: ErrorCode.ENVELOPE_DECRYPT_FAILED,
    },
    { name: 'over-padded', recipient: 'bob-laptop', envelope: envelopeText(overPadded), error: ErrorCode.ENVELOPE_MALFORMED },
    {
      name: 'version-2',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => (b[0] = 2))),
      error: ErrorCode.ENVELOPE_UNSUPPORTED_VERSION,
    },
    { name: 'flags-set', recipient: 'bob-laptop', envelope: envelopeText(patched(base, (b) => (b[1] = 1))), error: ErrorCode.ENVELOPE_MALFORMED },
    {
      name: 'zero-recipients',
      recipient: 'bob-laptop',
      envelope: envelopeText(patched(base, (b) => ((b[98] = 0), (b[99] = 0)))),
      error: ErrorCode.ENVELOPE_MALFORMED,
    },
    { name: 'truncated', recipient: 'bob-laptop', envelope: envelopeText(base.subarray(0, base.length - 1)), error: ErrorCode.ENVELOPE_MALFORMED },
    { name: 'wrong-prefix', recipient: 'bob-laptop', envelope: 'e2ee2.' + b64, error: ErrorCode.ENVELOPE_MALFORMED },
    { name: 'b64u-padded', recipient: 'bob-laptop', envelope: aliceToBob.text + '='.repeat(4 - (b64.length % 4)), error: ErrorCode.ENVELOPE_MALFORMED },
  ];
}

/** The file's exact text: 2-space indentation and a trailing newline. */
export function renderVectors(vectors: TestVectors): string {
  return JSON.stringify(vectors, null, 2) + '\n';
}

/** Where the vectors live, relative to this script. */
export const VECTORS_PATH = fileURLToPath(new URL('../docs/test-vectors.json', import.meta.url));

async function main(): Promise<void> {
  const text = renderVectors(await generateVectors());
  writeFileSync(VECTORS_PATH, text);
  process.stdout.write(`wrote ${VECTORS_PATH} (${Buffer.byteLength(text)} bytes)\n`);
}

function runDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (runDirectly()) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
