/**
 * Project Wycheproof vectors (test/fixtures/wycheproof, Apache-2.0) run through the exact calls
 * of shared/sodium.ts, so a change of library, build or call is caught here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ready } from '../../shared/index.js';
import { chachaOpen, chachaSeal, verify, x25519, xchachaOpen, xchachaSeal } from '../../shared/sodium.js';
import { bytesToHex, hexToBytes, loadWycheproof } from './helpers.js';

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
