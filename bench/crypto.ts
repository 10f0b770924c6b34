/**
 * Encryption and decryption against their floors. A floor is the cost of the primitives alone,
 * called through the same shared/sodium.ts functions (so the same backend) in the same process,
 * timed alternately with the real operation:
 *
 *   encrypt floor = sign + body AEAD + N x (X25519 + wrap AEAD)
 *   decrypt floor = X25519 + unwrap AEAD + body AEAD + verify
 *
 * Everything else (key derivation with BLAKE2b, the ephemeral key pair, the key commitment,
 * parsing, encoding, padding, JSON) is overhead the ratio shows.
 */
import { ENVELOPE_NONCE_BYTES, ENVELOPE_PREFIX, MESSAGE_LABEL, PADDING_BLOCK, SIGNATURE_BYTES, WRAP_LABEL } from '../shared/constants.js';
import { concatBytes, utf8 } from '../shared/encoding.js';
import { maxRecipientsForBody, openEnvelope, parseEnvelope, sealEnvelope } from '../shared/envelope.js';
import { blake2b256, chachaOpen, chachaSeal, randomBytes, sign, verify, x25519, x25519Base, xchachaOpen, xchachaSeal } from '../shared/sodium.js';
import type { DeviceFixture } from '../test/support/crypto.js';
import { CONVERSATION_SID, messageBody } from './fixtures.js';
import { interleaved, round, summarize, timeMs } from './stats.js';

/** The recipient counts of the issue; the largest count that fits Twilio's body is added at run time. */
export const RECIPIENT_COUNTS = [1, 10, 100, 500] as const;
export const MESSAGE_BYTES = 1024;

export interface Plan {
  quick: boolean;
}

/** Timed runs per recipient count (after warm-up): enough for a stable median, bounded in time. */
function encryptRuns(n: number, quick: boolean): { runs: number; warmup: number } {
  const full = n <= 1 ? 400 : n <= 10 ? 200 : n <= 100 ? 60 : 21;
  return quick ? { runs: Math.max(7, Math.round(full / 4)), warmup: 3 } : { runs: full, warmup: Math.max(3, Math.round(full / 10)) };
}

/** An operation timed alternately with its floor: medians in ms, their ratio, interquartile ranges. */
export interface VsFloor {
  msPerMessage: number;
  floorMs: number;
  ratioToFloor: number;
  msPerMessageIqr: [number, number];
  floorMsIqr: [number, number];
}

function vsFloor(samples: { subject: number[]; floor: number[] }): VsFloor {
  const s = summarize(samples.subject);
  const f = summarize(samples.floor);
  return {
    msPerMessage: round(s.median),
    floorMs: round(f.median),
    ratioToFloor: round(s.median / f.median),
    msPerMessageIqr: [round(s.p25), round(s.p75)],
    floorMsIqr: [round(f.p25), round(f.p75)],
  };
}

export interface EncryptRow extends VsFloor {
  recipients: number;
  /**
   * false when the envelope exceeds Twilio's 32 KB body: sealEnvelope refuses it by default
   * (ENVELOPE_TOO_LARGE); it is timed with the limit lifted (`maxTextChars`), as for a transport
   * with larger bodies.
   */
  fitsTwilioBody: boolean;
  envelopeBytes: number;
  /** Binary growth per added recipient device (one 56-byte slot). */
  bytesPerRecipient: number;
  /** The text form in the Twilio body ("e2ee1." + base64url). */
  envelopeTextChars: number;
  /** Text growth per added recipient device, averaged from 1 recipient. */
  textCharsPerRecipient: number;
  runs: number;
  /** Why sealEnvelope refuses this envelope for Twilio, when it does. */
  refused?: string;
}

export interface EncryptResult {
  rows: EncryptRow[];
  /** Recipient devices a 1 KiB message reaches inside Twilio's 32 KB body (maxRecipientsForBody). */
  maxRecipientsFor1KiB: number;
}

function paddedLength(payloadLength: number): number {
  return Math.ceil((SIGNATURE_BYTES + payloadLength) / PADDING_BLOCK) * PADDING_BLOCK;
}

/**
 * Sealing a 1 KiB message for 1, 10, 100, the most devices that fit one Twilio body, and 500.
 * 500 devices never fit a Twilio body (a 1 KiB message reaches 413), so that row is sealed with
 * the body limit lifted and marked fitsTwilioBody: false.
 */
export function benchEncrypt(sender: DeviceFixture, devices: readonly DeviceFixture[], plan: Plan): EncryptResult {
  const body = messageBody(MESSAGE_BYTES);
  const maxRecipients = maxRecipientsForBody(MESSAGE_BYTES);
  const counts = [...new Set([...RECIPIENT_COUNTS, maxRecipients])].sort((a, b) => a - b);
  if (devices.length < Math.max(...counts) + 1) throw new Error(`bench: need ${Math.max(...counts) + 1} devices`);
  const seal = (n: number, maxTextChars?: number) =>
    sealEnvelope({ sender: sender.sender, recipients: devices.slice(0, n).map((d) => d.card), conversationSid: CONVERSATION_SID, body, maxTextChars });
  const one = seal(1);
  const two = seal(2);
  const slotBytes = two.binary.length - one.binary.length;
  const payloadLength = utf8(JSON.stringify(one.payload)).length;

  const rows: EncryptRow[] = [];
  for (const n of counts) {
    const recipients = devices.slice(0, n).map((d) => d.card);
    // Beyond Twilio's body limit, sealEnvelope refuses; the cost is still timed, with the limit
    // lifted (maxTextChars), as for a transport with larger bodies.
    let refused: string | undefined;
    let maxTextChars: number | undefined;
    try {
      seal(n);
    } catch (err) {
      refused = `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
      maxTextChars = Number.MAX_SAFE_INTEGER;
    }
    const sealed = seal(n, maxTextChars);
    const headerEnd = 100 + slotBytes * n;
    const envelopeBytes = sealed.binary.length;
    const textChars = sealed.text.length;
    // Inputs of the floor, made outside the timing, of the real envelope's sizes.
    const signed = concatBytes(MESSAGE_LABEL, randomBytes(32), randomBytes(payloadLength));
    const plaintext = randomBytes(paddedLength(payloadLength));
    const ad = randomBytes(headerEnd + ENVELOPE_NONCE_BYTES);
    const cek = randomBytes(32);
    const kek = randomBytes(32);
    const nonce = randomBytes(24);
    const zero12 = new Uint8Array(12);
    const ephemeral = randomBytes(32);
    const boxKeys = recipients.map((r) => r.boxPublicKey);
    const floor = () => {
      sign(signed, sender.keys.signSecretKey);
      xchachaSeal(cek, nonce, plaintext, ad);
      for (const R of boxKeys) {
        x25519(ephemeral, R);
        chachaSeal(kek, zero12, cek, null);
      }
    };
    const subject = () => sealEnvelope({ sender: sender.sender, recipients, conversationSid: CONVERSATION_SID, body, maxTextChars });
    const { runs, warmup } = encryptRuns(n, plan.quick);
    const samples = interleaved(subject, floor, runs, warmup);
    rows.push({
      recipients: n,
      fitsTwilioBody: refused === undefined,
      ...vsFloor(samples),
      envelopeBytes,
      bytesPerRecipient: slotBytes,
      envelopeTextChars: textChars,
      textCharsPerRecipient: n === 1 ? round(two.text.length - one.text.length) : round((textChars - one.text.length) / (n - 1)),
      runs: samples.floor.length,
      ...(refused ? { refused } : {}),
    });
  }
  return { rows, maxRecipientsFor1KiB: maxRecipients };
}

export interface DecryptResult extends VsFloor {
  /** The envelope opened: its recipient count and which slot was this device's. */
  envelopeRecipients: number;
  slot: number;
  runs: number;
}

/**
 * One recipient opening a 100-device envelope from its text form, as it arrives in a Twilio
 * body: parse, find the slot, unwrap, check the commitment, decrypt, verify the signature. The
 * device has the last slot (the slot search is linear; the worst case is measured).
 */
export function benchDecrypt(sender: DeviceFixture, devices: readonly DeviceFixture[], plan: Plan, recipients = 100): DecryptResult {
  const group = devices.slice(0, recipients);
  const me = group[group.length - 1]!;
  const sealed = sealEnvelope({ sender: sender.sender, recipients: group.map((d) => d.card), conversationSid: CONVERSATION_SID, body: messageBody(MESSAGE_BYTES) });
  const text = sealed.text;
  if (!text.startsWith(ENVELOPE_PREFIX)) throw new Error('bench: not an envelope');
  const parsed = parseEnvelope(text);
  const subject = () =>
    openEnvelope(text, { recipient: me.opener, senderCard: sender.card, conversationSid: CONVERSATION_SID, author: sender.card.identity });

  // Floor inputs: this device's real slot, KEK, nonce, ciphertext and signed bytes.
  const slot = 100 + 56 * (recipients - 1);
  const wrapped = parsed.binary.subarray(slot + 8, slot + 56);
  const shared = x25519(me.keys.boxSecretKey, parsed.ephemeralPublicKey)!;
  const kek = blake2b256(concatBytes(WRAP_LABEL, parsed.ephemeralPublicKey, me.keys.boxPublicKey), shared);
  const zero12 = new Uint8Array(12);
  const cek = chachaOpen(kek, zero12, wrapped, null)!;
  const ad = parsed.binary.subarray(0, parsed.headerEnd + ENVELOPE_NONCE_BYTES);
  const plaintext = xchachaOpen(cek, parsed.nonce, parsed.ciphertext, ad)!;
  let end = plaintext.length;
  while (plaintext[end - 1] === 0) end--;
  const signature = plaintext.slice(0, SIGNATURE_BYTES);
  const signed = concatBytes(MESSAGE_LABEL, blake2b256(parsed.binary.subarray(0, parsed.headerEnd)), plaintext.subarray(SIGNATURE_BYTES, end));
  if (!verify(signature, signed, sender.card.signPublicKey)) throw new Error('bench: decrypt floor inputs do not verify');
  const floor = () => {
    x25519(me.keys.boxSecretKey, parsed.ephemeralPublicKey);
    chachaOpen(kek, zero12, wrapped, null);
    xchachaOpen(cek, parsed.nonce, parsed.ciphertext, ad);
    verify(signature, signed, sender.card.signPublicKey);
  };
  const runs = plan.quick ? 100 : 400;
  const samples = interleaved(subject, floor, runs, plan.quick ? 20 : 50);
  return { ...vsFloor(samples), envelopeRecipients: recipients, slot: recipients - 1, runs };
}

/** Microseconds per call of each primitive (median of batches), for reading the floors. */
export type PrimitiveTimes = Record<string, number>;

export function benchPrimitives(sender: DeviceFixture, peer: DeviceFixture, plan: Plan): PrimitiveTimes {
  const message = randomBytes(1300); // about what a 1 KiB message's signature covers
  const signature = sign(message, sender.keys.signSecretKey);
  const key = randomBytes(32);
  const cek = randomBytes(32);
  const zero12 = new Uint8Array(12);
  const nonce = randomBytes(24);
  const plaintext = randomBytes(1280);
  const wrapped = chachaSeal(key, zero12, cek, null);
  const body = xchachaSeal(key, nonce, plaintext, null);
  const secret = randomBytes(32);
  const cases: Record<string, () => unknown> = {
    'x25519 (per recipient)': () => x25519(secret, peer.keys.boxPublicKey),
    'x25519Base (fresh secret)': () => x25519Base(randomBytes(32)),
    'ed25519 sign 1.3 KB': () => sign(message, sender.keys.signSecretKey),
    'ed25519 verify 1.3 KB': () => verify(signature, message, sender.keys.signPublicKey),
    'chacha20-poly1305 seal 32 B': () => chachaSeal(key, zero12, cek, null),
    'chacha20-poly1305 open 32 B': () => chachaOpen(key, zero12, wrapped, null),
    'xchacha20-poly1305 seal 1.3 KB': () => xchachaSeal(key, nonce, plaintext, null),
    'xchacha20-poly1305 open 1.3 KB': () => xchachaOpen(key, nonce, body, null),
    'blake2b-256 keyed 83 B (KEK)': () => blake2b256(message.subarray(0, 83), key),
  };
  const out: PrimitiveTimes = {};
  const batches = plan.quick ? 7 : 21;
  for (const [name, fn] of Object.entries(cases)) {
    const perBatch = 50;
    for (let i = 0; i < perBatch * 2; i++) fn();
    const samples: number[] = [];
    for (let b = 0; b < batches; b++) {
      samples.push(
        (timeMs(() => {
          for (let i = 0; i < perBatch; i++) fn();
        }) *
          1000) /
          perBatch,
      );
    }
    out[name] = round(summarize(samples).median);
  }
  return out;
}
