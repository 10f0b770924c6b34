/**
 * Project Wycheproof vectors (test/fixtures/wycheproof, Apache-2.0) run through the exact calls
 * of shared/sodium.ts, so a change of library, build or call is caught here. Everything runs
 * once per backend: libsodium alone, and with the server's node:crypto backend installed
 * (server/crypto-backend.ts), whose operations must give the same bytes on every vector.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready } from '../../shared/index.js';
import {
  backendInfo,
  chachaOpen,
  chachaSeal,
  setBackend,
  sign,
  signKeyPairFromSeed,
  verify,
  x25519,
  x25519Base,
  xchachaOpen,
  xchachaSeal,
  type CryptoBackend,
} from '../../shared/sodium.js';
import { nodeCryptoBackend } from '../../server/crypto-backend.js';
import { bytesToHex, hexToBytes, loadWycheproof } from '../support/crypto.js';

type Result = 'valid' | 'acceptable' | 'invalid';

interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

interface XdhGroup {
  curve: string;
  tests: { tcId: number; comment: string; flags: string[]; public: string; private: string; shared: string; result: Result }[];
}

interface EddsaGroup {
  publicKey: { pk: string };
  tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: Result }[];
}

interface AeadGroup {
  ivSize: number;
  keySize: number;
  tagSize: number;
  tests: { tcId: number; comment: string; flags: string[]; key: string; iv: string; aad: string; msg: string; ct: string; tag: string; result: Result }[];
}

function countTests<G extends { tests: unknown[] }>(file: WycheproofFile<G>): number {
  return file.testGroups.reduce((n, g) => n + g.tests.length, 0);
}

beforeAll(() => ready());

/** RFC 7748 section 6.1 (X25519 Diffie-Hellman). */
const RFC7748 = {
  alicePrivate: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  alicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  bobPrivate: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};

/** RFC 8032 section 7.1, Ed25519 tests 1 to 3. */
const RFC8032 = [
  {
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const BACKENDS: { name: string; backend: CryptoBackend | null; takes: string[] }[] = [
  { name: 'libsodium', backend: null, takes: [] },
  { name: 'node:crypto', backend: nodeCryptoBackend, takes: ['sign', 'x25519Base', 'x25519'] },
];

describe.each(BACKENDS)('backend $name', ({ name, backend, takes }) => {
  beforeAll(() => setBackend(backend));
  afterAll(() => setBackend(null));

  it('is the implementation of exactly the operations it takes over', () => {
    const info = backendInfo();
    for (const [op, impl] of Object.entries(info)) expect(impl, op).toBe(takes.includes(op) ? name : 'libsodium');
  });

  describe('X25519: x25519_test.json through x25519()', () => {
    const file = loadWycheproof<WycheproofFile<XdhGroup>>('x25519_test.json');
    const tests = file.testGroups.flatMap((g) => g.tests);
    const isZero = (hex: string) => /^(00)+$/.test(hex);

    it('holds every vector of the file, for curve25519 only', () => {
      expect(file.algorithm).toBe('XDH');
      expect(tests.length).toBe(file.numberOfTests);
      expect(new Set(file.testGroups.map((g) => g.curve))).toEqual(new Set(['curve25519']));
      // The file has no "invalid" X25519 cases: inputs are either valid or "acceptable" (implementations may reject them).
      expect(new Set(tests.map((t) => t.result))).toEqual(new Set(['valid', 'acceptable']));
    });

    it('gives the expected shared secret for every valid vector', () => {
      const valid = tests.filter((t) => t.result === 'valid');
      expect(valid.length).toBeGreaterThan(250);
      const failures = valid
        .map((t) => ({ tcId: t.tcId, got: bytesToHex(x25519(hexToBytes(t.private), hexToBytes(t.public))), want: t.shared }))
        .filter((r) => r.got !== r.want);
      expect(failures).toEqual([]);
    });

    it('returns null for every low-order public key (all-zero shared secret), which the envelope relies on', () => {
      const zero = tests.filter((t) => isZero(t.shared));
      expect(zero.length).toBe(31);
      for (const t of zero) {
        expect(t.result, `tcId ${t.tcId}`).toBe('acceptable');
        expect(t.flags, `tcId ${t.tcId}`).toContain('ZeroSharedSecret');
      }
      const failures = zero.map((t) => ({ tcId: t.tcId, got: bytesToHex(x25519(hexToBytes(t.private), hexToBytes(t.public))) })).filter((r) => r.got !== null);
      expect(failures).toEqual([]);
    });

    it('gives the shared value for every acceptable vector with a non-zero result (twist, non-canonical public keys)', () => {
      const acceptable = tests.filter((t) => t.result === 'acceptable' && !isZero(t.shared));
      expect(acceptable.length).toBe(254 - 31);
      const flags = new Set(acceptable.flatMap((t) => t.flags));
      for (const f of ['Twist', 'NonCanonicalPublic']) expect(flags).toContain(f);
      const failures = acceptable
        .map((t) => ({ tcId: t.tcId, flags: t.flags, got: bytesToHex(x25519(hexToBytes(t.private), hexToBytes(t.public))), want: t.shared }))
        .filter((r) => r.got !== r.want);
      expect(failures).toEqual([]);
    });
  });

  describe('Ed25519: ed25519_test.json through verify()', () => {
    const file = loadWycheproof<WycheproofFile<EddsaGroup>>('ed25519_test.json');
    const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, pk: g.publicKey.pk })));
    const run = (t: (typeof cases)[number]) => verify(hexToBytes(t.sig), hexToBytes(t.msg), hexToBytes(t.pk));

    it('holds every vector of the file', () => {
      expect(file.algorithm).toBe('EDDSA');
      expect(cases.length).toBe(file.numberOfTests);
      expect(new Set(cases.map((t) => t.result))).toEqual(new Set(['valid', 'invalid']));
    });

    it('accepts every valid signature', () => {
      const valid = cases.filter((t) => t.result === 'valid');
      expect(valid.length).toBe(88);
      expect(valid.filter((t) => run(t) !== true).map((t) => t.tcId)).toEqual([]);
    });

    it('returns false (never throws) for every invalid signature: malleability, truncation, garbage, bad encodings', () => {
      const invalid = cases.filter((t) => t.result === 'invalid');
      expect(invalid.length).toBe(63);
      const flags = new Set(invalid.flatMap((t) => t.flags));
      for (const f of ['SignatureMalleability', 'TruncatedSignature', 'SignatureWithGarbage', 'InvalidEncoding']) expect(flags).toContain(f);
      expect(invalid.filter((t) => run(t) !== false).map((t) => t.tcId)).toEqual([]);
    });
  });

  // Wycheproof's Ed25519 file holds no private keys, and X25519 vectors never use the base
  // point: these pin x25519Base() and sign(), which a backend may also take over.
  describe('x25519Base() and sign(): RFC 7748 and RFC 8032 vectors, and libsodium byte for byte', () => {
    const xdh = loadWycheproof<WycheproofFile<XdhGroup>>('x25519_test.json').testGroups.flatMap((g) => g.tests);
    const basePoint = hexToBytes('09'.padEnd(64, '0'));
    /** Runs fn with libsodium for every operation, then puts this backend back. */
    const withLibsodium = <T>(fn: () => T): T => {
      setBackend(null);
      try {
        return fn();
      } finally {
        setBackend(backend);
      }
    };

    it('x25519Base gives the RFC 7748 section 6.1 public keys, and X25519(k, 9) for every Wycheproof private key', () => {
      expect(bytesToHex(x25519Base(hexToBytes(RFC7748.alicePrivate)))).toBe(RFC7748.alicePublic);
      expect(bytesToHex(x25519Base(hexToBytes(RFC7748.bobPrivate)))).toBe(RFC7748.bobPublic);
      const failures = xdh
        .map((t) => hexToBytes(t.private))
        .filter((k) => bytesToHex(x25519Base(k)) !== bytesToHex(x25519(k, basePoint)))
        .map(bytesToHex);
      expect(failures).toEqual([]);
    });

    it('sign gives the RFC 8032 section 7.1 signatures, which verify', () => {
      for (const v of RFC8032) {
        const kp = signKeyPairFromSeed(hexToBytes(v.secret));
        expect(bytesToHex(kp.publicKey)).toBe(v.public);
        const signature = sign(hexToBytes(v.message), kp.secretKey);
        expect(bytesToHex(signature)).toBe(v.signature);
        expect(verify(signature, hexToBytes(v.message), kp.publicKey)).toBe(true);
      }
    });

    it('gives libsodium\'s bytes for random keys and messages', () => {
      for (let i = 0; i < 64; i++) {
        const seed = crypto.getRandomValues(new Uint8Array(32));
        const secret = crypto.getRandomValues(new Uint8Array(32));
        const peer = crypto.getRandomValues(new Uint8Array(32));
        const message = crypto.getRandomValues(new Uint8Array(i * 37));
        const kp = signKeyPairFromSeed(seed);
        const want = withLibsodium(() => [sign(message, kp.secretKey), x25519Base(secret), x25519(secret, peer)].map(bytesToHex));
        expect([sign(message, kp.secretKey), x25519Base(secret), x25519(secret, peer)].map(bytesToHex), `case ${i}`).toEqual(want);
      }
    });

    it('uses the bytes a key array holds now, when the caller reuses the array for another key', () => {
      const secret = hexToBytes(RFC7748.bobPrivate);
      expect(bytesToHex(x25519(secret, hexToBytes(RFC7748.alicePublic)))).toBe(RFC7748.shared);
      secret.set(hexToBytes(RFC7748.alicePrivate));
      expect(bytesToHex(x25519Base(secret))).toBe(RFC7748.alicePublic);
      expect(bytesToHex(x25519(secret, hexToBytes(RFC7748.bobPublic)))).toBe(RFC7748.shared);
      const [first, second] = RFC8032;
      const secretKey = signKeyPairFromSeed(hexToBytes(first!.secret)).secretKey;
      expect(bytesToHex(sign(hexToBytes(first!.message), secretKey))).toBe(first!.signature);
      secretKey.set(signKeyPairFromSeed(hexToBytes(second!.secret)).secretKey);
      expect(bytesToHex(sign(hexToBytes(second!.message), secretKey))).toBe(second!.signature);
    });

    it('refuses keys of the wrong length as libsodium does: x25519 gives null, x25519Base and sign throw', () => {
      const k31 = new Uint8Array(31).fill(7);
      const k32 = new Uint8Array(32).fill(7);
      expect(x25519(k31, basePoint)).toBeNull();
      expect(x25519(k32, new Uint8Array(33).fill(9))).toBeNull();
      expect(() => x25519Base(k31)).toThrow();
      expect(() => sign(new Uint8Array(3), k32)).toThrow();
    });
  });

  describe.each([
    { name: 'ChaCha20-Poly1305-IETF', fileName: 'chacha20_poly1305_test.json', ivBits: 96, seal: chachaSeal, open: chachaOpen, valid: 256, invalid: 60 },
    { name: 'XChaCha20-Poly1305-IETF', fileName: 'xchacha20_poly1305_test.json', ivBits: 192, seal: xchachaSeal, open: xchachaOpen, valid: 246, invalid: 60 },
  ])('$name: $fileName through the seal/open pair', ({ fileName, ivBits, seal, open, valid, invalid }) => {
    const file = loadWycheproof<WycheproofFile<AeadGroup>>(fileName);
    const supported = file.testGroups.filter((g) => g.ivSize === ivBits && g.keySize === 256 && g.tagSize === 128).flatMap((g) => g.tests);
    const otherNonce = file.testGroups.filter((g) => g.ivSize !== ivBits).flatMap((g) => g.tests);
    const bytes = (t: AeadGroup['tests'][number]) => ({
      key: hexToBytes(t.key),
      iv: hexToBytes(t.iv),
      aad: hexToBytes(t.aad),
      msg: hexToBytes(t.msg),
      sealed: hexToBytes(t.ct + t.tag),
    });

    it('holds every vector of the file; the supported sizes are the ones the project uses', () => {
      expect(countTests(file)).toBe(file.numberOfTests);
      expect(supported.filter((t) => t.result === 'valid').length).toBe(valid);
      expect(supported.filter((t) => t.result === 'invalid').length).toBe(invalid);
      expect(supported.length + otherNonce.length).toBe(file.numberOfTests);
    });

    it('seals every valid vector to ciphertext || tag and opens it back to the message', () => {
      const failures: { tcId: number; sealed: string | null; opened: string | null }[] = [];
      for (const t of supported.filter((x) => x.result === 'valid')) {
        const b = bytes(t);
        const sealed = bytesToHex(seal(b.key, b.iv, b.msg, b.aad));
        const opened = bytesToHex(open(b.key, b.iv, b.sealed, b.aad));
        if (sealed !== t.ct + t.tag || opened !== t.msg) failures.push({ tcId: t.tcId, sealed, opened });
      }
      expect(failures).toEqual([]);
    });

    it('returns null when opening every invalid vector (modified tags)', () => {
      const bad = supported.filter((x) => x.result === 'invalid');
      expect(new Set(bad.flatMap((t) => t.flags))).toEqual(new Set(['ModifiedTag']));
      const failures = bad.filter((t) => {
        const b = bytes(t);
        return open(b.key, b.iv, b.sealed, b.aad) !== null;
      });
      expect(failures.map((t) => t.tcId)).toEqual([]);
    });

    it('refuses nonces of any other size: open returns null, seal throws', () => {
      expect(otherNonce.length).toBe(9);
      for (const t of otherNonce) {
        expect(t.result).toBe('invalid');
        const b = bytes(t);
        expect(open(b.key, b.iv, b.sealed, b.aad), `tcId ${t.tcId}`).toBeNull();
        expect(() => seal(b.key, b.iv, b.msg, b.aad), `tcId ${t.tcId}`).toThrow();
      }
    });
  });
});
