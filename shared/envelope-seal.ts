/**
 * Sealing an envelope v1 (docs/PROTOCOL.md section 5.4). One content key (CEK) per message
 * encrypts the signed payload once; the CEK is wrapped for each recipient box key with a single
 * fresh ephemeral X25519 key, so the per-recipient cost is one scalar multiplication, one BLAKE2b
 * and one 32-byte AEAD (section 11.1).
 */
import {
  COMMIT_LABEL,
  ENVELOPE_NONCE_BYTES,
  ENVELOPE_PREFIX,
  ENVELOPE_VERSION,
  KEY_BYTES,
  KEY_ID_BYTES,
  MESSAGE_LABEL,
  RECIPIENTS_OFFSET,
  RECIPIENT_SLOT_BYTES,
  SIGNATURE_BYTES,
  WRAP_LABEL,
} from './constants.js';
import { checkBytes, concatBytes, fromHex, toB64u, toHex, utf8 } from './encoding.js';
import { WRAP_NONCE, envelopeBinaryLength, maxBinaryBytes, paddedLength, textLength, type EnvelopePayload } from './envelope-layout.js';
import { E2EEError, ErrorCode } from './errors.js';
import type { AsyncDeviceKeys } from './keys.js';
import { MAX_ENVELOPE_TEXT_CHARS, MAX_RECIPIENTS } from './limits.js';
import { buildPayload, type PayloadContent } from './payload.js';
import { blake2b256, chachaSeal, randomBytes, sign, x25519, x25519Base, xchachaSeal } from './sodium.js';

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

export interface SealInput {
  sender: EnvelopeSender;
  recipients: readonly EnvelopeRecipient[];
  conversationSid: string;
  body: string;
  /** Defaults to Date.now(). */
  sentAt?: number;
  /** Attributes (split into encrypted and clear parts) and an edit marker: a version 2 payload. Without it, version 1. */
  content?: PayloadContent;
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

/**
 * Everything random in an envelope. Fresh for every message; fixed values are for reproducible
 * test vectors only (shared/testing.ts), never for real messages.
 */
export interface SealRandomness {
  cek: Uint8Array;
  ephemeralSecret: Uint8Array;
  nonce: Uint8Array;
  /** 32 lowercase hex characters. */
  messageId: string;
}

function freshRandomness(): SealRandomness {
  return { cek: randomBytes(KEY_BYTES), ephemeralSecret: randomBytes(KEY_BYTES), nonce: randomBytes(ENVELOPE_NONCE_BYTES), messageId: toHex(randomBytes(16)) };
}

/**
 * Seals a message for every recipient device. Duplicate cards are sealed once. Refuses, before
 * any key work, an envelope whose text form would exceed Twilio's 32 KB body limit.
 */
export function sealEnvelope(input: SealInput): SealedEnvelope {
  return sealWithRandomness(input, freshRandomness());
}

/** sealEnvelope for a sender whose sign key is behind AsyncDeviceKeys: the same envelope, signed asynchronously. */
export async function sealEnvelopeAsync(input: AsyncSealInput): Promise<SealedEnvelope> {
  const unsigned = sealUnsigned(input, freshRandomness());
  return finishSeal(unsigned, await input.sender.keys.sign(unsigned.signedMessage));
}

/** sealEnvelope with the given randomness. Not exported from the package: see shared/testing.ts. */
export function sealWithRandomness(input: SealInput, randomness: SealRandomness): SealedEnvelope {
  const unsigned = sealUnsigned(input, randomness);
  return finishSeal(unsigned, sign(unsigned.signedMessage, input.sender.signSecretKey));
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

function sealUnsigned(input: Omit<SealInput, 'sender'> & { sender: { cardId: string } }, randomness: SealRandomness): UnsignedEnvelope {
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

  if (!/^[0-9a-f]{32}$/.test(randomness.messageId)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"messageId" expected 32 lowercase hex characters');
  }
  if (input.sentAt !== undefined && !(Number.isSafeInteger(input.sentAt) && input.sentAt >= 0)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"sentAt" expected unix milliseconds (a non-negative integer)');
  }
  const payload = buildPayload({ conversationSid, messageId: randomness.messageId, sentAt: input.sentAt ?? Date.now(), body }, input.content);
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

  const cek = checkBytes(randomness.cek, KEY_BYTES, 'cek');
  const ephemeralSecret = checkBytes(randomness.ephemeralSecret, KEY_BYTES, 'ephemeralSecret');
  const nonce = checkBytes(randomness.nonce, ENVELOPE_NONCE_BYTES, 'nonce');
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
    binary.set(fromHex(r.id.slice(0, 2 * KEY_ID_BYTES)), slot);
    binary.set(chachaSeal(kek, WRAP_NONCE, cek, null), slot + KEY_ID_BYTES);
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
