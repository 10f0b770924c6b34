/**
 * Envelope v1 and rewrap (docs/PROTOCOL.md sections 5 and 6): round trips at several fan-outs, the layout
 * against the contract, Twilio's body limit, and every verification failure with its code.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_PREFIX,
  ErrorCode,
  MAX_ENVELOPE_TEXT_CHARS,
  MAX_RECIPIENTS,
  createRewrap,
  decryptWithContentKey,
  findSlots,
  looksLikeEnvelope,
  maxRecipientsForBody,
  openRewrap,
  parseEnvelope,
  ready,
  sealEnvelope,
  verifyCard,
  type SealedEnvelope,
  type VerifiedCard,
} from '../../shared/index.js';
import { blake2b256, chachaOpen, verify, x25519, x25519Base, xchachaOpen } from '../../shared/sodium.js';
import { sealEnvelopeDeterministic } from '../../shared/testing.js';
import {
  CONVERSATION,
  OTHER_CONVERSATION,
  buildEnvelope,
  buildRewrap,
  bytesToHex,
  cat,
  expectCode,
  lowOrderPoints,
  makeApp,
  makeDevice,
  nonCanonicalB64u,
  openAs,
  payloadBytes,
  refB64u,
  seal,
  textBytes,
  type AppKeyFixture,
  type DeviceFixture,
} from '../support/crypto.js';

let app: AppKeyFixture;
/** 432 devices: one more than the most that fit in one envelope with an empty body. Three devices per identity. */
let pool: DeviceFixture[];
let alice: DeviceFixture;
let bob: DeviceFixture;
let carol: DeviceFixture;
let outsider: DeviceFixture;

beforeAll(async () => {
  await ready();
  app = makeApp();
  pool = Array.from({ length: 432 }, (_, i) => makeDevice(app, `user-${Math.floor(i / 3)}`));
  [alice, bob, carol] = [makeDevice(app, 'alice'), makeDevice(app, 'bob'), makeDevice(app, 'carol')];
  outsider = makeDevice(app, 'outsider');
});

/** The sender's card as a receiving client has it: verified against the pinned AppKey. */
function verifiedSenderCard(sender: DeviceFixture): VerifiedCard {
  return verifyCard(JSON.parse(JSON.stringify(sender.wire)), { trustedAppKeys: app.trusted, identity: sender.identity, allowRevoked: true });
}

function expectEveryRecipientOpens(sealed: SealedEnvelope, sender: DeviceFixture, recipients: readonly DeviceFixture[], body: string): void {
  const senderCard = verifiedSenderCard(sender);
  for (const me of recipients) {
    const opened = openAs(sealed.text, me, sender, { senderCard, author: sender.identity });
    expect(opened.payload.body).toBe(body);
    expect(opened.payload.conversationSid).toBe(CONVERSATION);
    expect(opened.parsed.senderCardId).toBe(sender.card.id);
    expect(opened.cek).toEqual(sealed.cek);
  }
}

describe('round trips', () => {
  it.each([1, 2, 10, 100])('%i recipient devices: every one opens it and gets the body', (n) => {
    const sender = pool[0]!;
    const recipients = pool.slice(0, n); // the sender's own device included, as a client does
    const body = `hello ${n} devices`;
    const sealed = seal(sender, recipients, body);
    expect(sealed.recipientCount).toBe(n);
    expect(sealed.text.startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(sealed.text.length).toBeLessThanOrEqual(MAX_ENVELOPE_TEXT_CHARS);
    expect(parseEnvelope(sealed.text).recipientCount).toBe(n);
    expectEveryRecipientOpens(sealed, sender, recipients, body);
    expectCode(() => openAs(sealed.text, outsider, sender), ErrorCode.ENVELOPE_NOT_FOR_ME);
  });

  it('500 recipient devices exceed Twilio’s 32 KB body: refused with ENVELOPE_TOO_LARGE, naming the limit and what fits', () => {
    const recipients = Array.from({ length: 500 }, (_, i) => ({ id: bytesToHex(blake2b256(Uint8Array.of(i >> 8, i & 255)))!, boxPublicKey: alice.keys.boxPublicKey }));
    const err = expectCode(() => sealEnvelope({ sender: alice.sender, recipients, conversationSid: CONVERSATION, body: 'hi' }), ErrorCode.ENVELOPE_TOO_LARGE);
    expect(err.message).toContain(String(MAX_ENVELOPE_TEXT_CHARS));
    expect(err.message).toContain(`at most ${maxRecipientsForBody(2)} recipient devices`);
  });

  it('the most recipient devices that fit (431 for a short body) round-trip, every device opening it', () => {
    const body = '';
    const n = maxRecipientsForBody(0);
    expect(n).toBe(431);
    const recipients = pool.slice(0, n);
    const sealed = seal(pool[5]!, recipients, body);
    expect(sealed.recipientCount).toBe(n);
    expect(sealed.text.length).toBeLessThanOrEqual(MAX_ENVELOPE_TEXT_CHARS);
    expectEveryRecipientOpens(sealed, pool[5]!, recipients, body);
  });

  it.each([
    ['empty', ''],
    ['emoji and combining marks', 'héllo 👋🏽 e\u0301 👨‍👩‍👧'],
    ['right-to-left and CJK', 'مرحبا 你好 שלום'],
    ['JSON-special characters', '"quoted" \\ back\\slash \n new line \t tab \u0000 nul'],
    ['line separators', 'a\u2028b\u2029c'],
    ['a lone surrogate', 'broken \ud800 pair'],
    ['exactly one padding block of payload', 'x'.repeat(128)],
    ['a long message', 'lorem ipsum '.repeat(1500)],
  ])('carries a body with %s exactly', (_what, body) => {
    const sealed = seal(alice, [bob, carol], body);
    expectEveryRecipientOpens(sealed, alice, [bob, carol], body);
  });

  it('seals duplicate recipient cards once', () => {
    const once = seal(alice, [bob, carol], 'dup', { sentAt: 1 });
    const dup = seal(alice, [bob, carol, bob, bob, carol], 'dup', { sentAt: 1 });
    expect(dup.recipientCount).toBe(2);
    expect(parseEnvelope(dup.binary).recipientCount).toBe(2);
    expect(dup.binary.length).toBe(once.binary.length);
    expect(dup.binary.length).toBe(100 + 2 * 56 + 24 + 256 + 16);
    expectEveryRecipientOpens(dup, alice, [bob, carol], 'dup');
  });

  it('lets two cards whose ids share the 8-byte key id both open (every matching slot is tried)', () => {
    const prefix = 'c0ffee00c0ffee00';
    const first = { ...bob, opener: { ...bob.opener, cardId: prefix + '1'.repeat(48) } };
    const second = { ...carol, opener: { ...carol.opener, cardId: prefix + '2'.repeat(48) } };
    for (const order of [[first, second], [second, first]]) {
      const sealed = sealEnvelope({
        sender: alice.sender,
        recipients: order.map((d) => ({ id: d.opener.cardId, boxPublicKey: d.opener.boxPublicKey })),
        conversationSid: CONVERSATION,
        body: 'shared key id',
      });
      for (const me of [first, second]) expect(openAs(sealed.text, me, alice).payload.body).toBe('shared key id');
    }
  });

  it('accepts the binary, the text and an already parsed envelope', () => {
    const sealed = seal(alice, [bob], 'forms');
    expect(openAs(sealed.binary, bob, alice).payload.body).toBe('forms');
    expect(openAs(sealed.text, bob, alice).payload.body).toBe('forms');
    expect(openAs(sealed.text, bob, alice).parsed.binary).toEqual(sealed.binary);
    expect(openAs(parseEnvelope(sealed.text), bob, alice).payload.body).toBe('forms');
    expect(looksLikeEnvelope(sealed.text)).toBe(true);
    expect(looksLikeEnvelope('hello')).toBe(false);
  });
});

describe('layout (docs/PROTOCOL.md sections 5 and 6)', () => {
  it('is exactly what the contract says, checked with the bare primitives', () => {
    const sealed = seal(alice, [bob, carol], 'layout', { sentAt: 1_760_000_000_123 });
    const b = sealed.binary;
    expect(sealed.text).toBe(`e2ee1.${refB64u(b)}`);
    expect(b[0]).toBe(1); // version
    expect(b[1]).toBe(0); // flags
    expect(bytesToHex(b.subarray(2, 34))).toBe(alice.card.id);
    const E = b.subarray(34, 66);
    expect(bytesToHex(b.subarray(66, 98))).toBe(bytesToHex(blake2b256(textBytes('twilio-e2ee/v1/commit'), sealed.cek)));
    expect((b[98]! << 8) | b[99]!).toBe(2);
    const headerEnd = 100 + 2 * 56;
    // Bob's slot: key id, then ChaCha20-Poly1305(KEK, 12 zero bytes, CEK).
    const slots = [b.subarray(100, 156), b.subarray(156, 212)];
    const mine = slots.find((s) => bytesToHex(s.subarray(0, 8)) === bob.card.id.slice(0, 16))!;
    const shared = x25519(bob.keys.boxSecretKey, E)!;
    const kek = blake2b256(cat(textBytes('twilio-e2ee/v1/wrap'), E, bob.keys.boxPublicKey), shared);
    expect(chachaOpen(kek, new Uint8Array(12), mine.subarray(8), null)).toEqual(sealed.cek);
    // Nonce, then XChaCha20-Poly1305 with every byte before the ciphertext as AD.
    const nonce = b.subarray(headerEnd, headerEnd + 24);
    const plaintext = xchachaOpen(sealed.cek, nonce, b.subarray(headerEnd + 24), b.subarray(0, headerEnd + 24))!;
    expect(plaintext.length % 128).toBe(0);
    expect(sealed.payload.messageId).toMatch(/^[0-9a-f]{32}$/);
    const payload = textBytes(JSON.stringify({ conversationSid: CONVERSATION, messageId: sealed.payload.messageId, sentAt: 1_760_000_000_123, body: 'layout' }));
    expect(plaintext.subarray(64, 64 + payload.length)).toEqual(payload);
    expect(plaintext.subarray(64 + payload.length).every((x) => x === 0)).toBe(true);
    expect(64 + payload.length + 128).toBeGreaterThan(plaintext.length); // less than one block of padding
    // signature = Ed25519(sender, "twilio-e2ee/v1/msg\n" || BLAKE2b-256(header) || payload)
    const signed = cat(textBytes('twilio-e2ee/v1/msg\n'), blake2b256(b.subarray(0, headerEnd)), payload);
    expect(verify(plaintext.subarray(0, 64), signed, alice.keys.signPublicKey)).toBe(true);
  });

  it('with fixed randomness (shared/testing.ts), equals an envelope built independently from the contract, byte for byte', () => {
    const randomness = { cek: new Uint8Array(32).fill(1), ephemeralSecret: new Uint8Array(32).fill(2), nonce: new Uint8Array(24).fill(3), messageId: '11'.repeat(16) };
    const fields = { messageId: randomness.messageId, sentAt: 1_760_000_000_000, body: 'vector' };
    const input = { sender: alice.sender, recipients: [bob.card, carol.card], conversationSid: CONVERSATION, body: fields.body, sentAt: fields.sentAt };
    const sealed = sealEnvelopeDeterministic(input, randomness);
    const again = sealEnvelopeDeterministic(input, randomness);
    expect(again.binary).toEqual(sealed.binary);
    const built = buildEnvelope({
      senderCardId: alice.card.id,
      recipients: [bob.card, carol.card],
      payload: payloadBytes(fields),
      signSecretKey: alice.keys.signSecretKey,
      cek: randomness.cek,
      ephemeralSecret: randomness.ephemeralSecret,
      nonce: randomness.nonce,
    });
    expect(bytesToHex(sealed.binary)).toBe(bytesToHex(built.binary));
    expect(bytesToHex(sealed.binary.subarray(34, 66))).toBe(bytesToHex(x25519Base(randomness.ephemeralSecret)));
  });

  it('uses fresh randomness (CEK, ephemeral key, nonce, messageId) for every message', () => {
    const a = seal(alice, [bob], 'same');
    const b = seal(alice, [bob], 'same');
    expect(a.cek).not.toEqual(b.cek);
    expect(a.binary.subarray(34, 66)).not.toEqual(b.binary.subarray(34, 66));
    expect(a.payload.messageId).not.toBe(b.payload.messageId);
    expect(a.payload.messageId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps fixed randomness out of the public API: sealEnvelope ignores it, shared/index.ts does not export the testing entry point', async () => {
    const fixed = { cek: new Uint8Array(32).fill(1), ephemeralSecret: new Uint8Array(32).fill(2), nonce: new Uint8Array(24).fill(3), messageId: '11'.repeat(16) };
    const input = { sender: alice.sender, recipients: [bob.card], conversationSid: CONVERSATION, body: 'same', sentAt: 1, randomness: fixed, messageId: fixed.messageId };
    const [a, b] = [sealEnvelope(input), sealEnvelope(input)];
    expect(a.cek).not.toEqual(fixed.cek);
    expect(a.payload.messageId).not.toBe(fixed.messageId);
    expect(a.binary).not.toEqual(b.binary);
    const core = await import('../../shared/index.js');
    expect(Object.keys(core).filter((name) => /deterministic|randomness/i.test(name))).toEqual([]);
  });

  it('findSlots gives the offset of each recipient slot addressed to a card, and none for an outsider', () => {
    const parsed = parseEnvelope(seal(alice, [bob, carol], 'slots').binary);
    const offsets = [bob, carol].map((d) => findSlots(parsed, d.card.id));
    expect(offsets.flat().sort()).toEqual([100, 156]);
    for (const [i, d] of [bob, carol].entries()) expect(bytesToHex(parsed.binary.subarray(offsets[i]![0]!, offsets[i]![0]! + 8))).toBe(d.card.id.slice(0, 16));
    expect(findSlots(parsed, outsider.card.id)).toEqual([]);
  });
});

describe('size limits', () => {
  it('refuses a body that cannot fit, with ENVELOPE_TOO_LARGE naming Twilio’s limit', () => {
    const err = expectCode(() => seal(alice, [bob], 'x'.repeat(MAX_ENVELOPE_TEXT_CHARS)), ErrorCode.ENVELOPE_TOO_LARGE);
    expect(err.message).toContain('32768');
    expect(MAX_ENVELOPE_TEXT_CHARS).toBe(32_768);
  });

  it('maxRecipientsForBody(1024) is at least 400', () => {
    expect(maxRecipientsForBody(1024)).toBeGreaterThanOrEqual(400);
  });

  it.each([0, 1, 100, 1024, 4000, 12_000, 24_000, 24_400])(
    'maxRecipientsForBody(%i) is exactly what sealEnvelope accepts: that many seal, one more is refused',
    (size) => {
      const body = 'm'.repeat(size);
      const n = maxRecipientsForBody(size);
      const sender = pool[0]!;
      if (n > 0) {
        const sealed = seal(sender, pool.slice(0, n), body);
        expect(sealed.recipientCount).toBe(n);
        expect(sealed.text.length).toBeLessThanOrEqual(MAX_ENVELOPE_TEXT_CHARS);
        expect(openAs(sealed.text, pool[n - 1]!, sender).payload.body).toBe(body);
      }
      const err = expectCode(() => seal(sender, pool.slice(0, n + 1), body), ErrorCode.ENVELOPE_TOO_LARGE);
      expect(err.message).toContain(`at most ${n} recipient devices`);
    },
  );

  it.each([
    ['new lines', '\n'.repeat(600)],
    ['quotes and backslashes', '"\\'.repeat(300)],
    ['control characters', '\u0001'.repeat(150)],
    ['emoji', '👋'.repeat(300)],
  ])('maxRecipientsForBody counts the body as it appears in the payload JSON (%s)', (_what, body) => {
    const size = textBytes(JSON.stringify(body)).length - 2; // escaped, UTF-8, without the quotes
    expect(size).toBeGreaterThanOrEqual(textBytes(body).length);
    const n = maxRecipientsForBody(size);
    expect(seal(pool[0]!, pool.slice(0, n), body).recipientCount).toBe(n);
    expectCode(() => seal(pool[0]!, pool.slice(0, n + 1), body), ErrorCode.ENVELOPE_TOO_LARGE);
  });

  it('parseEnvelope refuses a text over 32 KB and a binary over what such a text can carry', () => {
    expectCode(() => parseEnvelope(ENVELOPE_PREFIX + 'A'.repeat(MAX_ENVELOPE_TEXT_CHARS)), ErrorCode.ENVELOPE_TOO_LARGE);
    expectCode(() => parseEnvelope(new Uint8Array(24_572)), ErrorCode.ENVELOPE_TOO_LARGE);
  });

  it('refuses more than 4096 recipient devices, before any key work', () => {
    const recipients = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => ({ id: i.toString(16).padStart(64, '0'), boxPublicKey: bob.keys.boxPublicKey }));
    expectCode(() => sealEnvelope({ sender: alice.sender, recipients, conversationSid: CONVERSATION, body: '' }), ErrorCode.ENVELOPE_TOO_MANY_RECIPIENTS);
  });

  it('refuses no recipients, a malformed recipient and an empty conversation SID', () => {
    expectCode(() => sealEnvelope({ sender: alice.sender, recipients: [], conversationSid: CONVERSATION, body: '' }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => sealEnvelope({ sender: alice.sender, recipients: [{ id: 'nope', boxPublicKey: bob.keys.boxPublicKey }], conversationSid: CONVERSATION, body: '' }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => sealEnvelope({ sender: alice.sender, recipients: [{ id: bob.card.id, boxPublicKey: new Uint8Array(31) }], conversationSid: CONVERSATION, body: '' }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => sealEnvelope({ sender: alice.sender, recipients: [bob.card], conversationSid: '', body: '' }), ErrorCode.INVALID_ARGUMENT);
  });

  it('refuses a recipient box key of low order', () => {
    for (const point of lowOrderPoints()) {
      expectCode(() => sealEnvelope({ sender: alice.sender, recipients: [bob.card, { id: carol.card.id, boxPublicKey: point }], conversationSid: CONVERSATION, body: '' }), ErrorCode.CARD_WEAK_KEY);
    }
  });
});

describe('verification', () => {
  let sealed: SealedEnvelope;
  beforeAll(() => {
    sealed = seal(alice, [bob, carol], 'verify me');
  });

  it('a device that is not a recipient gets ENVELOPE_NOT_FOR_ME', () => {
    expectCode(() => openAs(sealed.text, outsider, alice), ErrorCode.ENVELOPE_NOT_FOR_ME);
    // Even the sender, when it did not seal for its own device.
    expectCode(() => openAs(sealed.text, alice, alice), ErrorCode.ENVELOPE_NOT_FOR_ME);
  });

  it('a message signed for another conversation gets ENVELOPE_CONVERSATION_MISMATCH', () => {
    expectCode(() => openAs(sealed.text, bob, alice, { conversationSid: OTHER_CONVERSATION }), ErrorCode.ENVELOPE_CONVERSATION_MISMATCH);
    const elsewhere = seal(alice, [bob], 'moved', { conversationSid: OTHER_CONVERSATION });
    expectCode(() => openAs(elsewhere.text, bob, alice), ErrorCode.ENVELOPE_CONVERSATION_MISMATCH);
  });

  it('a message posted by someone other than the card’s identity gets ENVELOPE_SENDER_NOT_AUTHOR', () => {
    const err = expectCode(() => openAs(sealed.text, bob, alice, { author: 'mallory' }), ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR);
    expect(err.message).toContain('mallory');
    expectCode(() => openAs(sealed.text, bob, alice, { author: null }), ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR);
    // Without an author to check, the signature alone decides.
    expect(openAs(sealed.text, bob, alice, { author: undefined }).payload.body).toBe('verify me');
  });

  it('a sender card other than the one named in the envelope gets ENVELOPE_SENDER_CARD_MISMATCH', () => {
    expectCode(() => openAs(sealed.text, bob, alice, { senderCard: carol.card }), ErrorCode.ENVELOPE_SENDER_CARD_MISMATCH);
    const aliceSecondDevice = makeDevice(app, 'alice');
    expectCode(() => openAs(sealed.text, bob, alice, { senderCard: aliceSecondDevice.card }), ErrorCode.ENVELOPE_SENDER_CARD_MISMATCH);
  });

  it('a card with the right id but another sign key gets ENVELOPE_SIGNATURE_INVALID', () => {
    expectCode(() => openAs(sealed.text, bob, alice, { senderCard: { ...alice.card, signPublicKey: carol.keys.signPublicKey } }), ErrorCode.ENVELOPE_SIGNATURE_INVALID);
  });

  it('a message signed by another key than the sender card’s gets ENVELOPE_SIGNATURE_INVALID', () => {
    const forged = sealEnvelope({ sender: { cardId: alice.card.id, signSecretKey: carol.keys.signSecretKey }, recipients: [bob.card], conversationSid: CONVERSATION, body: 'i am alice' });
    expectCode(() => openAs(forged.text, bob, alice), ErrorCode.ENVELOPE_SIGNATURE_INVALID);
  });

  it('a replayed messageId gets ENVELOPE_REPLAY; a failed open does not burn the id', () => {
    const seen = new Set<string>();
    const seenBefore = (conversationSid: string, messageId: string) => {
      const key = `${conversationSid}/${messageId}`;
      if (seen.has(key)) return true;
      seen.add(key);
      return false;
    };
    expectCode(() => openAs(sealed.text, bob, alice, { seenBefore, author: 'mallory' }), ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR);
    expect(seen.size).toBe(0);
    expect(openAs(sealed.text, bob, alice, { seenBefore }).payload.body).toBe('verify me');
    expect(seen.has(`${CONVERSATION}/${sealed.payload.messageId}`)).toBe(true);
    expectCode(() => openAs(sealed.text, bob, alice, { seenBefore }), ErrorCode.ENVELOPE_REPLAY);
    // The same message copied into the same conversation again (another text is the same message).
    expectCode(() => openAs(sealed.binary, carol, alice, { seenBefore }), ErrorCode.ENVELOPE_REPLAY);
    // A fresh message from the same sender is fine.
    expect(openAs(seal(alice, [bob], 'next').text, bob, alice, { seenBefore }).payload.body).toBe('next');
  });

  it('a revoked sender card: a message sent before the revocation opens, one sent at or after it gets ENVELOPE_SENDER_REVOKED', () => {
    const revokedAt = 1_760_000_000;
    const dave = makeDevice(app, 'dave', { revokedAt });
    expect(dave.card.revokedAt).toBe(revokedAt);
    const before = seal(dave, [bob], 'before', { sentAt: revokedAt * 1000 - 1 });
    const at = seal(dave, [bob], 'at', { sentAt: revokedAt * 1000 });
    const after = seal(dave, [bob], 'after', { sentAt: revokedAt * 1000 + 60_000 });
    expect(openAs(before.text, bob, dave).payload.body).toBe('before');
    expectCode(() => openAs(at.text, bob, dave), ErrorCode.ENVELOPE_SENDER_REVOKED);
    expectCode(() => openAs(after.text, bob, dave), ErrorCode.ENVELOPE_SENDER_REVOKED);
    // The transport's timestamp, when given, wins over the sender's claim (a stolen key cannot backdate).
    expectCode(() => openAs(before.text, bob, dave, { sentAt: revokedAt * 1000 + 5 }), ErrorCode.ENVELOPE_SENDER_REVOKED);
    expect(openAs(after.text, bob, dave, { sentAt: revokedAt * 1000 - 5 }).payload.body).toBe('after');
  });

  it('an envelope of version 2 gets ENVELOPE_UNSUPPORTED_VERSION, as binary and as text', () => {
    const v2 = sealed.binary.slice();
    v2[0] = 2;
    const err = expectCode(() => openAs(v2, bob, alice), ErrorCode.ENVELOPE_UNSUPPORTED_VERSION);
    expect(err.message).toContain('2');
    expectCode(() => openAs(ENVELOPE_PREFIX + refB64u(v2), bob, alice), ErrorCode.ENVELOPE_UNSUPPORTED_VERSION);
    expectCode(() => parseEnvelope(v2), ErrorCode.ENVELOPE_UNSUPPORTED_VERSION);
  });

  it('non-zero flags, a missing prefix and a non-canonical text are ENVELOPE_MALFORMED', () => {
    const flagged = sealed.binary.slice();
    flagged[1] = 1;
    expectCode(() => parseEnvelope(flagged), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => parseEnvelope(sealed.text.slice(ENVELOPE_PREFIX.length)), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => parseEnvelope(`${sealed.text}=`), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => parseEnvelope(`${sealed.text.slice(0, 20)} ${sealed.text.slice(20)}`), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => parseEnvelope(42 as unknown as string), ErrorCode.ENVELOPE_MALFORMED);
  });

  it('a sender cannot give different recipients different content keys (key commitment)', () => {
    const cek = new Uint8Array(32).fill(9);
    const { binary } = buildEnvelope({
      senderCardId: alice.card.id,
      recipients: [bob.card, carol.card],
      payload: payloadBytes(),
      signSecretKey: alice.keys.signSecretKey,
      cek,
      slotCeks: [cek, new Uint8Array(32).fill(10)],
    });
    expect(openAs(binary, bob, alice).payload.body).toBe('hello');
    expectCode(() => openAs(binary, carol, alice), ErrorCode.ENVELOPE_COMMITMENT_MISMATCH);
  });

  it('checks the decrypted content: padding, payload members and signature', () => {
    const base = { senderCardId: alice.card.id, recipients: [bob.card], signSecretKey: alice.keys.signSecretKey };
    const open = (binary: Uint8Array) => openAs(binary, bob, alice);
    expect(open(buildEnvelope({ ...base, payload: payloadBytes({ body: 'ok' }) }).binary).payload.body).toBe('ok');
    expectCode(() => open(buildEnvelope({ ...base, payload: payloadBytes(), extraPadding: 128 }).binary), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => open(buildEnvelope({ ...base, payload: payloadBytes(), signSecretKey: undefined }).binary), ErrorCode.ENVELOPE_SIGNATURE_INVALID);
    expectCode(() => open(buildEnvelope({ ...base, payload: textBytes('not json') }).binary), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => open(buildEnvelope({ ...base, payload: payloadBytes({ messageId: 'AB'.repeat(16) }) }).binary), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => open(buildEnvelope({ ...base, payload: payloadBytes({ sentAt: 1.5 }) }).binary), ErrorCode.ENVELOPE_MALFORMED);
    const extraMember = textBytes(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(payloadBytes())), admin: true }));
    expectCode(() => open(buildEnvelope({ ...base, payload: extraMember }).binary), ErrorCode.ENVELOPE_MALFORMED);
    const duplicate = textBytes(`${new TextDecoder().decode(payloadBytes()).slice(0, -1)},"body":"other"}`);
    expectCode(() => open(buildEnvelope({ ...base, payload: duplicate }).binary), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => open(buildEnvelope({ ...base, payload: Uint8Array.of(0x7b, 0xff, 0x7d) }).binary), ErrorCode.ENVELOPE_MALFORMED);
    expectCode(() => open(buildEnvelope({ ...base, payload: cat(Uint8Array.of(0xef, 0xbb, 0xbf), payloadBytes()) }).binary), ErrorCode.ENVELOPE_MALFORMED);
  });
});

describe('rewrap', () => {
  let sealed: SealedEnvelope;
  let other: SealedEnvelope;
  let dave: DeviceFixture; // a device added later: not a recipient of the original envelope
  beforeAll(() => {
    sealed = seal(alice, [bob], 'history');
    other = seal(alice, [bob], 'another message');
    dave = makeDevice(app, 'dave');
  });

  it('createRewrap → openEnvelope({rewrap}) opens the original envelope and verifies the original signature', () => {
    expectCode(() => openAs(sealed.text, dave, alice), ErrorCode.ENVELOPE_NOT_FOR_ME);
    const rewrap = createRewrap(sealed.cek, parseEnvelope(sealed.text), dave.keys.boxPublicKey);
    expect(Buffer.from(rewrap, 'base64url').length).toBe(80);
    expect(openRewrap(rewrap, parseEnvelope(sealed.text), dave.opener)).toEqual(sealed.cek);
    const opened = openAs(sealed.text, dave, alice, { rewrap });
    expect(opened.payload).toEqual(sealed.payload);
    // The original sender's signature is what is checked: another key under alice's card id fails.
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap, senderCard: { ...alice.card, signPublicKey: carol.keys.signPublicKey } }), ErrorCode.ENVELOPE_SIGNATURE_INVALID);
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap, author: 'mallory' }), ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR);
  });

  it('a rewrap built by hand from the contract opens it too', () => {
    const rewrap = buildRewrap(sealed.cek, sealed.binary, dave.keys.boxPublicKey);
    expect(openAs(sealed.text, dave, alice, { rewrap }).payload.body).toBe('history');
  });

  it('a rewrap bound to another envelope does not open this one', () => {
    const boundElsewhere = createRewrap(sealed.cek, parseEnvelope(other.text), dave.keys.boxPublicKey);
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: boundElsewhere }), ErrorCode.ENVELOPE_DECRYPT_FAILED);
    const forOther = createRewrap(other.cek, parseEnvelope(other.text), dave.keys.boxPublicKey);
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: forOther }), ErrorCode.ENVELOPE_DECRYPT_FAILED);
  });

  it('a rewrap carrying a different content key gets ENVELOPE_COMMITMENT_MISMATCH', () => {
    const random = crypto.getRandomValues(new Uint8Array(32));
    const viaApi = createRewrap(random, parseEnvelope(sealed.text), dave.keys.boxPublicKey);
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: viaApi }), ErrorCode.ENVELOPE_COMMITMENT_MISMATCH);
    const byHand = buildRewrap(other.cek, sealed.binary, dave.keys.boxPublicKey); // a real CEK, of another message
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: byHand }), ErrorCode.ENVELOPE_COMMITMENT_MISMATCH);
    expectCode(() => decryptWithContentKey(parseEnvelope(sealed.text), random), ErrorCode.ENVELOPE_COMMITMENT_MISMATCH);
  });

  it('a rewrap for another box key does not open', () => {
    const forBob = createRewrap(sealed.cek, parseEnvelope(sealed.text), bob.keys.boxPublicKey);
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: forBob }), ErrorCode.ENVELOPE_DECRYPT_FAILED);
  });

  it('a rewrap whose ephemeral key has low order fails as undecryptable, not with a crash', () => {
    for (const point of lowOrderPoints()) {
      const rewrap = refB64u(cat(point, new Uint8Array(48)));
      expectCode(() => openAs(sealed.text, dave, alice, { rewrap }), ErrorCode.ENVELOPE_DECRYPT_FAILED);
    }
  });

  it('createRewrap refuses a low-order recipient box key', () => {
    expectCode(() => createRewrap(sealed.cek, parseEnvelope(sealed.text), new Uint8Array(32)), ErrorCode.CARD_WEAK_KEY);
  });

  it.each([
    ['empty', () => ''],
    ['not base64url', () => 'not a rewrap!'],
    ['with "=" padding', () => `${createRewrap(sealed.cek, parseEnvelope(sealed.text), dave.keys.boxPublicKey)}=`],
    ['standard base64', () => Buffer.from(new Uint8Array(80).fill(0xfb)).toString('base64')],
    ['79 bytes', () => refB64u(new Uint8Array(79))],
    ['81 bytes', () => refB64u(new Uint8Array(81))],
    ['non-canonical spare bits', () => nonCanonicalB64u(createRewrap(sealed.cek, parseEnvelope(sealed.text), dave.keys.boxPublicKey))],
  ])('a malformed rewrap (%s) gets REWRAP_MALFORMED', (_what, make) => {
    expectCode(() => openAs(sealed.text, dave, alice, { rewrap: make() }), ErrorCode.REWRAP_MALFORMED);
  });
});
