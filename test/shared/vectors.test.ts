/**
 * docs/test-vectors.json: the file is exactly what test/fixtures/generate-vectors.ts produces, every valid
 * vector verifies through the core, every invalid one fails with exactly its listed code, and
 * every intermediate value is recomputed here from the raw secrets with libsodium directly and
 * the labels as written in docs/PROTOCOL.md, not with the core's own helpers.
 */
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  VECTOR_SEED_PREFIX,
  generateVectors,
  renderVectors,
  type DeviceVector,
  type EnvelopeVector,
  type InvalidEnvelopeVector,
  type TestVectors,
} from '../fixtures/generate-vectors.js';
import * as core from '../../shared/index.js';
import * as limits from '../../shared/limits.js';

const vectorsText = readFileSync(new URL('../../docs/test-vectors.json', import.meta.url), 'utf8');
const vectors = JSON.parse(vectorsText) as TestVectors;
const protocolDoc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

// The domain strings exactly as docs/PROTOCOL.md spells them.
const LABEL = {
  cardSelf: 'twilio-e2ee/v1/card-self\n',
  cardApp: 'twilio-e2ee/v1/card-app\n',
  commit: 'twilio-e2ee/v1/commit',
  wrap: 'twilio-e2ee/v1/wrap',
  rewrap: 'twilio-e2ee/v1/rewrap',
  msg: 'twilio-e2ee/v1/msg\n',
  orgSign: 'twilio-e2ee/v1/org-sign',
  orgBox: 'twilio-e2ee/v1/org-box',
  safetyNumber: 'twilio-e2ee/v1/safety-number\n',
};

// ---- independent helpers (Node's Buffer and libsodium, never shared/encoding or shared/sodium)

const enc = new TextEncoder();
const utf8 = (s: string): Uint8Array => enc.encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
/** Node's decoder is lenient; insisting on the round trip makes it strict. */
function unb64u(s: string): Uint8Array {
  const bytes = new Uint8Array(Buffer.from(s, 'base64url'));
  expect(b64u(bytes), 'canonical b64u').toBe(s);
  return bytes;
}
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const h256 = (msg: Uint8Array, key?: Uint8Array): Uint8Array => sodium.crypto_generichash(32, msg, key ?? null);
const edPublic = (seed: Uint8Array): Uint8Array => sodium.crypto_sign_seed_keypair(seed).publicKey;
const edSecret = (seed: Uint8Array): Uint8Array => sodium.crypto_sign_seed_keypair(seed).privateKey;
const ZERO12 = new Uint8Array(12);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof core.E2EEError) return err.code;
    throw err;
  }
  return '(no error)';
}

function device(name: string): DeviceVector {
  const d = vectors.devices.find((x) => x.name === name);
  if (!d) throw new Error(`no device ${name} in the vectors`);
  return d;
}

function envelopeVector(name: string): EnvelopeVector {
  const e = vectors.envelopes.find((x) => x.name === name);
  if (!e) throw new Error(`no envelope ${name} in the vectors`);
  return e;
}

function snapshotJson(d: DeviceVector): Record<string, unknown> {
  return JSON.parse(Buffer.from(unb64u(d.card.snapshot)).toString('utf8')) as Record<string, unknown>;
}

function envelopeBinary(text: string): Uint8Array {
  expect(text.startsWith('e2ee1.')).toBe(true);
  return unb64u(text.slice('e2ee1.'.length));
}

let trusted: core.TrustedAppKey[];
const verified = (name: string): core.VerifiedCard => core.verifyCard(device(name).card, { trustedAppKeys: trusted });
const opener = (name: string): core.EnvelopeOpener => {
  const box = unb64u(device(name).boxSecret);
  return { cardId: device(name).card.id, boxSecretKey: box, boxPublicKey: sodium.crypto_scalarmult_base(box) };
};

beforeAll(async () => {
  await core.ready();
  await sodium.ready;
  trusted = core.trustAppKeys([vectors.appKey.publicKey]);
});

describe('docs/test-vectors.json', () => {
  it('is exactly what test/fixtures/generate-vectors.ts generates', async () => {
    const regenerated = renderVectors(await generateVectors());
    expect(regenerated === vectorsText).toBe(true);
    expect(Buffer.from(regenerated).equals(Buffer.from(vectorsText))).toBe(true);
  });

  it('is 2-space JSON with a trailing newline', () => {
    expect(JSON.stringify(vectors, null, 2) + '\n').toBe(vectorsText);
  });

  it('has the documented shape', () => {
    expect(Object.keys(vectors)).toEqual(['appKey', 'devices', 'envelopes', 'rewraps', 'invalidCards', 'invalidEnvelopes', 'safetyNumbers']);
    expect(Object.keys(vectors.appKey)).toEqual(['seed', 'publicKey', 'appKeyId']);
    expect(vectors.devices.length).toBeGreaterThanOrEqual(3);
    expect(vectors.envelopes.length).toBeGreaterThanOrEqual(2);
    for (const d of vectors.devices) expect(Object.keys(d)).toEqual(['name', 'signSeed', 'boxSecret', 'card']);
    for (const e of vectors.envelopes) {
      expect(Object.keys(e)).toEqual(['name', 'sender', 'recipients', 'payload', 'cek', 'ephemeralSecret', 'nonce', 'envelope']);
      const v1 = ['conversationSid', 'messageId', 'sentAt', 'body'];
      const v2 = ['v', ...v1, 'attributes', 'clearAttributes'];
      expect([v1, v2, [...v2, 'editOf', 'edit']]).toContainEqual(Object.keys(e.payload));
    }
    for (const r of vectors.rewraps) expect(Object.keys(r)).toEqual(['envelope', 'recipientBoxSecret', 'ephemeralSecret', 'rewrap']);
    for (const c of vectors.invalidCards) {
      expect(Object.keys(c).filter((k) => k !== 'identity')).toEqual(['name', 'card', 'error']);
    }
    for (const e of vectors.invalidEnvelopes) {
      expect(Object.keys(e).filter((k) => k !== 'sender' && k !== 'conversationSid')).toEqual(['name', 'recipient', 'envelope', 'error']);
      // Whoever needs the sender card also needs the conversation, and the other way round.
      expect(e.sender === undefined).toBe(e.conversationSid === undefined);
    }
    for (const v of vectors.safetyNumbers) {
      expect(Object.keys(v)).toEqual(['name', 'version', 'a', 'b', 'safetyNumber']);
      for (const side of [v.a, v.b]) expect(Object.keys(side)).toEqual(v.version === 2 ? ['identity', 'signPublicKeys', 'chainHead'] : ['identity', 'signPublicKeys']);
    }
    for (const list of [vectors.devices, vectors.envelopes, vectors.invalidCards, vectors.invalidEnvelopes, vectors.safetyNumbers]) {
      const names = list.map((x) => x.name);
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('covers at least 8 distinct error codes, all of them real', () => {
    const codes = new Set([...vectors.invalidCards, ...vectors.invalidEnvelopes].map((v) => v.error));
    expect(codes.size).toBeGreaterThanOrEqual(8);
    for (const code of codes) expect(Object.values(core.ErrorCode)).toContain(code);
  });
});

describe('domain strings', () => {
  it('constants.ts holds exactly the labels of docs/PROTOCOL.md', () => {
    const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
    expect(text(core.CARD_SELF_LABEL)).toBe(LABEL.cardSelf);
    expect(text(core.CARD_APP_LABEL)).toBe(LABEL.cardApp);
    expect(text(core.COMMIT_LABEL)).toBe(LABEL.commit);
    expect(text(core.WRAP_LABEL)).toBe(LABEL.wrap);
    expect(text(core.REWRAP_LABEL)).toBe(LABEL.rewrap);
    expect(text(core.MESSAGE_LABEL)).toBe(LABEL.msg);
    expect(text(core.ORG_SIGN_LABEL)).toBe(LABEL.orgSign);
    expect(text(core.ORG_BOX_LABEL)).toBe(LABEL.orgBox);
    expect(text(core.SAFETY_NUMBER_LABEL)).toBe(LABEL.safetyNumber);
    expect(core.ENVELOPE_PREFIX).toBe('e2ee1.');
  });
});

describe('appKey', () => {
  it('public key and appKeyId follow from the seed', () => {
    const publicKey = edPublic(unb64u(vectors.appKey.seed));
    expect(b64u(publicKey)).toBe(vectors.appKey.publicKey);
    expect(hex(h256(publicKey).subarray(0, 8))).toBe(vectors.appKey.appKeyId);
    expect(core.appKeyFromSeed(unb64u(vectors.appKey.seed)).appKeyId).toBe(vectors.appKey.appKeyId);
  });
});

describe('devices', () => {
  it.each(vectors.devices.map((d) => [d.name, d] as const))('%s: card recomputed from the raw secrets', (_name, d) => {
    const snapshot = unb64u(d.card.snapshot);
    expect(snapshot.length).toBeLessThanOrEqual(2048);
    const fields = snapshotJson(d);
    const members = ['v', 'identity', 'deviceId', 'deviceName', 'signKey', 'boxKey', 'createdAt'];
    expect(Object.keys(fields).filter((k) => k !== 'previousCardId')).toEqual(members);
    expect(fields.v).toBe(1);
    expect(fields.signKey).toBe(b64u(edPublic(unb64u(d.signSeed))));
    expect(fields.boxKey).toBe(b64u(sodium.crypto_scalarmult_base(unb64u(d.boxSecret))));
    expect(d.card.id).toBe(hex(h256(snapshot)));
    // Ed25519 is deterministic, so both signatures can be recomputed, not only verified.
    const selfSignature = sodium.crypto_sign_detached(cat(utf8(LABEL.cardSelf), snapshot), edSecret(unb64u(d.signSeed)));
    expect(d.card.selfSignature).toBe(b64u(selfSignature));
    const appSignature = sodium.crypto_sign_detached(cat(utf8(LABEL.cardApp), snapshot, selfSignature), edSecret(unb64u(vectors.appKey.seed)));
    expect(d.card.appSignature).toBe(b64u(appSignature));
    expect(d.card.appKeyId).toBe(vectors.appKey.appKeyId);
    expect(d.card.revokedAt).toBeNull();
  });

  it.each(vectors.devices.map((d) => [d.name, d] as const))('%s: card verifies against the pinned appKey', (_name, d) => {
    const identity = snapshotJson(d).identity as string;
    const card = core.verifyCard(d.card, { trustedAppKeys: trusted, identity });
    expect(card.id).toBe(d.card.id);
    expect(b64u(card.boxPublicKey)).toBe(snapshotJson(d).boxKey);
    const keys = core.deviceKeysFromSecrets(unb64u(d.signSeed), unb64u(d.boxSecret));
    expect(hex(keys.signPublicKey)).toBe(hex(card.signPublicKey));
    expect(hex(keys.boxPublicKey)).toBe(hex(card.boxPublicKey));
  });

  it('the org device holds the OrgKey derivation of its seed', () => {
    const orgSeed = h256(utf8(VECTOR_SEED_PREFIX + 'org-key'));
    const org = device('org');
    expect(org.signSeed).toBe(b64u(h256(utf8(LABEL.orgSign), orgSeed)));
    expect(org.boxSecret).toBe(b64u(h256(utf8(LABEL.orgBox), orgSeed)));
    const orgKey = core.orgKeyFromSeed(orgSeed);
    expect(b64u(orgKey.keys.signSeed)).toBe(org.signSeed);
    expect(b64u(orgKey.keys.boxSecretKey)).toBe(org.boxSecret);
    expect(snapshotJson(org).identity).toMatch(/^org:/);
  });

  it('previousCardId, when present, is a card id', () => {
    const withPrevious = vectors.devices.filter((d) => 'previousCardId' in snapshotJson(d));
    expect(withPrevious.length).toBeGreaterThan(0);
    for (const d of withPrevious) expect(snapshotJson(d).previousCardId).toMatch(/^[0-9a-f]{64}$/);
  });
});

/** The envelope rebuilt from its inputs, byte by byte, per docs/PROTOCOL.md "Envelope v1". */
function rebuildEnvelope(v: EnvelopeVector): { binary: Uint8Array; E: Uint8Array; commitment: Uint8Array; headerEnd: number } {
  const sender = device(v.sender);
  const cek = unb64u(v.cek);
  const e = unb64u(v.ephemeralSecret);
  const nonce = unb64u(v.nonce);
  expect(cek.length).toBe(32);
  expect(e.length).toBe(32);
  expect(nonce.length).toBe(24);
  const E = sodium.crypto_scalarmult_base(e);
  const commitment = h256(utf8(LABEL.commit), cek);
  const n = v.recipients.length;
  const header = new Uint8Array(100 + 56 * n);
  header[0] = 1;
  header[1] = 0;
  header.set(unhex(sender.card.id), 2);
  header.set(E, 34);
  header.set(commitment, 66);
  header[98] = n >> 8;
  header[99] = n & 0xff;
  v.recipients.forEach((name, i) => {
    const r = device(name);
    const R = unb64u(snapshotJson(r).boxKey as string); // as a sender would: from the card
    const s = sodium.crypto_scalarmult(e, R);
    expect(s.some((x) => x !== 0)).toBe(true);
    const kek = h256(cat(utf8(LABEL.wrap), E, R), s);
    const o = 100 + 56 * i;
    header.set(unhex(r.card.id).subarray(0, 8), o);
    header.set(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(cek, null, null, ZERO12, kek), o + 8);
  });
  const p = v.payload;
  const payloadBytes = utf8(JSON.stringify(p));
  const signature = sodium.crypto_sign_detached(cat(utf8(LABEL.msg), h256(header), payloadBytes), edSecret(unb64u(sender.signSeed)));
  const plaintext = new Uint8Array(Math.ceil((64 + payloadBytes.length) / 128) * 128);
  plaintext.set(signature, 0);
  plaintext.set(payloadBytes, 64);
  const ad = cat(header, nonce);
  const binary = cat(ad, sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, cek));
  return { binary, E, commitment, headerEnd: header.length };
}

describe('envelopes', () => {
  it.each(vectors.envelopes.map((v) => [v.name, v] as const))('%s: every byte recomputed from the raw secrets', (_name, v) => {
    const binary = envelopeBinary(v.envelope);
    const rebuilt = rebuildEnvelope(v);
    expect(binary[0]).toBe(1);
    expect(binary[1]).toBe(0);
    expect(hex(binary.subarray(2, 34))).toBe(device(v.sender).card.id);
    expect(hex(binary.subarray(34, 66))).toBe(hex(rebuilt.E));
    expect(hex(binary.subarray(66, 98))).toBe(hex(rebuilt.commitment));
    expect((binary[98]! << 8) | binary[99]!).toBe(v.recipients.length);
    v.recipients.forEach((name, i) => {
      expect(hex(binary.subarray(100 + 56 * i, 108 + 56 * i))).toBe(device(name).card.id.slice(0, 16));
    });
    expect(hex(binary.subarray(rebuilt.headerEnd, rebuilt.headerEnd + 24))).toBe(hex(unb64u(v.nonce)));
    expect((binary.length - rebuilt.headerEnd - 24 - 16) % 128).toBe(0);
    expect(hex(binary)).toBe(hex(rebuilt.binary));
  });

  it.each(vectors.envelopes.map((v) => [v.name, v] as const))('%s: opens for each listed recipient with the given payload', (_name, v) => {
    const senderCard = verified(v.sender);
    for (const name of v.recipients) {
      const seen = new Set<string>();
      const opened = core.openEnvelope(v.envelope, {
        recipient: opener(name),
        senderCard,
        conversationSid: v.payload.conversationSid,
        author: senderCard.identity,
        seenBefore: (conversationSid, messageId) => seen.has(`${conversationSid}/${messageId}`) || (seen.add(`${conversationSid}/${messageId}`), false),
      });
      expect(opened.payload).toEqual(v.payload);
      expect(b64u(opened.cek)).toBe(v.cek);
    }
  });

  it.each(vectors.envelopes.map((v) => [v.name, v] as const))('%s: does not open for devices it was not sealed for', (_name, v) => {
    for (const d of vectors.devices.filter((x) => !v.recipients.includes(x.name))) {
      expect(codeOf(() => core.unwrapContentKey(core.parseEnvelope(v.envelope), opener(d.name)))).toBe('ENVELOPE_NOT_FOR_ME');
    }
  });

  it('include an envelope without a single padding byte, and one with an empty body', () => {
    const paddings = vectors.envelopes.map((v) => {
      const payloadLength = utf8(JSON.stringify(v.payload)).length;
      return Math.ceil((64 + payloadLength) / 128) * 128 - 64 - payloadLength;
    });
    expect(paddings).toContain(0);
    expect(vectors.envelopes.some((v) => v.payload.body === '')).toBe(true);
  });
});

describe('rewraps', () => {
  it.each(vectors.rewraps.map((r, i) => [`${r.envelope} #${i}`, r] as const))('%s: recomputed from the raw secrets', (_name, r) => {
    const env = envelopeVector(r.envelope);
    const e = unb64u(r.ephemeralSecret);
    const E = sodium.crypto_scalarmult_base(e);
    const R = sodium.crypto_scalarmult_base(unb64u(r.recipientBoxSecret));
    const s = sodium.crypto_scalarmult(e, R);
    const kek = h256(cat(utf8(LABEL.rewrap), E, R, h256(envelopeBinary(env.envelope))), s);
    const wrapped = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(unb64u(env.cek), null, null, ZERO12, kek);
    expect(unb64u(r.rewrap).length).toBe(80);
    expect(r.rewrap).toBe(b64u(cat(E, wrapped)));
  });

  it.each(vectors.rewraps.map((r, i) => [`${r.envelope} #${i}`, r] as const))("%s: opens the original envelope to its payload, under the original sender's signature", (_name, r) => {
    const env = envelopeVector(r.envelope);
    const box = unb64u(r.recipientBoxSecret);
    const owner = vectors.devices.find((d) => d.boxSecret === r.recipientBoxSecret);
    expect(owner).toBeDefined();
    const opened = core.openEnvelope(env.envelope, {
      recipient: { cardId: owner!.card.id, boxSecretKey: box, boxPublicKey: sodium.crypto_scalarmult_base(box) },
      rewrap: r.rewrap,
      senderCard: verified(env.sender),
      conversationSid: env.payload.conversationSid,
    });
    expect(opened.payload).toEqual(env.payload);
    // Bound to its envelope: the same rewrap does not open another message.
    const other = vectors.envelopes.find((x) => x.name !== r.envelope)!;
    expect(codeOf(() => core.openRewrap(r.rewrap, core.parseEnvelope(other.envelope), { boxSecretKey: box, boxPublicKey: sodium.crypto_scalarmult_base(box) }))).toBe(
      'ENVELOPE_DECRYPT_FAILED',
    );
  });
});

describe('invalid cards', () => {
  it.each(vectors.invalidCards.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const options: core.VerifyCardOptions = { trustedAppKeys: trusted };
    if (v.identity !== undefined) options.identity = v.identity;
    expect(codeOf(() => core.verifyCard(v.card, options))).toBe(v.error);
  });
});

/** The recipient's checks, in order, as the vector's fields describe them. */
function openInvalid(v: InvalidEnvelopeVector): void {
  const me = opener(v.recipient);
  if (v.sender === undefined) {
    // Fails before the sender card is consulted.
    const parsed = core.parseEnvelope(v.envelope);
    const cek = core.unwrapContentKey(parsed, me);
    core.decryptWithContentKey(parsed, cek);
    return;
  }
  const senderCard = verified(v.sender);
  core.openEnvelope(v.envelope, {
    recipient: me,
    senderCard,
    conversationSid: v.conversationSid!,
    author: senderCard.identity,
    seenBefore: () => false,
  });
}

describe('invalid envelopes', () => {
  it.each(vectors.invalidEnvelopes.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    expect(codeOf(() => openInvalid(v))).toBe(v.error);
    if (v.sender === undefined) {
      // The whole openEnvelope agrees, whatever sender card it is given.
      const bogusCard: core.SenderCard = { id: '00'.repeat(32), identity: 'nobody', signPublicKey: new Uint8Array(32), revokedAt: null };
      expect(
        codeOf(() => core.openEnvelope(v.envelope, { recipient: opener(v.recipient), senderCard: bogusCard, conversationSid: 'CH' + '0'.repeat(32) })),
      ).toBe(v.error);
    }
  });

  it('commitment-mismatch still opens for the recipient given the committed key (a partitioned message)', () => {
    const v = vectors.invalidEnvelopes.find((x) => x.name === 'commitment-mismatch')!;
    const original = envelopeVector('alice-to-bob');
    const opened = core.openEnvelope(v.envelope, {
      recipient: opener('alice-phone'),
      senderCard: verified('alice-laptop'),
      conversationSid: original.payload.conversationSid,
    });
    expect(opened.payload).toEqual(original.payload);
  });
});

/** Section 15 of docs/PROTOCOL.md, recomputed from the vectors' raw secrets. */
function workedExample(): Map<string, string> {
  const out = new Map<string, string>();
  const put = (key: string, value: string | number) => out.set(key, String(value));
  const alice = device('alice-laptop');
  put('appKey.seed', hex(unb64u(vectors.appKey.seed)));
  put('appKey.publicKey', hex(edPublic(unb64u(vectors.appKey.seed))));
  put('appKeyId', hex(h256(edPublic(unb64u(vectors.appKey.seed))).subarray(0, 8)));
  const snapshot = unb64u(alice.card.snapshot);
  put('card.snapshot', Buffer.from(snapshot).toString('utf8'));
  put('card.id', hex(h256(snapshot)));
  const selfSignature = sodium.crypto_sign_detached(cat(utf8(LABEL.cardSelf), snapshot), edSecret(unb64u(alice.signSeed)));
  put('card.selfSignature', hex(selfSignature));
  put('card.appSignature', hex(sodium.crypto_sign_detached(cat(utf8(LABEL.cardApp), snapshot, selfSignature), edSecret(unb64u(vectors.appKey.seed)))));

  const env = envelopeVector('alice-to-bob');
  const cek = unb64u(env.cek);
  const e = unb64u(env.ephemeralSecret);
  const E = sodium.crypto_scalarmult_base(e);
  put('cek', hex(cek));
  put('e', hex(e));
  put('E', hex(E));
  put('commitment', hex(h256(utf8(LABEL.commit), cek)));
  for (const name of env.recipients) {
    const R = sodium.crypto_scalarmult_base(unb64u(device(name).boxSecret));
    const s = sodium.crypto_scalarmult(e, R);
    const kek = h256(cat(utf8(LABEL.wrap), E, R), s);
    put(`${name}.R`, hex(R));
    put(`${name}.s`, hex(s));
    put(`${name}.kek`, hex(kek));
    put(`${name}.keyId`, hex(h256(unb64u(device(name).card.snapshot)).subarray(0, 8)));
    put(`${name}.wrapped`, hex(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(cek, null, null, ZERO12, kek)));
  }
  const rebuilt = rebuildEnvelope(env);
  const header = rebuilt.binary.subarray(0, rebuilt.headerEnd);
  const p = env.payload;
  const payloadBytes = utf8(JSON.stringify(p));
  const plaintextLength = Math.ceil((64 + payloadBytes.length) / 128) * 128;
  put('headerHash', hex(h256(header)));
  put('payload', Buffer.from(payloadBytes).toString('utf8'));
  put('signature', hex(sodium.crypto_sign_detached(cat(utf8(LABEL.msg), h256(header), payloadBytes), edSecret(unb64u(device(env.sender).signSeed)))));
  put('nonce', hex(unb64u(env.nonce)));
  put('length.header', header.length);
  put('length.payload', payloadBytes.length);
  put('length.padding', plaintextLength - 64 - payloadBytes.length);
  put('length.plaintext', plaintextLength);
  put('length.binary', rebuilt.binary.length);
  put('length.text', 'e2ee1.'.length + b64u(rebuilt.binary).length);

  const rw = vectors.rewraps.find((r) => r.envelope === 'alice-to-bob' && r.recipientBoxSecret === device('org').boxSecret)!;
  const e2 = unb64u(rw.ephemeralSecret);
  const E2 = sodium.crypto_scalarmult_base(e2);
  const R2 = sodium.crypto_scalarmult_base(unb64u(rw.recipientBoxSecret));
  const s2 = sodium.crypto_scalarmult(e2, R2);
  const envelopeHash = h256(rebuilt.binary);
  const kek2 = h256(cat(utf8(LABEL.rewrap), E2, R2, envelopeHash), s2);
  const wrapped2 = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(cek, null, null, ZERO12, kek2);
  put("rewrap.e'", hex(e2));
  put("rewrap.E'", hex(E2));
  put('rewrap.R', hex(R2));
  put('rewrap.s', hex(s2));
  put('rewrap.envelopeHash', hex(envelopeHash));
  put('rewrap.kek', hex(kek2));
  put('rewrap.wrapped', hex(wrapped2));
  put('rewrap', b64u(cat(E2, wrapped2)));

  const orgSeed = h256(utf8(VECTOR_SEED_PREFIX + 'org-key'));
  const orgSign = h256(utf8(LABEL.orgSign), orgSeed);
  const orgBox = h256(utf8(LABEL.orgBox), orgSeed);
  put('org.seed', hex(orgSeed));
  put('org.signSeed', hex(orgSign));
  put('org.boxSecret', hex(orgBox));
  put('org.signKey', hex(edPublic(orgSign)));
  put('org.boxKey', hex(sodium.crypto_scalarmult_base(orgBox)));
  return out;
}

/** The `key = value` lines of the fenced blocks of section 15. */
function documentedExample(): Map<string, string> {
  const start = protocolDoc.indexOf('## 15. Worked example');
  expect(start).toBeGreaterThan(0);
  const end = protocolDoc.indexOf('\n## ', start + 1);
  const section = protocolDoc.slice(start, end < 0 ? undefined : end);
  const out = new Map<string, string>();
  for (const block of section.matchAll(/```text\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      if (line.trim() === '') continue;
      const m = /^(\S+) +=\s(.*)$/.exec(line);
      expect(m, `worked example line: ${line}`).not.toBeNull();
      expect(out.has(m![1]!), `duplicate line ${m![1]}`).toBe(false);
      out.set(m![1]!, m![2]!);
    }
  }
  return out;
}

/** docs/PROTOCOL.md section 8, from the text: 30 digits for one side (version 2: the chain head before the keys). */
function fingerprint(version: number, identity: string, signKeysHex: readonly string[], chainHeadHex?: string): string {
  const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
  const id = utf8(identity);
  const keys = cat(...(version === 2 ? [unhex(chainHeadHex!)] : []), ...signKeysHex.map(unhex).sort((x, y) => Buffer.compare(x, y)));
  let h = h256(cat(utf8(LABEL.safetyNumber), u16(version), u16(id.length), id, keys));
  for (let i = 1; i < 1024; i++) h = h256(cat(h, keys));
  let digits = '';
  for (let c = 0; c < 6; c++) digits += String(Buffer.from(h.subarray(5 * c, 5 * c + 5)).readUIntBE(0, 5) % 100000).padStart(5, '0');
  return digits;
}

describe('safety numbers', () => {
  it.each(vectors.safetyNumbers.map((v) => [v.name, v] as const))('%s: recomputed from section 8, and by the core in either order', (_name, v) => {
    expect([core.SAFETY_NUMBER_VERSION_CARDS_ONLY, core.SAFETY_NUMBER_VERSION]).toContain(v.version);
    for (const s of [v.a, v.b]) expect(Object.keys(s)).toEqual(v.version === 2 ? ['identity', 'signPublicKeys', 'chainHead'] : ['identity', 'signPublicKeys']);
    expect(v.safetyNumber).toMatch(/^\d{60}$/);
    // JavaScript string order (UTF-16 code units) decides which side comes first.
    const [first, second] = v.a.identity <= v.b.identity ? [v.a, v.b] : [v.b, v.a];
    const digits = (x: typeof v.a) => fingerprint(v.version, x.identity, x.signPublicKeys, x.chainHead);
    expect(digits(first) + digits(second)).toBe(v.safetyNumber);
    const side = (x: typeof v.a) => ({ identity: x.identity, signPublicKeys: x.signPublicKeys.map(unhex), ...(x.chainHead && { chainHead: unhex(x.chainHead) }) });
    expect(core.safetyNumber(side(v.a), side(v.b))).toBe(v.safetyNumber);
    expect(core.safetyNumber(side(v.b), side(v.a))).toBe(v.safetyNumber);
  });

  it('cover both versions, a revocation moving a chain head, several keys on both sides, unsorted keys, sides given out of order, and UTF-16 against UTF-8 order', () => {
    const all = vectors.safetyNumbers;
    const v2 = all.filter((v) => v.version === 2);
    expect(v2.length).toBeGreaterThan(0);
    expect(all.some((v) => v.version === 1)).toBe(true);
    // The same identities and keys with another head (a revocation) give another number.
    const sameKeys = (x: (typeof all)[number], y: (typeof all)[number]) => JSON.stringify([x.a.signPublicKeys, x.b.signPublicKeys]) === JSON.stringify([y.a.signPublicKeys, y.b.signPublicKeys]);
    expect(v2.some((x) => v2.some((y) => x !== y && sameKeys(x, y) && x.b.chainHead !== y.b.chainHead && x.safetyNumber !== y.safetyNumber))).toBe(true);
    expect(all.some((v) => v.a.signPublicKeys.length > 1 && v.b.signPublicKeys.length > 1)).toBe(true);
    const unsorted = (keys: string[]) => keys.some((k, i) => i > 0 && k < keys[i - 1]!);
    expect(all.some((v) => unsorted(v.a.signPublicKeys) || unsorted(v.b.signPublicKeys))).toBe(true);
    expect(all.some((v) => v.a.identity > v.b.identity)).toBe(true);
    const utf8Order = (v: (typeof all)[number]) => Buffer.compare(Buffer.from(v.a.identity), Buffer.from(v.b.identity)) < 0;
    expect(all.some((v) => v.a.identity > v.b.identity !== !utf8Order(v))).toBe(true);
  });
});

describe('docs/PROTOCOL.md', () => {
  // Error codes: test/shared/error-catalogue.test.ts checks section 13 and docs/API.md against the catalogue.
  it('quotes every domain string', () => {
    for (const label of Object.values(LABEL)) expect(protocolDoc).toContain('`' + label.replace('\n', '\\n') + '`');
    // Every *_LABEL constant of the core, including ones added after this test was written.
    for (const [name, value] of Object.entries(core)) {
      if (!name.endsWith('_LABEL') || !(value instanceof Uint8Array)) continue;
      const quoted = '`' + Buffer.from(value).toString('utf8').replace('\n', '\\n') + '`';
      expect(protocolDoc, name).toMatch(new RegExp('^\\| `' + name + '` \\| ' + quoted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ' \\|', 'm'));
    }
  });

  it('section 15 (worked example) matches values recomputed from the vectors', () => {
    const documented = documentedExample();
    const computed = workedExample();
    expect([...documented.keys()].sort()).toEqual([...computed.keys()].sort());
    for (const [key, value] of computed) expect(documented.get(key), key).toBe(value);
  });

  it('section 10 gives every value of shared/limits.ts', () => {
    const start = protocolDoc.indexOf('## 10. Limits');
    const section = protocolDoc.slice(start, protocolDoc.indexOf('\n## ', start + 1));
    // The format's limits, in the first table by what they limit.
    const formatRows: Record<string, RegExp> = {
      MAX_SNAPSHOT_BYTES: new RegExp(`^\\| snapshot \\| ${limits.MAX_SNAPSHOT_BYTES} bytes`, 'm'),
      MAX_IDENTITY_CHARS: new RegExp(`^\\| \`identity\` \\| 1\\.\\.${limits.MAX_IDENTITY_CHARS} characters`, 'm'),
      MAX_DEVICE_ID_CHARS: new RegExp(`^\\| \`deviceId\` \\| 1\\.\\.${limits.MAX_DEVICE_ID_CHARS} characters`, 'm'),
      MAX_DEVICE_NAME_CHARS: new RegExp(`^\\| \`deviceName\` \\| 0\\.\\.${limits.MAX_DEVICE_NAME_CHARS} characters`, 'm'),
      MAX_ENVELOPE_TEXT_CHARS: new RegExp(`^\\| envelope text \\| ${limits.MAX_ENVELOPE_TEXT_CHARS} characters`, 'm'),
      MAX_RECIPIENTS: new RegExp(`^\\| recipients \`n\` \\| 1\\.\\.${limits.MAX_RECIPIENTS} \\|`, 'm'),
    };
    for (const [name, value] of Object.entries(limits)) {
      const row = formatRows[name] ?? new RegExp(`^\\| \`${name}\` \\| ${typeof value === 'string' ? `\`${value}\`` : value} \\|`, 'm');
      expect(section, name).toMatch(row);
    }
  });

  it('recipient table matches maxRecipientsForBody', () => {
    for (const body of [0, 256, 1024, 4096, 16384]) {
      expect(protocolDoc).toMatch(new RegExp(`^\\| ${body} \\| ${core.maxRecipientsForBody(body)} \\|`, 'm'));
    }
  });

  it('names every vector', () => {
    for (const list of [vectors.envelopes, vectors.invalidCards, vectors.invalidEnvelopes, vectors.safetyNumbers]) {
      for (const v of list) expect(protocolDoc).toContain('`' + v.name + '`');
    }
  });
});
