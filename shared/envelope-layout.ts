/**
 * Envelope v1's binary layout (docs/PROTOCOL.md sections 5.1 to 5.3): its sizes, the parser that
 * checks them, the lookup of the recipient slots addressed to a card, and the KEK derivation the
 * slots and rewraps share. Sealing, opening and rewrapping build on this module.
 */
import {
  AEAD_TAG_BYTES,
  ENVELOPE_NONCE_BYTES,
  ENVELOPE_PREFIX,
  ENVELOPE_VERSION,
  KEY_ID_BYTES,
  PADDING_BLOCK,
  RECIPIENTS_OFFSET,
  RECIPIENT_SLOT_BYTES,
  SIGNATURE_BYTES,
} from './constants.js';
import { concatBytes, equalBytes, fromB64u, fromHex, toHex, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { MAX_ENVELOPE_TEXT_CHARS, MAX_RECIPIENTS } from './limits.js';
import { blake2b256 } from './sodium.js';

export type { EnvelopePayload } from './payload.js';

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

/**
 * The nonce of every wrapped CEK (slots and rewraps). A fixed nonce is safe: each KEK is derived
 * from a fresh ephemeral key (and, for a rewrap, the envelope's hash) and encrypts one CEK.
 */
export const WRAP_NONCE = new Uint8Array(12);

const MIN_CIPHERTEXT_BYTES = PADDING_BLOCK + AEAD_TAG_BYTES;

/** The largest binary whose text form fits in `maxTextChars`. */
export function maxBinaryBytes(maxTextChars: number): number {
  return Math.floor(((maxTextChars - ENVELOPE_PREFIX.length) * 3) / 4);
}
const MAX_ENVELOPE_BINARY_BYTES = maxBinaryBytes(MAX_ENVELOPE_TEXT_CHARS);

/** Plaintext length: signature || payload, padded to whole blocks. */
export function paddedLength(payloadLength: number): number {
  return Math.ceil((SIGNATURE_BYTES + payloadLength) / PADDING_BLOCK) * PADDING_BLOCK;
}

/** Binary length of an envelope with `recipients` slots and a payload of `payloadLength` bytes. */
export function envelopeBinaryLength(recipients: number, payloadLength: number): number {
  return RECIPIENTS_OFFSET + recipients * RECIPIENT_SLOT_BYTES + ENVELOPE_NONCE_BYTES + paddedLength(payloadLength) + AEAD_TAG_BYTES;
}

/** Text form length ("e2ee1." + unpadded b64u) of a binary of this length. */
export function textLength(binaryLength: number): number {
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

/** ENVELOPE_MALFORMED with this message. */
export function malformed(message: string) {
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

/**
 * The offsets of the recipient slots addressed to this card (by its 8-byte key id), in order; empty
 * when the envelope was not sealed for it. Key ids may collide, so there can be more than one.
 */
export function findSlots(parsed: ParsedEnvelope, cardId: string): number[] {
  const keyId = fromHex(cardId.slice(0, 2 * KEY_ID_BYTES), 'cardId');
  const slots: number[] = [];
  for (let i = 0, o = RECIPIENTS_OFFSET; i < parsed.recipientCount; i++, o += RECIPIENT_SLOT_BYTES) {
    if (equalBytes(parsed.binary.subarray(o, o + KEY_ID_BYTES), keyId)) slots.push(o);
  }
  return slots;
}

/** KEK = BLAKE2b-256(label || E || R [|| context], key = X25519 result); undefined when that result was all zero. */
export function deriveKek(label: Uint8Array, ephemeralPublic: Uint8Array, boxPublicKey: Uint8Array, shared: Uint8Array | null, context: Uint8Array | null): Uint8Array | undefined {
  if (!shared) return undefined;
  const parts = [label, ephemeralPublic, boxPublicKey];
  if (context) parts.push(context);
  return blake2b256(concatBytes(...parts), shared);
}
