/**
 * Key material: device keys (Ed25519 sign pair + X25519 box pair), the AppKey (Ed25519, signs
 * cards) and the OrgKey (one seed from which the OrgCard's sign and box pairs are derived).
 */
import { APP_KEY_ID_BYTES, KEY_BYTES, ORG_BOX_LABEL, ORG_SIGN_LABEL } from './constants.js';
import { checkBytes, fromB64uExact, toB64u, toHex } from './encoding.js';
import { blake2b256, randomBytes, sign, signKeyPairFromSeed, x25519, x25519Base } from './sodium.js';

/** The private keys of one device. Never leaves the device. */
export interface DeviceKeys {
  /** 32-byte Ed25519 seed. */
  signSeed: Uint8Array;
  signPublicKey: Uint8Array;
  /** 64-byte libsodium form (seed || public key). */
  signSecretKey: Uint8Array;
  /** 32-byte X25519 secret scalar. */
  boxSecretKey: Uint8Array;
  boxPublicKey: Uint8Array;
}

/** Rebuilds device keys from their two 32-byte secrets. */
export function deviceKeysFromSecrets(signSeed: Uint8Array, boxSecretKey: Uint8Array): DeviceKeys {
  checkBytes(signSeed, KEY_BYTES, 'signSeed');
  checkBytes(boxSecretKey, KEY_BYTES, 'boxSecretKey');
  const sign = signKeyPairFromSeed(signSeed);
  return {
    signSeed: signSeed.slice(),
    signPublicKey: sign.publicKey,
    signSecretKey: sign.secretKey,
    boxSecretKey: boxSecretKey.slice(),
    boxPublicKey: x25519Base(boxSecretKey),
  };
}

/**
 * A device's private keys behind the two operations the protocol needs from them, async so that
 * the keys may live where the bytes cannot be read (non-extractable WebCrypto keys in a browser,
 * client/webcrypto-device-keys.ts) as well as in memory (`asyncDeviceKeys`).
 */
export interface AsyncDeviceKeys {
  signPublicKey: Uint8Array;
  boxPublicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) with the device sign key. */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** X25519(device box secret, publicKey); null when the result is all zero (low-order key). */
  agree(publicKey: Uint8Array): Promise<Uint8Array | null>;
}

/** Raw device keys behind the async interface (libsodium, or the installed backend). */
export function asyncDeviceKeys(keys: DeviceKeys): AsyncDeviceKeys {
  return {
    signPublicKey: keys.signPublicKey,
    boxPublicKey: keys.boxPublicKey,
    sign: async (message) => sign(message, keys.signSecretKey),
    agree: async (publicKey) => x25519(keys.boxSecretKey, publicKey),
  };
}

/** Fresh device keys from the platform CSPRNG. */
export function generateDeviceKeys(): DeviceKeys {
  return deviceKeysFromSecrets(randomBytes(KEY_BYTES), randomBytes(KEY_BYTES));
}

/** appKeyId = hex of the first 8 bytes of BLAKE2b-256(AppKey public key). */
export function appKeyIdOf(publicKey: Uint8Array): string {
  checkBytes(publicKey, KEY_BYTES, 'publicKey');
  return toHex(blake2b256(publicKey).subarray(0, APP_KEY_ID_BYTES));
}

/** The AppKey: the service's Ed25519 key that countersigns cards. */
export interface AppKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  appKeyId: string;
}

export function appKeyFromSeed(seed: Uint8Array): AppKey {
  checkBytes(seed, KEY_BYTES, 'seed');
  const kp = signKeyPairFromSeed(seed);
  return { seed: seed.slice(), publicKey: kp.publicKey, secretKey: kp.secretKey, appKeyId: appKeyIdOf(kp.publicKey) };
}

/** Loads the AppKey from its b64u seed (the APP_KEY setting). */
export function appKeyFromB64u(text: string): AppKey {
  return appKeyFromSeed(fromB64uExact(text, KEY_BYTES, 'APP_KEY'));
}

export function generateAppKey(): AppKey {
  return appKeyFromSeed(randomBytes(KEY_BYTES));
}

/**
 * The OrgKey: one 32-byte seed (the ORG_KEY setting) from which the OrgCard's two key pairs are
 * derived with keyed BLAKE2b, so operators keep a single secret.
 */
export interface OrgKey {
  seed: Uint8Array;
  keys: DeviceKeys;
}

export function orgKeyFromSeed(seed: Uint8Array): OrgKey {
  checkBytes(seed, KEY_BYTES, 'seed');
  const keys = deviceKeysFromSecrets(blake2b256(ORG_SIGN_LABEL, seed), blake2b256(ORG_BOX_LABEL, seed));
  return { seed: seed.slice(), keys };
}

export function orgKeyFromB64u(text: string): OrgKey {
  return orgKeyFromSeed(fromB64uExact(text, KEY_BYTES, 'ORG_KEY'));
}

export function generateOrgKey(): OrgKey {
  return orgKeyFromSeed(randomBytes(KEY_BYTES));
}

/** b64u of a seed, the form used in .env files. */
export function seedToB64u(seed: Uint8Array): string {
  return toB64u(checkBytes(seed, KEY_BYTES, 'seed'));
}
