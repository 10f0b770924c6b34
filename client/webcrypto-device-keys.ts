/**
 * Device keys as non-extractable WebCrypto keys (Ed25519 signs, X25519 opens this device's
 * slots): script in the page can use them while it runs, but no script can read their bytes out,
 * neither through WebCrypto (exportKey refuses) nor from IndexedDB, which keeps the CryptoKey
 * objects as they are. Used by IndexedDbKeyStore wherever the browser has both algorithms;
 * elsewhere the keys stay raw bytes (sealed under AES-GCM in the browser, plain in Node stores).
 */
import { equalBytes, toB64u } from '../shared/encoding.js';
import { asyncDeviceKeys, deviceKeysFromSecrets, generateDeviceKeys, type AsyncDeviceKeys } from '../shared/keys.js';
import type { KeyStore, StoredDevice } from './key-store.js';

/** A device's private keys as non-extractable CryptoKeys, with their public keys (for the card). */
export interface WebCryptoDeviceKeys {
  /** Ed25519, usages ["sign"], extractable false. */
  signPrivateKey: CryptoKey;
  /** X25519, usages ["deriveBits"], extractable false. */
  boxPrivateKey: CryptoKey;
  signPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
}

const ED25519 = { name: 'Ed25519' } as const;
const X25519 = { name: 'X25519' } as const;
/** The X25519 base point (u = 9): X25519(secret, base point) is the public key, a self-check of an imported key. */
const X25519_BASE_POINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0));

function subtle(): SubtleCrypto | undefined {
  return globalThis.crypto?.subtle;
}

/** The private keys behind the async interface the envelope and card code use. */
export function webCryptoAsyncKeys(keys: WebCryptoDeviceKeys): AsyncDeviceKeys {
  return {
    signPublicKey: keys.signPublicKey,
    boxPublicKey: keys.boxPublicKey,
    sign: async (message) => new Uint8Array(await subtle()!.sign(ED25519, keys.signPrivateKey, message as BufferSource)),
    agree: (publicKey) => deriveX25519(keys.boxPrivateKey, publicKey),
  };
}

/** X25519 in WebCrypto; null where libsodium would fail: a wrong length, or an all-zero result (low-order key), which browsers refuse. */
async function deriveX25519(privateKey: CryptoKey, publicKey: Uint8Array): Promise<Uint8Array | null> {
  if (publicKey.length !== 32) return null;
  const s = subtle()!;
  try {
    const peer = await s.importKey('raw', publicKey as BufferSource, X25519, true, []);
    const shared = new Uint8Array(await s.deriveBits({ name: 'X25519', public: peer }, privateKey, 256));
    return shared.every((b) => b === 0) ? null : shared;
  } catch {
    return null;
  }
}

/**
 * Fresh non-extractable device keys, or null where the platform lacks WebCrypto Ed25519 or
 * X25519 (generation, signing, derivation or public key export fails): the feature test and the
 * generation are one, so a device never gets keys that were not just seen working.
 */
export async function generateWebCryptoDeviceKeys(): Promise<WebCryptoDeviceKeys | null> {
  const s = subtle();
  if (!s) return null;
  try {
    const sign = (await s.generateKey(ED25519, false, ['sign', 'verify'])) as CryptoKeyPair;
    const box = (await s.generateKey(X25519, false, ['deriveBits'])) as CryptoKeyPair;
    const keys: WebCryptoDeviceKeys = {
      signPrivateKey: sign.privateKey,
      boxPrivateKey: box.privateKey,
      signPublicKey: new Uint8Array(await s.exportKey('raw', sign.publicKey)),
      boxPublicKey: new Uint8Array(await s.exportKey('raw', box.publicKey)),
    };
    return (await worksAsExpected(keys, sign.publicKey)) ? keys : null;
  } catch {
    return null;
  }
}

/** Signs and verifies, and derives this key's own public key, so a half-supported platform falls back. */
async function worksAsExpected(keys: WebCryptoDeviceKeys, signPublic: CryptoKey): Promise<boolean> {
  const probe = new Uint8Array([1, 2, 3]);
  const signature = await webCryptoAsyncKeys(keys).sign(probe);
  if (signature.length !== 64 || !(await subtle()!.verify(ED25519, signPublic, signature as BufferSource, probe))) return false;
  const own = await deriveX25519(keys.boxPrivateKey, X25519_BASE_POINT);
  return own !== null && equalBytes(own, keys.boxPublicKey);
}

/**
 * Imports raw device secrets as non-extractable WebCrypto keys (to upgrade a record of the older
 * scheme), or null where the platform cannot. The imported keys are checked against libsodium's
 * public keys of the same secrets, so an upgrade never changes the device's card.
 */
export async function importWebCryptoDeviceKeys(signSeed: Uint8Array, boxSecretKey: Uint8Array): Promise<WebCryptoDeviceKeys | null> {
  const s = subtle();
  if (!s) return null;
  const raw = deviceKeysFromSecrets(signSeed, boxSecretKey);
  try {
    const jwk = (crv: string, d: Uint8Array, x: Uint8Array): JsonWebKey => ({ kty: 'OKP', crv, d: toB64u(d), x: toB64u(x), ext: false });
    const signPrivateKey = await s.importKey('jwk', jwk('Ed25519', signSeed, raw.signPublicKey), ED25519, false, ['sign']);
    const boxPrivateKey = await s.importKey('jwk', jwk('X25519', boxSecretKey, raw.boxPublicKey), X25519, false, ['deriveBits']);
    const keys: WebCryptoDeviceKeys = { signPrivateKey, boxPrivateKey, signPublicKey: raw.signPublicKey, boxPublicKey: raw.boxPublicKey };
    const signPublic = await s.importKey('raw', raw.signPublicKey as BufferSource, ED25519, true, ['verify']);
    return (await worksAsExpected(keys, signPublic)) ? keys : null;
  } catch {
    return null;
  } finally {
    raw.signSecretKey.fill(0);
    raw.signSeed.fill(0);
    raw.boxSecretKey.fill(0);
  }
}

/** True when a stored device keeps its private keys as WebCrypto keys. */
export function hasWebCryptoKeys(record: StoredDevice): record is StoredDevice & { webCryptoKeys: WebCryptoDeviceKeys } {
  return 'webCryptoKeys' in record && record.webCryptoKeys !== undefined;
}

/** The private keys of a stored device, whichever form it keeps them in. */
export function deviceKeysOf(record: StoredDevice): AsyncDeviceKeys {
  if (hasWebCryptoKeys(record)) return webCryptoAsyncKeys(record.webCryptoKeys);
  return asyncDeviceKeys(deviceKeysFromSecrets(record.signSeed, record.boxSecretKey));
}

/**
 * The private keys of a new device, in the form its key store keeps: non-extractable WebCrypto
 * keys when the store makes them (IndexedDbKeyStore where supported), else raw bytes.
 */
export async function newDeviceKeys(store: KeyStore): Promise<
  { webCryptoKeys: WebCryptoDeviceKeys } | { signSeed: Uint8Array; boxSecretKey: Uint8Array }
> {
  const webCryptoKeys = await store.generateWebCryptoKeys?.();
  if (webCryptoKeys) return { webCryptoKeys };
  const keys = generateDeviceKeys();
  return { signSeed: keys.signSeed, boxSecretKey: keys.boxSecretKey };
}
