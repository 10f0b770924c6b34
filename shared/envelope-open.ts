/**
 * Opening an envelope v1 (docs/PROTOCOL.md section 5.5): unwrap the CEK from this device's slot
 * (or from a rewrap, section 6), check the key commitment, decrypt, strip the padding, parse the
 * payload, and verify the sender's signature and the message's context.
 */
import { COMMIT_LABEL, ENVELOPE_NONCE_BYTES, KEY_BYTES, KEY_ID_BYTES, MESSAGE_LABEL, PADDING_BLOCK, RECIPIENT_SLOT_BYTES, SIGNATURE_BYTES, WRAP_LABEL } from './constants.js';
import { checkBytes, concatBytes, equalBytes, fromUtf8 } from './encoding.js';
import { WRAP_NONCE, deriveKek, findSlots, malformed, parseEnvelope, type EnvelopePayload, type ParsedEnvelope } from './envelope-layout.js';
import { E2EEError, ErrorCode } from './errors.js';
import type { AsyncDeviceKeys } from './keys.js';
import { parsePayload } from './payload.js';
import { openRewrap, openRewrapAsync } from './envelope-rewrap.js';
import { blake2b256, chachaOpen, verify, x25519, xchachaOpen } from './sodium.js';

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

/** findSlots, or ENVELOPE_NOT_FOR_ME when there are none. */
function slotsFor(parsed: ParsedEnvelope, cardId: string): number[] {
  const slots = findSlots(parsed, cardId);
  if (slots.length === 0) throw new E2EEError(ErrorCode.ENVELOPE_NOT_FOR_ME, 'this envelope has no slot for this device');
  return slots;
}

/** Key ids are 8 bytes, so two cards may share one: tries every matching slot. */
function openSlots(parsed: ParsedEnvelope, slots: readonly number[], kek: Uint8Array | undefined): Uint8Array {
  for (const o of slots) {
    const cek = kek && chachaOpen(kek, WRAP_NONCE, parsed.binary.subarray(o + KEY_ID_BYTES, o + RECIPIENT_SLOT_BYTES), null);
    if (cek) return cek;
  }
  throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, 'the content key for this device does not decrypt');
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
  return { cek, signature: plaintext.subarray(0, SIGNATURE_BYTES), payloadBytes, payload: payloadOf(payloadBytes) };
}

function payloadOf(bytes: Uint8Array): EnvelopePayload {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw malformed('envelope payload is not UTF-8');
  }
  return parsePayload(text);
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
   * dateCreated; for an edit, the edit's time), or a function of the payload that gives it;
   * defaults to the payload's sentAt. Decides whether a revoked card still counts.
   */
  sentAt?: number | ((payload: EnvelopePayload) => number | undefined);
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
  const sentAt = (typeof ctx.sentAt === 'function' ? ctx.sentAt(decrypted.payload) : ctx.sentAt) ?? decrypted.payload.sentAt;
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
    cek = await openRewrapAsync(options.rewrap, parsed, keys);
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
