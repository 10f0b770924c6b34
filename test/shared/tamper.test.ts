/**
 * Exhaustive tampering with one sealed envelope: every single bit flipped, every truncation, every
 * character of the text form replaced. Each must be refused with a typed error, never opened and
 * never an untyped exception; bit flips are also checked against the region they hit, which shows
 * that the AEAD's associated data covers the whole header.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_PREFIX, ErrorCode, createRewrap, parseEnvelope, ready, type SealedEnvelope } from '../../shared/index.js';
import { ENVELOPE_OPEN_CODES, makeApp, makeDevice, openAs, refB64u, seal, typedOutcome, type DeviceFixture } from '../support/crypto.js';

const B64U = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

let alice: DeviceFixture;
let bob: DeviceFixture;
let carol: DeviceFixture;
let dave: DeviceFixture;
let sealed: SealedEnvelope;

beforeAll(async () => {
  await ready();
  const app = makeApp();
  [alice, bob, carol, dave] = [makeDevice(app, 'alice'), makeDevice(app, 'bob'), makeDevice(app, 'carol'), makeDevice(app, 'dave')];
  sealed = seal(alice, [alice, bob, carol], 'tamper with me');
  expect(openAs(sealed.binary, bob, alice).payload.body).toBe('tamper with me');
});

/** Opens as bob; returns the error code, failing the test on success or on an untyped exception. */
function refusedWith(envelope: string | Uint8Array, extra: Parameters<typeof openAs>[3] = {}): string {
  const outcome = typedOutcome(() => openAs(envelope, bob, alice, extra), ENVELOPE_OPEN_CODES);
  if (outcome.ok) throw new Error('a tampered envelope opened');
  return outcome.error.code;
}

/** What flipping a bit of byte `offset` must give, by the region of the layout it falls in. */
function expectedCode(offset: number, bobSlot: number, headerEnd: number): ErrorCode {
  if (offset === 0) return ErrorCode.ENVELOPE_UNSUPPORTED_VERSION;
  if (offset === 1) return ErrorCode.ENVELOPE_MALFORMED; // flags
  if (offset >= 66 && offset < 98) return ErrorCode.ENVELOPE_COMMITMENT_MISMATCH;
  if (offset === 98 || offset === 99) return ErrorCode.ENVELOPE_MALFORMED; // recipient count vs length
  if (offset >= bobSlot && offset < bobSlot + 8) return ErrorCode.ENVELOPE_NOT_FOR_ME; // bob's key id
  // Sender card id, ephemeral key, any wrapped key, the nonce, the ciphertext: nothing decrypts.
  expect(offset).toBeLessThan(sealed.binary.length);
  expect(headerEnd).toBeGreaterThan(100);
  return ErrorCode.ENVELOPE_DECRYPT_FAILED;
}

describe('tampering with a sealed envelope (3 recipients)', () => {
  it('every single bit flip of the binary is refused, with the code of the region it hits', () => {
    const binary = sealed.binary;
    const parsed = parseEnvelope(binary);
    expect(parsed.recipientCount).toBe(3);
    let bobSlot = -1;
    for (let o = 100; o < parsed.headerEnd; o += 56) if (Buffer.from(binary.subarray(o, o + 8)).toString('hex') === bob.card.id.slice(0, 16)) bobSlot = o;
    expect(bobSlot).toBeGreaterThanOrEqual(100);

    const mismatches: string[] = [];
    const seen = new Map<string, number>();
    for (let bit = 0; bit < binary.length * 8; bit++) {
      const copy = binary.slice();
      copy[bit >> 3]! ^= 1 << (bit & 7);
      const code = refusedWith(copy);
      seen.set(code, (seen.get(code) ?? 0) + 1);
      const want = expectedCode(bit >> 3, bobSlot, parsed.headerEnd);
      if (code !== want) mismatches.push(`byte ${bit >> 3} bit ${bit & 7}: ${code}, expected ${want}`);
    }
    expect(mismatches).toEqual([]);
    expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(binary.length * 8);
  });

  it('every truncation of the binary (lengths 0..len-1) is refused', () => {
    for (let len = 0; len < sealed.binary.length; len++) refusedWith(sealed.binary.slice(0, len));
  });

  it('every truncation of the text form is refused', () => {
    for (let len = 0; len < sealed.text.length; len++) refusedWith(sealed.text.slice(0, len));
  });

  it('replacing any character of the text form with another base64url character is refused', () => {
    // Each position gets the six characters whose value differs from it in one bit (so every bit
    // the text carries is changed once, spare bits included) and three more picked by a fixed
    // sequence; the prefix and the last two characters (where the spare bits sit) get all 63 or 64.
    // All 63 everywhere would be ~48,000 opens (~8 s); this keeps the test near one second.
    const text = sealed.text;
    let lcg = 12345;
    let variants = 0;
    for (let i = 0; i < text.length; i++) {
      const v = B64U.indexOf(text[i]!);
      const exhaustive = v < 0 || i < ENVELOPE_PREFIX.length || i >= text.length - 2;
      const alternatives = new Set<string>();
      if (exhaustive) for (const c of B64U) alternatives.add(c);
      else {
        for (let k = 0; k < 6; k++) alternatives.add(B64U[v ^ (1 << k)]!);
        while (alternatives.size < 9) alternatives.add(B64U[(lcg = (lcg * 1103515245 + 12345) % 2 ** 31) % 64]!);
      }
      alternatives.delete(text[i]!);
      for (const c of alternatives) {
        refusedWith(text.slice(0, i) + c + text.slice(i + 1));
        variants++;
      }
    }
    expect(variants).toBeGreaterThan(text.length * 8);
  });

  it('every single bit flip of a rewrap is refused', () => {
    const parsed = parseEnvelope(sealed.binary);
    const rewrap = Buffer.from(createRewrap(sealed.cek, parsed, dave.keys.boxPublicKey), 'base64url');
    expect(openAs(sealed.text, dave, alice, { rewrap: refB64u(rewrap) }).payload.body).toBe('tamper with me');
    for (let bit = 0; bit < rewrap.length * 8; bit++) {
      const copy = Uint8Array.from(rewrap);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      const outcome = typedOutcome(() => openAs(sealed.text, dave, alice, { rewrap: refB64u(copy) }), ENVELOPE_OPEN_CODES);
      expect(outcome.ok, `bit ${bit}`).toBe(false);
      if (!outcome.ok) expect(outcome.error.code).toBe(ErrorCode.ENVELOPE_DECRYPT_FAILED);
    }
  });
});
