/**
 * Property tests: whatever arrives from the network (random text, random bytes, near-valid
 * envelopes, random JSON as cards and snapshots), the parsers and verifiers of the core either
 * succeed or throw an E2EEError with a known code of their own concern; never a TypeError,
 * RangeError or a libsodium exception. Near-valid inputs are built to get past the first checks.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_PREFIX,
  ErrorCode,
  fromB64u,
  openEnvelope,
  parseCardRequest,
  parseEnvelope,
  parseSnapshot,
  ready,
  toB64u,
  verifyCard,
  type OpenOptions,
  type SealedEnvelope,
} from '../../shared/index.js';
import {
  CARD_CODES,
  CONVERSATION,
  ENVELOPE_OPEN_CODES,
  OTHER_CONVERSATION,
  ENVELOPE_PARSE_CODES,
  buildEnvelope,
  lowOrderPoints,
  makeApp,
  makeDevice,
  nonCanonicalB64u,
  refB64u,
  seal,
  signSnapshot,
  snapshotMembers,
  textBytes,
  typedOutcome,
  type AppKeyFixture,
  type DeviceFixture,
} from '../support/crypto.js';
import { runs } from '../support/fast-check.js';

let app: AppKeyFixture;
let alice: DeviceFixture;
let bob: DeviceFixture;
let carol: DeviceFixture;
let sealed: SealedEnvelope;
let openOptions: OpenOptions;

beforeAll(async () => {
  await ready();
  app = makeApp();
  [alice, bob, carol] = [makeDevice(app, 'alice'), makeDevice(app, 'bob'), makeDevice(app, 'carol')];
  sealed = seal(alice, [bob, carol], 'property');
  openOptions = { recipient: bob.opener, senderCard: alice.card, conversationSid: CONVERSATION, author: 'alice' };
});

const ENCODING_CODES: ReadonlySet<string> = new Set([ErrorCode.ENCODING_INVALID]);
const PARSE_SNAPSHOT_CODES: ReadonlySet<string> = new Set([ErrorCode.CARD_MALFORMED, ErrorCode.CARD_TOO_LARGE, ErrorCode.CARD_WEAK_KEY, ErrorCode.ENCODING_INVALID]);

/** Opening must fail (the input cannot be a valid envelope for bob), with an envelope code. */
function mustNotOpen(input: string | Uint8Array): void {
  const outcome = typedOutcome(() => openEnvelope(input, openOptions), ENVELOPE_OPEN_CODES);
  expect(outcome.ok).toBe(false);
}

const hexString = (constraints: { minLength: number; maxLength: number }) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), ...constraints });

const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. '.split('')), maxLength: 400 }),
);

const anything = fc.anything({
  maxDepth: 3,
  key: fc.oneof(fc.constantFrom('id', 'snapshot', 'selfSignature', 'appSignature', 'appKeyId', 'revokedAt', '__proto__', 'constructor', 'toString'), fc.string()),
  withBoxedValues: true,
  withSet: true,
  withMap: true,
  withObjectString: true,
  withNullPrototype: true,
  withBigInt: true,
  withDate: true,
  withTypedArray: true,
  withSparseArray: true,
  withUnicodeString: true,
});

describe('fromB64u', () => {
  it('on any string: returns the bytes whose canonical encoding is that string, or throws ENCODING_INVALID', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const outcome = typedOutcome(() => fromB64u(text), ENCODING_CODES);
        if (outcome.ok) expect(toB64u(outcome.value)).toBe(text);
      }),
      { numRuns: runs(1500) },
    );
  });
});

describe('parseEnvelope and openEnvelope on random input', () => {
  it('any string, with or without the prefix', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, anyText.map((t) => ENVELOPE_PREFIX + t), fc.uint8Array({ maxLength: 600 }).map((b) => ENVELOPE_PREFIX + refB64u(b))), (text) => {
        typedOutcome(() => parseEnvelope(text), ENVELOPE_PARSE_CODES);
        mustNotOpen(text);
      }),
      { numRuns: runs(1000) },
    );
  });

  it('any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        typedOutcome(() => parseEnvelope(bytes), ENVELOPE_PARSE_CODES);
        mustNotOpen(bytes);
      }),
      { numRuns: runs(700) },
    );
  });

  it('a well-formed header (version 1, recipient count, a slot for this device) followed by random bytes', () => {
    const header = fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      mySlot: fc.nat(3),
      blocks: fc.integer({ min: 1, max: 3 }),
      lengthSkew: fc.oneof(fc.constant(0), fc.integer({ min: -20, max: 20 })),
      seed: fc.uint8Array({ minLength: 64, maxLength: 64 }),
      ephemeral: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constant(new Uint8Array(32)), fc.constant(bob.keys.boxPublicKey)),
      asText: fc.boolean(),
    });
    fc.assert(
      fc.property(header, (h) => {
        const length = 100 + h.n * 56 + 24 + 16 + 128 * h.blocks + h.lengthSkew;
        const b = crypto.getRandomValues(new Uint8Array(Math.max(0, length)));
        b.set([1, 0], 0);
        b.set(Buffer.from(alice.card.id, 'hex'), 2);
        b.set(h.ephemeral, 34);
        b.set(h.seed.subarray(0, 32), 66);
        b.set([h.n >> 8, h.n & 0xff], 98);
        b.set(Buffer.from(bob.card.id.slice(0, 16), 'hex'), 100 + 56 * (h.mySlot % h.n));
        const outcome = typedOutcome(() => parseEnvelope(b), ENVELOPE_PARSE_CODES);
        if (h.lengthSkew === 0) expect(outcome.ok).toBe(true);
        mustNotOpen(h.asText ? ENVELOPE_PREFIX + refB64u(b) : b);
      }),
      { numRuns: runs(700) },
    );
  });

  it('a prefix of a real envelope followed by random bytes', () => {
    fc.assert(
      fc.property(fc.nat(sealed.binary.length - 1), fc.uint8Array({ maxLength: 400 }), (cut, tail) => {
        const b = new Uint8Array(cut + tail.length);
        b.set(sealed.binary.subarray(0, cut));
        b.set(tail, cut);
        mustNotOpen(b);
      }),
      { numRuns: runs(700) },
    );
  });

  it('a real envelope with mutated header fields (version, flags, ids, keys, count, slots, nonce)', () => {
    const adEnd = parseEnvelope(sealed.binary).headerEnd + 24;
    const mutation = fc.record({ offset: fc.nat(adEnd - 1), xor: fc.integer({ min: 1, max: 255 }) });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.option(fc.integer({ min: 0, max: 65535 })), (mutations, count) => {
        const b = sealed.binary.slice();
        for (const m of mutations) b[m.offset]! ^= m.xor;
        if (count !== null) b.set([count >> 8, count & 0xff], 98);
        fc.pre(b.some((x, i) => x !== sealed.binary[i]));
        mustNotOpen(b);
      }),
      { numRuns: runs(700) },
    );
  });
});

describe('openEnvelope on correctly encrypted and signed envelopes with random content', () => {
  const build = (payload: Uint8Array, extraPadding = 0) =>
    buildEnvelope({ senderCardId: alice.card.id, recipients: [bob.card], payload, signSecretKey: alice.keys.signSecretKey, extraPadding }).binary;

  it('random payload bytes and padding: opens only a valid payload, else ENVELOPE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(0, 0, 128), (payload, extraPadding) => {
        const outcome = typedOutcome(() => openEnvelope(build(payload, extraPadding), openOptions), new Set([ErrorCode.ENVELOPE_MALFORMED]));
        expect(outcome.ok).toBe(false);
      }),
      { numRuns: runs(300) },
    );
  });

  it('random JSON objects as payload: opens exactly the well-formed ones, reading what JSON.parse reads', () => {
    const member = fc.oneof(fc.constantFrom('conversationSid', 'messageId', 'sentAt', 'body'), fc.string({ maxLength: 8 }));
    const value = fc.oneof(
      fc.constant(CONVERSATION),
      fc.constantFrom('00112233445566778899aabbccddeeff', '00112233445566778899AABBCCDDEEFF', '0011'),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.integer({ min: -10, max: 2 ** 53 + 10 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const biased = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: value });
    const complete = fc.record({
      conversationSid: biased(fc.constantFrom(CONVERSATION, CONVERSATION, OTHER_CONVERSATION)),
      messageId: biased(hexString({ minLength: 32, maxLength: 32 })),
      sentAt: biased(fc.maxSafeNat()),
      body: biased(fc.string({ unit: 'binary', maxLength: 40 })),
    });
    const counts = { opened: 0, malformed: 0, otherConversation: 0 };
    fc.assert(
      fc.property(fc.oneof(complete, fc.dictionary(member, value, { maxKeys: 6 })), (obj) => {
        const text = JSON.stringify(obj);
        const outcome = typedOutcome(() => openEnvelope(build(textBytes(text)), openOptions), new Set([ErrorCode.ENVELOPE_MALFORMED, ErrorCode.ENVELOPE_CONVERSATION_MISMATCH]));
        const o = obj as Record<string, unknown>;
        const wellFormed =
          Object.keys(o).length === 4 &&
          typeof o.conversationSid === 'string' &&
          typeof o.messageId === 'string' &&
          /^[0-9a-f]{32}$/.test(o.messageId) &&
          Number.isSafeInteger(o.sentAt) &&
          (o.sentAt as number) >= 0 &&
          typeof o.body === 'string';
        if (!wellFormed) {
          expect(outcome.ok ? 'opened' : outcome.error.code).toBe(ErrorCode.ENVELOPE_MALFORMED);
          counts.malformed++;
        } else if (o.conversationSid !== CONVERSATION) {
          expect(outcome.ok ? 'opened' : outcome.error.code).toBe(ErrorCode.ENVELOPE_CONVERSATION_MISMATCH);
          counts.otherConversation++;
        } else {
          expect(outcome.ok).toBe(true);
          if (outcome.ok) expect(outcome.value.payload).toEqual(JSON.parse(text));
          counts.opened++;
        }
      }),
      { numRuns: 400 },
    );
    // The generator reaches every outcome often enough for the property to mean something.
    for (const n of Object.values(counts)) expect(n).toBeGreaterThan(20);
  });
});

describe('cards from random input', () => {
  const verifyOptions = () => ({ trustedAppKeys: app.trusted, identity: 'alice' });

  it('verifyCard and parseCardRequest on anything', () => {
    fc.assert(
      fc.property(anything, (value) => {
        expect(typedOutcome(() => verifyCard(value, verifyOptions()), CARD_CODES).ok).toBe(false);
        expect(typedOutcome(() => parseCardRequest(value as never), CARD_CODES).ok).toBe(false);
      }),
      { numRuns: runs(1000) },
    );
  });

  it('verifyCard on objects with the wire members and random values', () => {
    const valid = () => alice.wire;
    const member = <K extends keyof typeof alice.wire>(key: K, extra: fc.Arbitrary<unknown>) =>
      fc.oneof({ weight: 3, arbitrary: fc.constant(undefined).map(() => valid()[key] as unknown) }, extra, anyText, fc.constant(null), fc.integer());
    const wire = fc.record(
      {
        id: member('id', fc.oneof(hexString({ minLength: 64, maxLength: 64 }), fc.constant(carol.wire.id))),
        snapshot: member('snapshot', fc.uint8Array({ maxLength: 2100 }).map(refB64u)),
        selfSignature: member('selfSignature', fc.uint8Array({ minLength: 60, maxLength: 68 }).map(refB64u)),
        appSignature: member('appSignature', fc.oneof(fc.uint8Array({ minLength: 64, maxLength: 64 }).map(refB64u), fc.constant(carol.wire.appSignature))),
        appKeyId: member('appKeyId', hexString({ minLength: 16, maxLength: 16 })),
        revokedAt: fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.string()),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(wire, (w) => {
        const outcome = typedOutcome(() => verifyCard(w, verifyOptions()), CARD_CODES);
        if (outcome.ok) {
          // Only alice's own card, unchanged and not revoked, can pass.
          expect(outcome.value.id).toBe(alice.wire.id);
          expect(w).toEqual({ ...alice.wire, revokedAt: null });
        }
      }),
      { numRuns: runs(1000) },
    );
  });

  const snapshotValue = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 70 }),
    fc.string({ unit: fc.constantFrom(...'abcAZ09_-. /é'.split('')), maxLength: 70 }),
    fc.integer({ min: -5, max: 2 ** 53 + 5 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ minLength: 30, maxLength: 34 }).map(toB64u),
    fc.constantFrom(...lowOrderPoints().map(toB64u)),
    hexString({ minLength: 62, maxLength: 66 }),
    fc.jsonValue({ maxDepth: 2 }),
  );

  const ABSENT = Symbol('absent');
  /** Mostly the valid value, sometimes absent or random, sometimes one of `special`. */
  const memberValue = (valid: unknown, ...special: unknown[]) =>
    fc.oneof(
      { weight: 16, arbitrary: fc.constant(valid) },
      { weight: 1, arbitrary: fc.constant(ABSENT) },
      { weight: 1, arbitrary: snapshotValue },
      { weight: 2, arbitrary: fc.constantFrom(...special) },
    );

  /** A snapshot object: each member valid, randomized, special or absent, and maybe an extra member. */
  const snapshotObject = fc
    .constant(null)
    .chain(() => {
      const valid = snapshotMembers(alice.keys);
      return fc.record({
        v: memberValue(valid.v, '1', 2, 1.5),
        identity: memberValue(valid.identity, '', 'a'.repeat(257), '👩'.repeat(256)),
        deviceId: memberValue(valid.deviceId, 'a b', 'x'.repeat(64), 'x'.repeat(65)),
        deviceName: memberValue(valid.deviceName, 'n'.repeat(128), 'n'.repeat(129)),
        signKey: memberValue(valid.signKey, toB64u(bob.keys.signPublicKey), toB64u(bob.keys.signPublicKey), toB64u(carol.keys.signPublicKey), nonCanonicalB64u(toB64u(alice.keys.signPublicKey)), toB64u(alice.keys.signPublicKey.subarray(1))),
        boxKey: memberValue(valid.boxKey, nonCanonicalB64u(toB64u(alice.keys.boxPublicKey)), ...lowOrderPoints().map(toB64u)),
        createdAt: memberValue(valid.createdAt, -1, 0, 2 ** 53, 1.5),
        previousCardId: fc.oneof({ weight: 4, arbitrary: fc.constant(ABSENT) }, { weight: 1, arbitrary: snapshotValue }, { weight: 1, arbitrary: hexString({ minLength: 64, maxLength: 64 }) }),
        extra: fc.oneof({ weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), snapshotValue, { minKeys: 1, maxKeys: 1 }) }),
      });
    })
    .map(({ extra, ...members }) => {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(members)) if (value !== ABSENT) out[key] = value;
      return extra ? { ...out, ...extra } : out;
    });

  it('random snapshot JSON, correctly signed: verifyCard accepts exactly the snapshots parseSnapshot accepts', () => {
    const codes = new Map<string, number>();
    fc.assert(
      fc.property(snapshotObject, (members) => {
        const bytes = textBytes(JSON.stringify(members));
        const parsed = typedOutcome(() => parseSnapshot(bytes), PARSE_SNAPSHOT_CODES);
        const wire = signSnapshot(bytes, alice.keys, app.key);
        const verified = typedOutcome(() => verifyCard(wire, { trustedAppKeys: app.trusted }), CARD_CODES);
        const request = typedOutcome(() => parseCardRequest({ snapshot: wire.snapshot, selfSignature: wire.selfSignature }), CARD_CODES);
        if (parsed.ok) {
          // The parse reads what JSON.parse reads (no duplicates here), and the signatures hold.
          expect({ ...parsed.value }).toEqual(JSON.parse(JSON.stringify(members)));
          // A randomized signKey that is not alice's makes the self-signature fail, and only that.
          const ownKey = parsed.value.signKey === toB64u(alice.keys.signPublicKey);
          expect(verified.ok ? 'ok' : verified.error.code).toBe(ownKey ? 'ok' : ErrorCode.CARD_SELF_SIGNATURE_INVALID);
          expect(request.ok ? 'ok' : request.error.code).toBe(ownKey ? 'ok' : ErrorCode.CARD_SELF_SIGNATURE_INVALID);
          codes.set(verified.ok ? 'ok' : verified.error.code, (codes.get(verified.ok ? 'ok' : verified.error.code) ?? 0) + 1);
        } else {
          codes.set(parsed.error.code, (codes.get(parsed.error.code) ?? 0) + 1);
          expect(verified.ok ? 'ok' : verified.error.code).toBe(parsed.error.code);
          expect(request.ok ? 'ok' : request.error.code).toBe(parsed.error.code);
        }
      }),
      { numRuns: 700 },
    );
    // The generator reaches valid cards and each kind of defect (typically 140 valid, 15+ of each defect).
    expect(codes.get('ok') ?? 0).toBeGreaterThan(40);
    for (const code of [ErrorCode.CARD_MALFORMED, ErrorCode.ENCODING_INVALID, ErrorCode.CARD_WEAK_KEY, ErrorCode.CARD_SELF_SIGNATURE_INVALID]) {
      expect(codes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
  });

  it('parseSnapshot on random bytes and on randomly edited valid snapshot text', () => {
    let accepted = 0;
    const validText = JSON.stringify(snapshotMembers(alice.keys));
    const edit = fc.record({
      at: fc.nat(validText.length),
      remove: fc.nat(4),
      insert: fc.string({ unit: fc.constantFrom(...'{}[]",:\\ \n0-1eE.tfnu"aA'.split('')), maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2100 }), fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
        let text = validText;
        for (const e of edits) text = text.slice(0, e.at) + e.insert + text.slice(e.at + e.remove);
        return textBytes(text);
      })), (bytes) => {
        const outcome = typedOutcome(() => parseSnapshot(bytes), PARSE_SNAPSHOT_CODES);
        if (outcome.ok) {
          // Whatever the strict parser accepts, JSON.parse reads the same way.
          expect({ ...outcome.value }).toEqual(JSON.parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)));
          accepted++;
        }
      }),
      { numRuns: 1500 },
    );
    expect(accepted).toBeGreaterThan(10);
  });

  it('parseCardRequest on random strings as snapshot and self-signature', () => {
    fc.assert(
      fc.property(anyText, fc.oneof(anyText, fc.uint8Array({ minLength: 64, maxLength: 64 }).map(refB64u)), (snapshot, selfSignature) => {
        expect(typedOutcome(() => parseCardRequest({ snapshot, selfSignature }), CARD_CODES).ok).toBe(false);
      }),
      { numRuns: runs(700) },
    );
  });
});
