/**
 * node:crypto (OpenSSL) for the primitives where it beats libsodium's WebAssembly build on the
 * server: Ed25519 signing (the AppKey countersigns every card) and X25519 (every history read
 * costs two per message, every card registration one low-order probe). Installed behind the
 * shared interface with `useNodeCrypto()`; every other operation stays on libsodium, and
 * test/shared/wycheproof.test.ts runs the vectors through both.
 *
 * Ed25519 verification stays on libsodium: OpenSSL is no faster at it, and libsodium's stricter
 * checks (it also refuses small-order and non-canonical public keys) are the ones the card
 * directory was written against.
 *
 * OpenSSL takes keys as KeyObjects, and making them is a good part of the cost (all measured by
 * `npm run bench`): importing a raw key as JWK is the fast path (DER/PKCS#8 import goes through
 * OpenSSL's generic decoders and costs ~10x more); a private key's import derives its public key
 * (one fixed-base scalar multiplication, as much as the X25519 itself), so private KeyObjects are
 * cached per secret array (a WeakMap: an entry lives no longer than the caller's array, and is
 * used only while the array still holds the same bytes; no copy of a secret outlives its array);
 * public KeyObjects are cached by content (a sender's recipients and a history page's reader
 * repeat), a bounded map.
 */
import { createPrivateKey, createPublicKey, diffieHellman, sign as nodeSign, type KeyObject } from 'node:crypto';
import { setBackend, type CryptoBackend } from '../shared/sodium.js';

type Curve = 'Ed25519' | 'X25519';

interface CachedKey {
  curve: Curve;
  bytes: Uint8Array;
  key: KeyObject;
}

const privateKeys = new WeakMap<Uint8Array, CachedKey>();

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** A plain Uint8Array view of a Buffer OpenSSL allocated for this result (no copy), so callers never see Buffer-specific behaviour. */
function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * The private KeyObject of a 32-byte secret. Node reads only `d` of a private OKP JWK (`x` must
 * be a string but is not used: the public key is derived from `d`), so when the caller does not
 * know the public key an empty `x` is given.
 */
function privateKey(curve: Curve, secret: Uint8Array, publicKey?: Uint8Array): KeyObject {
  const cached = privateKeys.get(secret);
  if (cached && cached.curve === curve && sameBytes(cached.bytes, secret)) return cached.key;
  const d = curve === 'Ed25519' ? secret.subarray(0, 32) : secret;
  const key = createPrivateKey({ key: { kty: 'OKP', crv: curve, d: b64u(d), x: publicKey ? b64u(publicKey) : '' }, format: 'jwk' });
  privateKeys.set(secret, { curve, bytes: secret.slice(), key });
  return key;
}

/**
 * Public KeyObjects by their b64u bytes: a sender's recipients (cards cached by the directory)
 * and a history page's reader repeat. Bounded, oldest out first; keyed by content, so always
 * the right key.
 */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 4096;

function x25519PublicKey(publicKey: Uint8Array): KeyObject {
  const x = b64u(publicKey);
  let key = publicKeys.get(x);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
    if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(x, key);
  }
  return key;
}

function lengthError(what: string, expected: number, got: number): RangeError {
  return new RangeError(`${what} must be ${expected} bytes, got ${got}`);
}

export const nodeCryptoBackend: CryptoBackend = {
  name: 'node:crypto',

  // libsodium's secret key is seed || public key; OpenSSL needs only the seed. Ed25519 is
  // deterministic, so the signature is the same bytes either way.
  sign(message, secretKey) {
    if (secretKey.length !== 64) throw lengthError('Ed25519 secret key', 64, secretKey.length);
    return plain(nodeSign(null, message, privateKey('Ed25519', secretKey, secretKey.subarray(32))));
  },

  x25519Base(secret) {
    if (secret.length !== 32) throw lengthError('X25519 secret key', 32, secret.length);
    const jwk = createPublicKey(privateKey('X25519', secret)).export({ format: 'jwk' });
    // Copied out: a small Buffer.from() may be a view into Node's shared allocation pool.
    const out = new Uint8Array(32);
    out.set(Buffer.from(jwk.x!, 'base64url'));
    return out;
  },

  // libsodium returns null (fails) for wrong lengths and for an all-zero result; OpenSSL's
  // derivation fails only for the all-zero result (every 32-byte string is a u-coordinate).
  x25519(secret, publicKey) {
    if (secret.length !== 32 || publicKey.length !== 32) return null;
    const privateObject = privateKey('X25519', secret);
    const publicObject = x25519PublicKey(publicKey);
    try {
      return plain(diffieHellman({ privateKey: privateObject, publicKey: publicObject }));
    } catch {
      return null;
    }
  },
};

/** Runs Ed25519 signing and X25519 on node:crypto for the rest of this process (idempotent). */
export function useNodeCrypto(): void {
  setBackend(nodeCryptoBackend);
}
