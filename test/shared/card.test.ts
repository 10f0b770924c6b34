/**
 * Card v1 (docs/PROTOCOL.md section 4): the happy path, the contract's derived values, and a catalogue
 * of forged cards, each correctly signed except for its one defect, each refused with its own code.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCode,
  MAX_SNAPSHOT_BYTES,
  appKeyIdOf,
  cardIdOf,
  countersignCard,
  createCardRequest,
  generateAppKey,
  generateDeviceKeys,
  keyIdOf,
  parseCardRequest,
  parseSnapshot,
  ready,
  toB64u,
  trustAppKeys,
  verifyCard,
  type AppKey,
  type CardWire,
  type DeviceKeys,
  type VerifyCardOptions,
} from '../../shared/index.js';
import { blake2b256, sign } from '../../shared/sodium.js';
import {
  bytesToHex,
  cat,
  expectCode,
  lowOrderPoints,
  makeApp,
  nonCanonicalB64u,
  refB64u,
  signSnapshot,
  snapshotMembers,
  textBytes,
  type AppKeyFixture,
} from '../support/crypto.js';

let app: AppKeyFixture;
let alice: DeviceKeys;
let mallory: DeviceKeys;
let otherApp: AppKey;

beforeAll(async () => {
  await ready();
  app = makeApp();
  alice = generateDeviceKeys();
  mallory = generateDeviceKeys();
  otherApp = generateAppKey();
});

/** The valid snapshot text for alice's keys, with members changed, added or removed. */
function snapshot(overrides: Record<string, unknown> = {}, omit: string[] = []): string {
  const members = snapshotMembers(alice, overrides);
  for (const key of omit) delete members[key];
  return JSON.stringify(members);
}

/** Alice's snapshot, correctly self-signed and countersigned whatever it contains. */
function forge(text: string | Uint8Array, options: Parameters<typeof signSnapshot>[3] = {}): CardWire {
  return signSnapshot(text, alice, app.key, options);
}

function verifyOptions(extra: Partial<VerifyCardOptions> = {}): VerifyCardOptions {
  return { trustedAppKeys: app.trusted, identity: 'alice', ...extra };
}

/** A snapshot text of exactly `size` bytes, padded with JSON whitespace before the closing brace. */
function snapshotOfSize(size: number): string {
  const text = snapshot();
  return `${text.slice(0, -1)}${' '.repeat(size - textBytes(text).length)}}`;
}

describe('card round trip', () => {
  it('createCardRequest → parseCardRequest → countersignCard → verifyCard', () => {
    const request = createCardRequest(alice, { identity: 'alice', deviceId: 'laptop-1', deviceName: 'Alice’s laptop 💻', createdAt: 1_760_000_000 });
    const selfSigned = parseCardRequest(request);
    expect(selfSigned.fields).toEqual({
      v: 1,
      identity: 'alice',
      deviceId: 'laptop-1',
      deviceName: 'Alice’s laptop 💻',
      signKey: toB64u(alice.signPublicKey),
      boxKey: toB64u(alice.boxPublicKey),
      createdAt: 1_760_000_000,
    });
    expect(selfSigned.signPublicKey).toEqual(alice.signPublicKey);
    expect(selfSigned.boxPublicKey).toEqual(alice.boxPublicKey);

    const wire = countersignCard(selfSigned, app.key);
    expect(Object.keys(wire).sort()).toEqual(['appKeyId', 'appSignature', 'id', 'revokedAt', 'selfSignature', 'snapshot']);
    expect(wire.snapshot).toBe(request.snapshot); // the exact bytes, never re-serialized
    expect(wire.selfSignature).toBe(request.selfSignature);
    expect(wire.revokedAt).toBeNull();

    // A card goes over the wire as JSON: verify what comes out of a JSON round trip.
    const card = verifyCard(JSON.parse(JSON.stringify(wire)), verifyOptions());
    expect(card.id).toBe(wire.id);
    expect(card.identity).toBe('alice');
    expect(card.appKeyId).toBe(app.key.appKeyId);
    expect(card.signPublicKey).toEqual(alice.signPublicKey);
    expect(card.boxPublicKey).toEqual(alice.boxPublicKey);
    expect(card.revokedAt).toBeNull();
    expect(card.wire).toEqual(wire);
    expect(card.fields).toEqual(selfSigned.fields);
  });

  it('derives id, appKeyId, signatures and key id exactly as docs/PROTOCOL.md section 4 says', () => {
    const request = createCardRequest(alice, { identity: 'alice', deviceId: 'd1', createdAt: 1 });
    const wire = countersignCard(parseCardRequest(request), app.key);
    const snapshotBytes = Buffer.from(request.snapshot, 'base64url');
    // id = hex(BLAKE2b-256(snapshot))
    expect(wire.id).toBe(bytesToHex(blake2b256(snapshotBytes)));
    expect(cardIdOf(snapshotBytes)).toBe(wire.id);
    // appKeyId = hex of the first 8 bytes of BLAKE2b-256(AppKey public key)
    expect(wire.appKeyId).toBe(bytesToHex(blake2b256(app.key.publicKey).subarray(0, 8)));
    expect(appKeyIdOf(app.key.publicKey)).toBe(wire.appKeyId);
    // Ed25519 is deterministic: the signatures are exactly these.
    const selfSignature = sign(cat(textBytes('twilio-e2ee/v1/card-self\n'), snapshotBytes), alice.signSecretKey);
    expect(wire.selfSignature).toBe(refB64u(selfSignature));
    expect(wire.appSignature).toBe(refB64u(sign(cat(textBytes('twilio-e2ee/v1/card-app\n'), snapshotBytes, selfSignature), app.key.secretKey)));
    // An envelope names a recipient by the first 8 bytes of its card id.
    expect(bytesToHex(keyIdOf(wire.id))).toBe(wire.id.slice(0, 16));
    // The default device name is empty, and JSON members come in the documented order.
    expect(snapshotBytes.toString('utf8')).toBe(
      `{"v":1,"identity":"alice","deviceId":"d1","deviceName":"","signKey":"${toB64u(alice.signPublicKey)}","boxKey":"${toB64u(alice.boxPublicKey)}","createdAt":1}`,
    );
  });

  it('accepts a card from any of several pinned AppKeys (key rotation)', () => {
    const wire = countersignCard(parseCardRequest(createCardRequest(alice, { identity: 'alice', deviceId: 'd1' })), otherApp);
    expectCode(() => verifyCard(wire, verifyOptions()), ErrorCode.CARD_APP_KEY_UNTRUSTED);
    const trustedAppKeys = trustAppKeys([toB64u(app.key.publicKey), toB64u(otherApp.publicKey)]);
    expect(verifyCard(wire, { trustedAppKeys, identity: 'alice' }).appKeyId).toBe(otherApp.appKeyId);
  });

  it('keeps previousCardId, unicode identities and the field limits exactly at their bounds', () => {
    const previous = 'ab'.repeat(32);
    const request = createCardRequest(alice, {
      identity: '👩'.repeat(256), // 256 characters (code points), 1024 bytes
      deviceId: 'A-z_9'.repeat(12) + 'abcd', // 64 characters
      deviceName: 'é'.repeat(128),
      previousCardId: previous,
      createdAt: 0,
    });
    const card = verifyCard(countersignCard(parseCardRequest(request), app.key), { trustedAppKeys: app.trusted, identity: '👩'.repeat(256) });
    expect(card.fields.previousCardId).toBe(previous);
    expect(card.fields.createdAt).toBe(0);
  });

  it('accepts a snapshot of exactly 2048 bytes', () => {
    const card = verifyCard(forge(snapshotOfSize(MAX_SNAPSHOT_BYTES)), verifyOptions());
    expect(card.snapshotBytes.length).toBe(MAX_SNAPSHOT_BYTES);
  });

  it('the forging helper makes valid cards when nothing is forged (so each forgery below fails for its defect)', () => {
    const card = verifyCard(forge(snapshot()), verifyOptions());
    expect(card.fields.identity).toBe('alice');
    expect(card.boxPublicKey).toEqual(alice.boxPublicKey);
  });

  it('createCardRequest refuses invalid fields before signing anything', () => {
    expectCode(() => createCardRequest(alice, { identity: '', deviceId: 'd1' }), ErrorCode.CARD_MALFORMED);
    expectCode(() => createCardRequest(alice, { identity: 'alice', deviceId: 'has space' }), ErrorCode.CARD_MALFORMED);
    expectCode(() => createCardRequest(alice, { identity: 'alice', deviceId: 'd1', createdAt: 1.5 }), ErrorCode.CARD_MALFORMED);
  });
});

interface Forgery {
  name: string;
  code: ErrorCode;
  card: () => unknown;
  options?: () => Partial<VerifyCardOptions>;
}

const forgeries: Forgery[] = [
  // Identity of the card
  { name: 'wrong id (another snapshot’s id)', code: ErrorCode.CARD_ID_MISMATCH, card: () => forge(snapshot(), { id: forge(snapshot({ deviceId: 'x' })).id }) },
  { name: 'id of the snapshot with one bit changed', code: ErrorCode.CARD_ID_MISMATCH, card: () => forge(snapshot(), { id: flipHex(forge(snapshot()).id) }) },
  { name: 'id in upper case', code: ErrorCode.CARD_MALFORMED, card: () => { const w = forge(snapshot()); return { ...w, id: w.id.toUpperCase() }; } },

  // Signatures
  { name: 'self and app signatures swapped', code: ErrorCode.CARD_SELF_SIGNATURE_INVALID, card: () => { const w = forge(snapshot()); return { ...w, selfSignature: w.appSignature, appSignature: w.selfSignature }; } },
  { name: 'self-signature by another device key', code: ErrorCode.CARD_SELF_SIGNATURE_INVALID, card: () => forge(snapshot(), { selfSigner: mallory }) },
  { name: 'self-signature without the label', code: ErrorCode.CARD_SELF_SIGNATURE_INVALID, card: () => forge(snapshot(), { selfSignature: sign(textBytes(snapshot()), alice.signSecretKey) }) },
  { name: 'self-signature made with the app label (cross-protocol)', code: ErrorCode.CARD_SELF_SIGNATURE_INVALID, card: () => forge(snapshot(), { selfSignature: sign(cat(textBytes('twilio-e2ee/v1/card-app\n'), textBytes(snapshot())), alice.signSecretKey) }) },
  { name: 'self-signature of all zeros', code: ErrorCode.CARD_SELF_SIGNATURE_INVALID, card: () => forge(snapshot(), { selfSignature: new Uint8Array(64) }) },
  { name: 'app signature by an unpinned AppKey', code: ErrorCode.CARD_APP_KEY_UNTRUSTED, card: () => forge(snapshot(), { appSigner: otherApp }) },
  { name: 'app signature by another key under the pinned appKeyId', code: ErrorCode.CARD_APP_SIGNATURE_INVALID, card: () => forge(snapshot(), { appSigner: otherApp, appKeyId: app.key.appKeyId }) },
  { name: 'app signature taken from another card', code: ErrorCode.CARD_APP_SIGNATURE_INVALID, card: () => ({ ...forge(snapshot()), appSignature: forge(snapshot({ deviceId: 'other' })).appSignature }) },
  { name: 'app signature over the snapshot alone (no self-signature)', code: ErrorCode.CARD_APP_SIGNATURE_INVALID, card: () => ({ ...forge(snapshot()), appSignature: refB64u(sign(cat(textBytes('twilio-e2ee/v1/card-app\n'), textBytes(snapshot())), app.key.secretKey)) }) },
  { name: 'pinned key but no trusted keys configured', code: ErrorCode.CARD_APP_KEY_UNTRUSTED, card: () => forge(snapshot()), options: () => ({ trustedAppKeys: [] }) },

  // Wire form
  { name: 'unknown wire member', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), extra: 1 }) },
  ...(['id', 'snapshot', 'selfSignature', 'appSignature', 'appKeyId', 'revokedAt'] as const).map((member) => ({
    name: `missing wire member "${member}"`,
    code: ErrorCode.CARD_MALFORMED,
    card: () => { const w: Partial<CardWire> = forge(snapshot()); delete w[member]; return w; },
  })),
  { name: 'revokedAt as a string', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), revokedAt: '1760000000' }) },
  { name: 'revokedAt as a float', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), revokedAt: 1.5 }) },
  { name: 'revokedAt negative', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), revokedAt: -1 }) },
  { name: 'appKeyId in upper case', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), appKeyId: app.key.appKeyId.toUpperCase() }) },
  { name: 'snapshot as a number', code: ErrorCode.CARD_MALFORMED, card: () => ({ ...forge(snapshot()), snapshot: 42 }) },
  { name: 'card as an array', code: ErrorCode.CARD_MALFORMED, card: () => [forge(snapshot())] },
  { name: 'card as null', code: ErrorCode.CARD_MALFORMED, card: () => null },
  { name: 'card as its JSON text', code: ErrorCode.CARD_MALFORMED, card: () => JSON.stringify(forge(snapshot())) },

  // Snapshot members
  { name: 'unknown snapshot member', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ admin: true })) },
  ...['v', 'identity', 'deviceId', 'deviceName', 'signKey', 'boxKey', 'createdAt'].map((member) => ({
    name: `missing snapshot member "${member}"`,
    code: ErrorCode.CARD_MALFORMED,
    card: () => forge(snapshot({}, [member])),
  })),
  { name: 'v as a string', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ v: '1' })) },
  { name: 'v = 2', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ v: 2 })) },
  { name: 'createdAt as a float', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ createdAt: 1_760_000_000.5 })) },
  { name: 'createdAt negative', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ createdAt: -1 })) },
  { name: 'createdAt as a string', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ createdAt: '1760000000' })) },
  { name: 'createdAt beyond 2^53', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ createdAt: 2 ** 53 })) },
  { name: 'identity empty', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ identity: '' })), options: () => ({ identity: '' }) },
  { name: 'identity of 257 characters', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ identity: 'a'.repeat(257) })), options: () => ({ identity: 'a'.repeat(257) }) },
  { name: 'identity as a number', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ identity: 7 })), options: () => ({ identity: undefined }) },
  { name: 'deviceId with a space', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceId: 'my laptop' })) },
  { name: 'deviceId with a slash', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceId: '../etc' })) },
  { name: 'deviceId with a non-ASCII letter', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceId: 'café' })) },
  { name: 'deviceId empty', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceId: '' })) },
  { name: 'deviceId of 65 characters', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceId: 'a'.repeat(65) })) },
  { name: 'deviceName of 129 characters', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceName: 'n'.repeat(129) })) },
  { name: 'deviceName null', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceName: null })) },
  { name: 'previousCardId in upper case', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ previousCardId: 'AB'.repeat(32) })) },
  { name: 'previousCardId null', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ previousCardId: null })) },
  { name: 'signKey of 31 bytes', code: ErrorCode.ENCODING_INVALID, card: () => forge(snapshot({ signKey: toB64u(alice.signPublicKey.subarray(0, 31)) })) },
  { name: 'boxKey as a number', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ boxKey: 5 })) },

  // Snapshot JSON
  { name: 'duplicate member "identity" (a lax parser would read "mallory")', code: ErrorCode.CARD_MALFORMED, card: () => forge(`${snapshot().slice(0, -1)},"identity":"mallory"}`) },
  { name: 'duplicate member spelled with an escape ("\\u0069dentity")', code: ErrorCode.CARD_MALFORMED, card: () => forge(`${snapshot().slice(0, -1)},"\\u0069dentity":"mallory"}`) },
  { name: 'snapshot with trailing bytes after the object', code: ErrorCode.CARD_MALFORMED, card: () => forge(`${snapshot()}x`) },
  { name: 'snapshot with a nested object', code: ErrorCode.CARD_MALFORMED, card: () => forge(snapshot({ deviceName: { a: 1 } })) },
  { name: 'snapshot that is a JSON array', code: ErrorCode.CARD_MALFORMED, card: () => forge(JSON.stringify([snapshotMembers(alice)])) },
  { name: 'snapshot starting with a UTF-8 byte order mark (not JSON)', code: ErrorCode.CARD_MALFORMED, card: () => forge(cat(Uint8Array.of(0xef, 0xbb, 0xbf), textBytes(snapshot()))) },
  { name: 'snapshot that is not UTF-8', code: ErrorCode.CARD_MALFORMED, card: () => forge(cat(textBytes(snapshot().slice(0, -2)), Uint8Array.of(0xff), textBytes('}'))) },
  { name: 'snapshot of 2049 bytes', code: ErrorCode.CARD_TOO_LARGE, card: () => forge(snapshotOfSize(MAX_SNAPSHOT_BYTES + 1)) },
  { name: 'snapshot of 100 kB', code: ErrorCode.CARD_TOO_LARGE, card: () => forge(snapshotOfSize(100_000)) },
  { name: 'box key of order 1 (all zero)', code: ErrorCode.CARD_WEAK_KEY, card: () => forge(snapshot({ boxKey: toB64u(new Uint8Array(32)) })) },

  // Trust decisions
  { name: 'card of another identity', code: ErrorCode.CARD_IDENTITY_MISMATCH, card: () => forge(snapshot({ identity: 'mallory' })) },
  { name: 'revoked card', code: ErrorCode.CARD_REVOKED, card: () => forge(snapshot(), { revokedAt: 1_760_000_100 }) },
  { name: 'revoked at 0', code: ErrorCode.CARD_REVOKED, card: () => forge(snapshot(), { revokedAt: 0 }) },

  // Non-canonical base64url
  { name: 'snapshot with non-zero spare bits', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshotOfSize(301)); return { ...w, snapshot: nonCanonicalB64u(w.snapshot) }; } },
  { name: 'snapshot with "=" padding', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshotOfSize(301)); return { ...w, snapshot: `${w.snapshot}==` }; } },
  { name: 'snapshot in standard base64', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshot({ deviceName: '>>>???' })); expect(w.snapshot).toMatch(/[-_]/); return { ...w, snapshot: Buffer.from(w.snapshot, 'base64url').toString('base64').replace(/=+$/, '') }; } },
  { name: 'selfSignature with non-zero spare bits', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshot()); return { ...w, selfSignature: nonCanonicalB64u(w.selfSignature) }; } },
  { name: 'appSignature with non-zero spare bits', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshot()); return { ...w, appSignature: nonCanonicalB64u(w.appSignature) }; } },
  { name: 'selfSignature of 63 bytes', code: ErrorCode.ENCODING_INVALID, card: () => { const w = forge(snapshot()); return { ...w, selfSignature: refB64u(Buffer.from(w.selfSignature, 'base64url').subarray(0, 63)) }; } },
  { name: 'signKey in the snapshot with non-zero spare bits', code: ErrorCode.ENCODING_INVALID, card: () => forge(snapshot({ signKey: nonCanonicalB64u(toB64u(alice.signPublicKey)) })) },
  { name: 'boxKey in the snapshot with non-zero spare bits', code: ErrorCode.ENCODING_INVALID, card: () => forge(snapshot({ boxKey: nonCanonicalB64u(toB64u(alice.boxPublicKey)) })) },
];

function flipHex(hex: string): string {
  return (hex[0] === '0' ? '1' : '0') + hex.slice(1);
}

describe('forged cards', () => {
  it('the catalogue covers at least 12 kinds and every card-related code', () => {
    expect(forgeries.length).toBeGreaterThanOrEqual(12);
    expect(new Set(forgeries.map((f) => f.code))).toEqual(
      new Set([
        ErrorCode.CARD_ID_MISMATCH,
        ErrorCode.CARD_SELF_SIGNATURE_INVALID,
        ErrorCode.CARD_APP_KEY_UNTRUSTED,
        ErrorCode.CARD_APP_SIGNATURE_INVALID,
        ErrorCode.CARD_MALFORMED,
        ErrorCode.CARD_TOO_LARGE,
        ErrorCode.CARD_WEAK_KEY,
        ErrorCode.CARD_IDENTITY_MISMATCH,
        ErrorCode.CARD_REVOKED,
        ErrorCode.ENCODING_INVALID,
      ]),
    );
  });

  it.each(forgeries.map((f) => [f.name, f] as const))('refuses %s', (_name, forgery) => {
    expectCode(() => verifyCard(forgery.card(), verifyOptions(forgery.options?.())), forgery.code);
  });

  it('refuses a box key of low order, for every such point in the Wycheproof X25519 file', () => {
    const points = lowOrderPoints();
    expect(points.length).toBe(14); // orders 1, 2, 4, 8, canonical and non-canonical encodings
    for (const point of points) {
      const text = snapshot({ boxKey: toB64u(point) });
      const err = expectCode(() => verifyCard(forge(text), verifyOptions()), ErrorCode.CARD_WEAK_KEY);
      // Non-canonical spellings (bit 255 set, or a value >= p) are refused as such, before the order check.
      const canonical = (point[31]! & 0x80) === 0 && !(point[31] === 0x7f && point[0]! >= 0xed && point.subarray(1, 31).every((x) => x === 0xff));
      expect(err.message).toContain(canonical ? 'low order' : 'not a canonical');
      expectCode(() => parseSnapshot(textBytes(text)), ErrorCode.CARD_WEAK_KEY);
      expectCode(() => parseCardRequest({ snapshot: forge(text).snapshot, selfSignature: forge(text).selfSignature }), ErrorCode.CARD_WEAK_KEY);
    }
  });

  it('refuses a non-canonical spelling of a good box key (bit 255 set, or the value plus p), which X25519 would treat as the same key', () => {
    const highBit = alice.boxPublicKey.slice();
    highBit[31]! |= 0x80;
    const basePlusP = Uint8Array.of(0xed + 9, ...new Array<number>(30).fill(0xff), 0x7f); // u = 9 + p
    for (const key of [highBit, basePlusP]) {
      const err = expectCode(() => verifyCard(forge(snapshot({ boxKey: toB64u(key) })), verifyOptions()), ErrorCode.CARD_WEAK_KEY);
      expect(err.message).toContain('canonical');
    }
    // The canonical base point itself is a fine key.
    expect(verifyCard(forge(snapshot({ boxKey: toB64u(Uint8Array.of(9, ...new Array<number>(31).fill(0))) })), verifyOptions()).boxPublicKey[0]).toBe(9);
  });

  it('accepts a revoked card only with allowRevoked, and reports when it was revoked', () => {
    const wire = forge(snapshot(), { revokedAt: 1_760_000_100 });
    const err = expectCode(() => verifyCard(wire, verifyOptions()), ErrorCode.CARD_REVOKED);
    expect(err.message).toContain('1760000100');
    expect(verifyCard(wire, verifyOptions({ allowRevoked: true })).revokedAt).toBe(1_760_000_100);
  });

  it('names the expected and the actual identity on a mismatch', () => {
    const err = expectCode(() => verifyCard(forge(snapshot()), verifyOptions({ identity: 'bob' })), ErrorCode.CARD_IDENTITY_MISMATCH);
    expect(err.message).toContain('"alice"');
    expect(err.message).toContain('"bob"');
  });

  it('does not let a valid card of one device pass under the other device’s id', () => {
    const a = forge(snapshot({ deviceId: 'a' }));
    const b = forge(snapshot({ deviceId: 'b' }));
    expectCode(() => verifyCard({ ...a, snapshot: b.snapshot }, verifyOptions()), ErrorCode.CARD_ID_MISMATCH);
    expectCode(() => verifyCard({ ...a, id: b.id, snapshot: b.snapshot }, verifyOptions()), ErrorCode.CARD_SELF_SIGNATURE_INVALID);
  });
});

describe('parseCardRequest (the server’s first step)', () => {
  function request(text: string | Uint8Array, options: Parameters<typeof signSnapshot>[3] = {}) {
    const w = forge(text, options);
    return { snapshot: w.snapshot, selfSignature: w.selfSignature };
  }

  it('accepts a valid request and returns the id and keys', () => {
    const parsed = parseCardRequest(request(snapshot()));
    expect(parsed.id).toBe(bytesToHex(blake2b256(textBytes(snapshot()))));
    expect(parsed.signPublicKey).toEqual(alice.signPublicKey);
  });

  it.each<[string, () => unknown, ErrorCode]>([
    ['a self-signature by another key', () => request(snapshot(), { selfSigner: mallory }), ErrorCode.CARD_SELF_SIGNATURE_INVALID],
    ['a snapshot naming mallory’s sign key, signed by alice', () => request(snapshot({ signKey: toB64u(mallory.signPublicKey) })), ErrorCode.CARD_SELF_SIGNATURE_INVALID],
    ['a non-canonical snapshot encoding', () => { const r = request(snapshotOfSize(301)); return { ...r, snapshot: nonCanonicalB64u(r.snapshot) }; }, ErrorCode.ENCODING_INVALID],
    ['a selfSignature of 65 bytes', () => ({ ...request(snapshot()), selfSignature: refB64u(new Uint8Array(65)) }), ErrorCode.ENCODING_INVALID],
    ['a snapshot over 2048 bytes', () => request(snapshotOfSize(2049)), ErrorCode.CARD_TOO_LARGE],
    ['a snapshot with a duplicate member', () => request(`${snapshot().slice(0, -1)},"deviceId":"x"}`), ErrorCode.CARD_MALFORMED],
    ['a missing selfSignature', () => ({ snapshot: request(snapshot()).snapshot }), ErrorCode.CARD_MALFORMED],
    ['null', () => null, ErrorCode.CARD_MALFORMED],
    ['a string', () => 'snapshot', ErrorCode.CARD_MALFORMED],
  ])('refuses %s', (_name, make, code) => {
    expectCode(() => parseCardRequest(make() as never), code);
  });
});

describe('parseSnapshot', () => {
  it('refuses oversize bytes before parsing them', () => {
    const err = expectCode(() => parseSnapshot(textBytes(snapshotOfSize(2049))), ErrorCode.CARD_TOO_LARGE);
    expect(err.message).toContain('2048');
  });

  it('returns exactly the documented members (previousCardId only when present)', () => {
    expect(Object.keys(parseSnapshot(textBytes(snapshot()))).sort()).toEqual(['boxKey', 'createdAt', 'deviceId', 'deviceName', 'identity', 'signKey', 'v']);
    expect(parseSnapshot(textBytes(snapshot({ previousCardId: '0'.repeat(64) }))).previousCardId).toBe('0'.repeat(64));
  });
});

describe('countersignCard', () => {
  it('signs with the given AppKey and keeps the given revocation time', () => {
    const selfSigned = parseCardRequest(createCardRequest(alice, { identity: 'alice', deviceId: 'd1' }));
    const wire = countersignCard(selfSigned, app.key, 1_760_000_500);
    expect(wire.revokedAt).toBe(1_760_000_500);
    expect(verifyCard(wire, verifyOptions({ allowRevoked: true })).revokedAt).toBe(1_760_000_500);
    expect(countersignCard(selfSigned, otherApp).appKeyId).toBe(otherApp.appKeyId);
  });
});
