/**
 * Message envelope v1 and rewrap (docs/PROTOCOL.md "Envelope v1", "Rewrap").
 *
 * One content key (CEK) per message encrypts the signed payload once; the CEK is wrapped for each
 * recipient box key with a single fresh ephemeral X25519 key, so the per-recipient cost is one
 * scalar multiplication, one BLAKE2b and one 32-byte AEAD.
 */
import {
  AEAD_TAG_BYTES,
  COMMIT_LABEL,
  ENVELOPE_NONCE_BYTES,
  ENVELOPE_PREFIX,
  ENVELOPE_VERSION,
  KEY_BYTES,
  KEY_ID_BYTES,
  MAX_ENVELOPE_TEXT_CHARS,
  MAX_RECIPIENTS,
  MESSAGE_LABEL,
  PADDING_BLOCK,
  RECIPIENTS_OFFSET,
  RECIPIENT_SLOT_BYTES,
  REWRAP_BYTES,
  REWRAP_LABEL,
  SIGNATURE_BYTES,
  WRAP_LABEL,
} from './constants.js';
import { checkBytes, concatBytes, equalBytes, fromB64u, fromHex, fromUtf8, toB64u, toHex, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { parseFlatObject } from './json.js';
import type { AsyncDeviceKeys } from './keys.js';
import { blake2b256, chachaOpen, chachaSeal, randomBytes, sign, verify, x25519, x25519Base, xchachaOpen, xchachaSeal } from './sodium.js';

/** The signed content of a message. */
export interface EnvelopePayload {
  conversationSid: string;
  /** hex of 16 random bytes; unique per conversation (replay detection). */
  messageId: string;
  /** Unix milliseconds, as claimed by the sender. */
  sentAt: number;
  body: string;
}

/** A recipient device: a (verified) card's id and box key. A VerifiedCard fits. */
export interface EnvelopeRecipient {
  id: string;
  boxPublicKey: Uint8Array;
}

/** The sending device: its card id and Ed25519 secret key. */
export interface EnvelopeSender {
  cardId: string;
  signSecretKey: Uint8Array;
}

/** A sending device whose sign key is behind AsyncDeviceKeys (e.g. a non-extractable WebCrypto key). */
export interface AsyncEnvelopeSender {
  cardId: string;
  keys: Pick<AsyncDeviceKeys, 'sign'>;
}

/** Fixed randomness, for reproducible test vectors only. */
export interface SealRandomness {
  cek: Uint8Array;
  ephemeralSecret: Uint8Array;
  nonce: Uint8Array;
}

export interface SealInput {
  sender: EnvelopeSender;
  recipients: readonly EnvelopeRecipient[];
  conversationSid: string;
  body: string;
  /** Defaults to Date.now(). */
  sentAt?: number;
  /** Defaults to 16 random bytes. */
  messageId?: string;
  randomness?: SealRandomness;
  /**
   * The largest text form to produce; default Twilio's chat body limit (32,768). Only for a
   * transport that carries larger bodies: Twilio refuses anything longer, and openers refuse
   * longer texts unless given the same limit.
   */
  maxTextChars?: number;
}

export interface AsyncSealInput extends Omit<SealInput, 'sender'> {
  sender: AsyncEnvelopeSender;
}

export interface SealedEnvelope {
  /** The text form for the Twilio message body: "e2ee1." + b64u(binary). */
  text: string;
  binary: Uint8Array;
  /** The content key, for org backups (rewrap); keep it no longer than needed. */
  cek: Uint8Array;
  payload: EnvelopePayload;
  /** How many distinct recipient devices the envelope was sealed for. */
  recipientCount: number;
}

const ZERO_NONCE_12 = new Uint8Array(12);
const MIN_CIPHERTEXT_BYTES = PADDING_BLOCK + AEAD_TAG_BYTES;
function maxBinaryBytes(maxTextChars: number): number {
  return Math.floor(((maxTextChars - ENVELOPE_PREFIX.length) * 3) / 4);
}
const MAX_ENVELOPE_BINARY_BYTES = maxBinaryBytes(MAX_ENVELOPE_TEXT_CHARS);

function paddedLength(payloadLength: number): number {
  return Math.ceil((SIGNATURE_BYTES + payloadLength) / PADDING_BLOCK) * PADDING_BLOCK;
}

function envelopeBinaryLength(recipients: number, payloadLength: number): number {
  return RECIPIENTS_OFFSET + recipients * RECIPIENT_SLOT_BYTES + ENVELOPE_NONCE_BYTES + paddedLength(payloadLength) + AEAD_TAG_BYTES;
}

function textLength(binaryLength: number): number {
  return ENVELOPE_PREFIX.length + Math.ceil((binaryLength * 4) / 3);
}

/**
 * How many recipient devices fit in one envelope inside Twilio's body limit, for a message body
 * of the given UTF-8 size (conversation SID of the usual 34 characters).
 */
export function maxRecipientsForBody(bodyBytes: number, conversationSidLength = 34): number {
  const payloadLength = payloadOverhead(conversationSidLength) + bodyBytes;
  const fixed = envelopeBinaryLength(0, payloadLength);
  return Math.max(0, Math.min(MAX_RECIPIENTS, Math.floor((MAX_ENVELOPE_BINARY_BYTES - fixed) / RECIPIENT_SLOT_BYTES)));
}

function payloadOverhead(conversationSidLength: number): number {
  const sample = { conversationSid: 'x'.repeat(conversationSidLength), messageId: '0'.repeat(32), sentAt: 1e12 * 1.7, body: '' };
  return utf8(JSON.stringify(sample)).length;
}

function dedupeRecipients(recipients: readonly EnvelopeRecipient[]): EnvelopeRecipient[] {
  const seen = new Set<string>();
  const out: EnvelopeRecipient[] = [];
  for (const r of recipients) {
    if (typeof r?.id !== 'string' || !/^[0-9a-f]{64}$/.test(r.id)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"recipient.id" expected a card id');
    checkBytes(r.boxPublicKey, KEY_BYTES, 'recipient.boxPublicKey');
    if (!seen.has(r.id)) {
      seen.add(r.id);
      out.push(r);
    }
  }
  return out;
}

/**
 * Seals a message for every recipient device. Duplicate cards are sealed once. Refuses, before
 * any key work, an envelope whose text form would exceed Twilio's 32 KB body limit.
 */
export function sealEnvelope(input: SealInput): SealedEnvelope {
  const unsigned = sealUnsigned(input);
  return finishSeal(unsigned, sign(unsigned.signedMessage, input.sender.signSecretKey));
}

/** sealEnvelope for a sender whose sign key is behind AsyncDeviceKeys: the same envelope, signed asynchronously. */
export async function sealEnvelopeAsync(input: AsyncSealInput): Promise<SealedEnvelope> {
  const unsigned = sealUnsigned(input);
  return finishSeal(unsigned, await input.sender.keys.sign(unsigned.signedMessage));
}

/** An envelope with its header and recipient slots made; the sender's signature and the body are still to come. */
interface UnsignedEnvelope {
  binary: Uint8Array;
  headerEnd: number;
  cek: Uint8Array;
  nonce: Uint8Array;
  payload: EnvelopePayload;
  payloadBytes: Uint8Array;
  /** What the sender signs: label || BLAKE2b-256(header) || payload. */
  signedMessage: Uint8Array;
  recipientCount: number;
}

function sealUnsigned(input: Omit<SealInput, 'sender'> & { sender: { cardId: string } }): UnsignedEnvelope {
  const { sender, conversationSid, body } = input;
  if (typeof conversationSid !== 'string' || conversationSid.length === 0) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"conversationSid" expected a non-empty string');
  }
  if (typeof body !== 'string') throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"body" expected a string');
  const recipients = dedupeRecipients(input.recipients);
  const n = recipients.length;
  if (n === 0) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'an envelope needs at least one recipient');
  if (n > MAX_RECIPIENTS) {
    throw new E2EEError(ErrorCode.ENVELOPE_TOO_MANY_RECIPIENTS, `${n} recipient devices; an envelope holds at most ${MAX_RECIPIENTS}`);
  }
  if (typeof sender?.cardId !== 'string' || !/^[0-9a-f]{64}$/.test(sender.cardId)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"sender.cardId" expected a card id (64 lowercase hex characters)');
  }
  const senderId = fromHex(sender.cardId);

  if (input.messageId !== undefined && !/^[0-9a-f]{32}$/.test(input.messageId)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"messageId" expected 32 lowercase hex characters');
  }
  if (input.sentAt !== undefined && !(Number.isSafeInteger(input.sentAt) && input.sentAt >= 0)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"sentAt" expected unix milliseconds (a non-negative integer)');
  }
  const payload: EnvelopePayload = {
    conversationSid,
    messageId: input.messageId ?? toHex(randomBytes(16)),
    sentAt: input.sentAt ?? Date.now(),
    body,
  };
  const payloadBytes = utf8(JSON.stringify(payload));
  const binaryLength = envelopeBinaryLength(n, payloadBytes.length);
  const textChars = textLength(binaryLength);
  const limit = input.maxTextChars ?? MAX_ENVELOPE_TEXT_CHARS;
  if (textChars > limit) {
    const fits = Math.max(0, Math.floor((maxBinaryBytes(limit) - envelopeBinaryLength(0, payloadBytes.length)) / RECIPIENT_SLOT_BYTES));
    const what = limit === MAX_ENVELOPE_TEXT_CHARS ? "Twilio's message body limit" : 'the limit';
    throw new E2EEError(
      ErrorCode.ENVELOPE_TOO_LARGE,
      `envelope for ${n} recipient devices would be ${textChars} characters; ${what} is ${limit}` +
        ` (a message of this size fits at most ${fits} recipient devices)`,
    );
  }

  const cek = input.randomness ? checkBytes(input.randomness.cek, KEY_BYTES, 'cek') : randomBytes(KEY_BYTES);
  const ephemeralSecret = input.randomness ? checkBytes(input.randomness.ephemeralSecret, KEY_BYTES, 'ephemeralSecret') : randomBytes(KEY_BYTES);
  const nonce = input.randomness ? checkBytes(input.randomness.nonce, ENVELOPE_NONCE_BYTES, 'nonce') : randomBytes(ENVELOPE_NONCE_BYTES);
  const ephemeralPublic = x25519Base(ephemeralSecret);

  const binary = new Uint8Array(binaryLength);
  binary[0] = ENVELOPE_VERSION;
  binary[1] = 0;
  binary.set(senderId, 2);
  binary.set(ephemeralPublic, 34);
  binary.set(blake2b256(COMMIT_LABEL, cek), 66);
  binary[98] = n >> 8;
  binary[99] = n & 0xff;

  // KEK input = label || E || R; only R changes per recipient.
  const kdfInput = new Uint8Array(WRAP_LABEL.length + 2 * KEY_BYTES);
  kdfInput.set(WRAP_LABEL, 0);
  kdfInput.set(ephemeralPublic, WRAP_LABEL.length);
  const rOffset = WRAP_LABEL.length + KEY_BYTES;
  let slot = RECIPIENTS_OFFSET;
  for (const r of recipients) {
    const shared = x25519(ephemeralSecret, r.boxPublicKey);
    if (!shared) throw new E2EEError(ErrorCode.CARD_WEAK_KEY, `recipient card ${r.id} has a low-order box key`);
    kdfInput.set(r.boxPublicKey, rOffset);
    const kek = blake2b256(kdfInput, shared);
    // A fixed nonce is safe: each KEK is derived from a fresh ephemeral key and encrypts one CEK.
    binary.set(fromHex(r.id.slice(0, 2 * KEY_ID_BYTES)), slot);
    binary.set(chachaSeal(kek, ZERO_NONCE_12, cek, null), slot + KEY_ID_BYTES);
    slot += RECIPIENT_SLOT_BYTES;
  }

  const headerEnd = slot;
  const signedMessage = concatBytes(MESSAGE_LABEL, blake2b256(binary.subarray(0, headerEnd)), payloadBytes);
  return { binary, headerEnd, cek, nonce, payload, payloadBytes, signedMessage, recipientCount: n };
}

function finishSeal(unsigned: UnsignedEnvelope, signature: Uint8Array): SealedEnvelope {
  const { binary, headerEnd, cek, nonce, payload, payloadBytes } = unsigned;
  checkBytes(signature, SIGNATURE_BYTES, 'signature');
  const plaintext = new Uint8Array(paddedLength(payloadBytes.length));
  plaintext.set(signature, 0);
  plaintext.set(payloadBytes, SIGNATURE_BYTES);
  binary.set(nonce, headerEnd);
  const adEnd = headerEnd + ENVELOPE_NONCE_BYTES;
  binary.set(xchachaSeal(cek, nonce, plaintext, binary.subarray(0, adEnd)), adEnd);

  return { text: ENVELOPE_PREFIX + toB64u(binary), binary, cek, payload, recipientCount: unsigned.recipientCount };
}

/** An envelope whose layout parsed; nothing is decrypted or verified yet. */
export interface ParsedEnvelope {
  binary: Uint8Array;
  senderCardId: string;
  ephemeralPublicKey: Uint8Array;
  commitment: Uint8Array;
  recipientCount: number;
  /** End of the recipient slots: the signed header is binary[0, headerEnd). */
  headerEnd: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

function malformed(message: string): E2EEError {
  return new E2EEError(ErrorCode.ENVELOPE_MALFORMED, message);
}

/** True when a message body is meant to be an envelope (has the text prefix). */
export function looksLikeEnvelope(body: unknown): body is string {
  return typeof body === 'string' && body.startsWith(ENVELOPE_PREFIX);
}

/** Parses the text form (or the binary) of an envelope, checking its layout and sizes. */
export function parseEnvelope(input: string | Uint8Array): ParsedEnvelope {
  let binary: Uint8Array;
  if (typeof input === 'string') {
    if (input.length > MAX_ENVELOPE_TEXT_CHARS) {
      throw new E2EEError(ErrorCode.ENVELOPE_TOO_LARGE, `envelope text is ${input.length} characters, the limit is ${MAX_ENVELOPE_TEXT_CHARS}`);
    }
    if (!input.startsWith(ENVELOPE_PREFIX)) throw malformed(`not an envelope (no "${ENVELOPE_PREFIX}" prefix)`);
    try {
      binary = fromB64u(input.slice(ENVELOPE_PREFIX.length), 'envelope');
    } catch (err) {
      throw malformed(`envelope is not canonical base64url: ${(err as Error).message}`);
    }
  } else if (input instanceof Uint8Array) {
    if (input.length > MAX_ENVELOPE_BINARY_BYTES) {
      throw new E2EEError(ErrorCode.ENVELOPE_TOO_LARGE, `envelope is ${input.length} bytes, the limit is ${MAX_ENVELOPE_BINARY_BYTES}`);
    }
    binary = input;
  } else {
    throw malformed('envelope must be a string or bytes');
  }
  if (binary.length < RECIPIENTS_OFFSET) throw malformed(`envelope is ${binary.length} bytes, shorter than its header`);
  if (binary[0] !== ENVELOPE_VERSION) {
    throw new E2EEError(ErrorCode.ENVELOPE_UNSUPPORTED_VERSION, `envelope version ${binary[0]} is not supported (expected ${ENVELOPE_VERSION})`);
  }
  if (binary[1] !== 0) throw malformed('envelope flags must be 0');
  const n = (binary[98]! << 8) | binary[99]!;
  if (n < 1 || n > MAX_RECIPIENTS) throw malformed(`envelope recipient count ${n} is outside 1..${MAX_RECIPIENTS}`);
  const headerEnd = RECIPIENTS_OFFSET + n * RECIPIENT_SLOT_BYTES;
  const ciphertextStart = headerEnd + ENVELOPE_NONCE_BYTES;
  const ciphertextLength = binary.length - ciphertextStart;
  if (ciphertextLength < MIN_CIPHERTEXT_BYTES || (ciphertextLength - AEAD_TAG_BYTES) % PADDING_BLOCK !== 0) {
    throw malformed('envelope length does not match its recipient count and padding');
  }
  return {
    binary,
    senderCardId: toHex(binary.subarray(2, 34)),
    ephemeralPublicKey: binary.subarray(34, 66),
    commitment: binary.subarray(66, 98),
    recipientCount: n,
    headerEnd,
    nonce: binary.subarray(headerEnd, ciphertextStart),
    ciphertext: binary.subarray(ciphertextStart),
  };
}

/** The private side of a recipient device: its card id and box key pair. */
export interface EnvelopeOpener {
  cardId: string;
  boxSecretKey: Uint8Array;
  boxPublicKey: Uint8Array;
}

/** A recipient device whose box key is behind AsyncDeviceKeys (e.g. a non-extractable WebCrypto key). */
export interface AsyncEnvelopeOpener {
  cardId: string;
  keys: Pick<AsyncDeviceKeys, 'boxPublicKey' | 'agree'>;
}

/** Finds this device's slot(s) by key id and unwraps the CEK. */
export function unwrapContentKey(parsed: ParsedEnvelope, me: EnvelopeOpener): Uint8Array {
  const slots = slotsFor(parsed, me.cardId);
  return openSlots(parsed, slots, deriveKek(WRAP_LABEL, parsed.ephemeralPublicKey, me.boxPublicKey, x25519(me.boxSecretKey, parsed.ephemeralPublicKey), null));
}

/** The offsets of the slots named with this card's key id; ENVELOPE_NOT_FOR_ME when there are none. */
function slotsFor(parsed: ParsedEnvelope, cardId: string): number[] {
  const keyId = fromHex(cardId.slice(0, 2 * KEY_ID_BYTES), 'cardId');
  const slots: number[] = [];
  for (let i = 0, o = RECIPIENTS_OFFSET; i < parsed.recipientCount; i++, o += RECIPIENT_SLOT_BYTES) {
    if (equalBytes(parsed.binary.subarray(o, o + KEY_ID_BYTES), keyId)) slots.push(o);
  }
  if (slots.length === 0) throw new E2EEError(ErrorCode.ENVELOPE_NOT_FOR_ME, 'this envelope has no slot for this device');
  return slots;
}

/** Key ids are 8 bytes, so two cards may share one: tries every matching slot. */
function openSlots(parsed: ParsedEnvelope, slots: readonly number[], kek: Uint8Array | undefined): Uint8Array {
  for (const o of slots) {
    const cek = kek && chachaOpen(kek, ZERO_NONCE_12, parsed.binary.subarray(o + KEY_ID_BYTES, o + RECIPIENT_SLOT_BYTES), null);
    if (cek) return cek;
  }
  throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, 'the content key for this device does not decrypt');
}

/** KEK = BLAKE2b-256(label || E || R [|| context], key = X25519 result); undefined when that result was all zero. */
function deriveKek(label: Uint8Array, ephemeralPublic: Uint8Array, boxPublicKey: Uint8Array, shared: Uint8Array | null, context: Uint8Array | null): Uint8Array | undefined {
  if (!shared) return undefined;
  const parts = [label, ephemeralPublic, boxPublicKey];
  if (context) parts.push(context);
  return blake2b256(concatBytes(...parts), shared);
}

/** An envelope decrypted with its CEK; the signature is not verified yet. */
export interface DecryptedEnvelope {
  cek: Uint8Array;
  signature: Uint8Array;
  payloadBytes: Uint8Array;
  payload: EnvelopePayload;
}

/** Checks the key commitment, decrypts, strips the padding and parses the payload. */
export function decryptWithContentKey(parsed: ParsedEnvelope, cek: Uint8Array): DecryptedEnvelope {
  checkBytes(cek, KEY_BYTES, 'cek');
  if (!equalBytes(blake2b256(COMMIT_LABEL, cek), parsed.commitment)) {
    throw new E2EEError(ErrorCode.ENVELOPE_COMMITMENT_MISMATCH, 'the content key does not match the envelope commitment');
  }
  const ad = parsed.binary.subarray(0, parsed.headerEnd + ENVELOPE_NONCE_BYTES);
  const plaintext = xchachaOpen(cek, parsed.nonce, parsed.ciphertext, ad);
  if (!plaintext) throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, 'the envelope does not decrypt');
  let end = plaintext.length;
  while (end > SIGNATURE_BYTES && plaintext[end - 1] === 0) end--;
  if (plaintext.length - end >= PADDING_BLOCK) throw malformed('envelope padding is longer than one block');
  const payloadBytes = plaintext.subarray(SIGNATURE_BYTES, end);
  return { cek, signature: plaintext.subarray(0, SIGNATURE_BYTES), payloadBytes, payload: parsePayload(payloadBytes) };
}

function parsePayload(bytes: Uint8Array): EnvelopePayload {
  let obj;
  try {
    obj = parseFlatObject(fromUtf8(bytes));
  } catch {
    obj = null;
  }
  if (!obj) throw malformed('envelope payload is not a flat JSON object');
  const keys = Object.keys(obj);
  const { conversationSid, messageId, sentAt, body } = obj;
  if (
    keys.length !== 4 ||
    typeof conversationSid !== 'string' ||
    typeof messageId !== 'string' ||
    !/^[0-9a-f]{32}$/.test(messageId) ||
    typeof sentAt !== 'number' ||
    !Number.isSafeInteger(sentAt) ||
    sentAt < 0 ||
    typeof body !== 'string'
  ) {
    throw malformed('envelope payload must have exactly conversationSid, messageId (32 hex), sentAt (unix ms) and body');
  }
  return { conversationSid, messageId, sentAt, body };
}

/** The sender's card as the verifier knows it (a VerifiedCard fits, revoked or not). */
export interface SenderCard {
  id: string;
  identity: string;
  signPublicKey: Uint8Array;
  /** Unix seconds, or null. */
  revokedAt: number | null;
}

export interface VerifyContext {
  senderCard: SenderCard;
  /** The conversation the message arrived in. */
  conversationSid: string;
  /** The Twilio message author; checked against the sender card's identity when given. */
  author?: string | null;
  /**
   * When the message was sent, unix ms, preferably the transport's own timestamp (Twilio's
   * dateCreated); defaults to the payload's sentAt. Decides whether a revoked card still counts.
   */
  sentAt?: number;
  /** Returns true when this messageId was already seen in this conversation (and records it). */
  seenBefore?: (conversationSid: string, messageId: string) => boolean;
}

/**
 * Verifies a decrypted envelope: the sender card is the one named in the header, the signature
 * over header hash and payload verifies, the sender is the author, the card was not revoked
 * before the message, the conversation matches, and the messageId is new.
 */
export function verifyDecrypted(parsed: ParsedEnvelope, decrypted: DecryptedEnvelope, ctx: VerifyContext): void {
  const card = ctx.senderCard;
  if (card.id !== parsed.senderCardId) {
    throw new E2EEError(ErrorCode.ENVELOPE_SENDER_CARD_MISMATCH, 'the given sender card is not the one named in the envelope');
  }
  const signed = concatBytes(MESSAGE_LABEL, blake2b256(parsed.binary.subarray(0, parsed.headerEnd)), decrypted.payloadBytes);
  if (!verify(decrypted.signature, signed, card.signPublicKey)) {
    throw new E2EEError(ErrorCode.ENVELOPE_SIGNATURE_INVALID, 'the sender signature does not verify');
  }
  if (ctx.author !== undefined && ctx.author !== card.identity) {
    throw new E2EEError(ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR, `signed by "${card.identity}" but posted by "${ctx.author ?? '(none)'}"`);
  }
  const sentAt = ctx.sentAt ?? decrypted.payload.sentAt;
  if (card.revokedAt !== null && sentAt >= card.revokedAt * 1000) {
    throw new E2EEError(ErrorCode.ENVELOPE_SENDER_REVOKED, 'the sender card was revoked before this message was sent');
  }
  if (decrypted.payload.conversationSid !== ctx.conversationSid) {
    throw new E2EEError(ErrorCode.ENVELOPE_CONVERSATION_MISMATCH, 'the message was signed for another conversation');
  }
  if (ctx.seenBefore?.(ctx.conversationSid, decrypted.payload.messageId)) {
    throw new E2EEError(ErrorCode.ENVELOPE_REPLAY, 'this message was already delivered in this conversation');
  }
}

export interface OpenedEnvelope {
  parsed: ParsedEnvelope;
  payload: EnvelopePayload;
  cek: Uint8Array;
}

export interface OpenOptions extends VerifyContext {
  recipient: EnvelopeOpener;
  /** Open through this rewrap (history sync) instead of the recipient's own slot. */
  rewrap?: string;
}

/** Parses, unwraps (from the device's slot or a rewrap), decrypts and verifies an envelope. */
export function openEnvelope(input: string | Uint8Array | ParsedEnvelope, options: OpenOptions): OpenedEnvelope {
  const parsed = isParsed(input) ? input : parseEnvelope(input);
  const cek = options.rewrap !== undefined ? openRewrap(options.rewrap, parsed, options.recipient) : unwrapContentKey(parsed, options.recipient);
  return decryptAndVerify(parsed, cek, options);
}

export interface AsyncOpenOptions extends VerifyContext {
  recipient: AsyncEnvelopeOpener;
  /** Open through this rewrap (history sync) instead of the recipient's own slot. */
  rewrap?: string;
}

/** openEnvelope for a recipient whose box key is behind AsyncDeviceKeys: the same checks and errors. */
export async function openEnvelopeAsync(input: string | Uint8Array | ParsedEnvelope, options: AsyncOpenOptions): Promise<OpenedEnvelope> {
  const parsed = isParsed(input) ? input : parseEnvelope(input);
  const { cardId, keys } = options.recipient;
  let cek: Uint8Array;
  if (options.rewrap !== undefined) {
    const rewrap = parseRewrap(options.rewrap);
    const ephemeralPublic = rewrap.subarray(0, KEY_BYTES);
    cek = unwrapRewrap(rewrap, deriveKek(REWRAP_LABEL, ephemeralPublic, keys.boxPublicKey, await keys.agree(ephemeralPublic), blake2b256(parsed.binary)));
  } else {
    const slots = slotsFor(parsed, cardId);
    cek = openSlots(parsed, slots, deriveKek(WRAP_LABEL, parsed.ephemeralPublicKey, keys.boxPublicKey, await keys.agree(parsed.ephemeralPublicKey), null));
  }
  return decryptAndVerify(parsed, cek, options);
}

function decryptAndVerify(parsed: ParsedEnvelope, cek: Uint8Array, options: VerifyContext): OpenedEnvelope {
  const decrypted = decryptWithContentKey(parsed, cek);
  verifyDecrypted(parsed, decrypted, options);
  return { parsed, payload: decrypted.payload, cek };
}

function isParsed(input: unknown): input is ParsedEnvelope {
  return typeof input === 'object' && input !== null && !(input instanceof Uint8Array) && 'headerEnd' in input;
}

/**
 * Rewraps a message's CEK for one more box key (org backups, history sync):
 * b64u(E' || ChaCha20-Poly1305(KEK, 0, CEK)), KEK bound to the whole original envelope.
 */
export function createRewrap(cek: Uint8Array, envelope: ParsedEnvelope, recipientBoxPublicKey: Uint8Array, ephemeralSecret?: Uint8Array): string {
  return createRewrapper(recipientBoxPublicKey, ephemeralSecret)(cek, envelope);
}

/**
 * A rewrapper for many messages to one box key (a page of history): one ephemeral key and one
 * X25519 for all of them. Sound because every KEK still binds its own envelope's hash, so each
 * KEK wraps one CEK (the same envelope twice gives the same rewrap, which reveals nothing new).
 */
export function createRewrapper(recipientBoxPublicKey: Uint8Array, ephemeralSecret?: Uint8Array): (cek: Uint8Array, envelope: ParsedEnvelope) => string {
  checkBytes(recipientBoxPublicKey, KEY_BYTES, 'recipientBoxPublicKey');
  const secret = ephemeralSecret ? checkBytes(ephemeralSecret, KEY_BYTES, 'ephemeralSecret') : randomBytes(KEY_BYTES);
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
    out.set(chachaSeal(blake2b256(kdfInput, shared), ZERO_NONCE_12, cek, null), KEY_BYTES);
    return toB64u(out);
  };
}

/** Opens a rewrap addressed to this box key pair, giving the CEK (not yet checked against the commitment). */
export function openRewrap(rewrap: string, envelope: ParsedEnvelope, me: { boxSecretKey: Uint8Array; boxPublicKey: Uint8Array }): Uint8Array {
  const bytes = parseRewrap(rewrap);
  const ephemeralPublic = bytes.subarray(0, KEY_BYTES);
  return unwrapRewrap(bytes, deriveKek(REWRAP_LABEL, ephemeralPublic, me.boxPublicKey, x25519(me.boxSecretKey, ephemeralPublic), blake2b256(envelope.binary)));
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
  const cek = kek && chachaOpen(kek, ZERO_NONCE_12, bytes.subarray(KEY_BYTES), null);
  if (!cek) throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, 'the rewrap does not decrypt for this key');
  return cek;
}
