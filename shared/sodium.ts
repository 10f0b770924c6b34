/**
 * The primitives, in one place: every other module calls these, never libsodium directly, so a
 * change of library (or a faster backend on the server) happens here and the Wycheproof tests
 * in test/shared/wycheproof.test.ts exercise exactly these calls.
 */
import sodium from 'libsodium-wrappers';

let readyPromise: Promise<void> | undefined;
let isReady = false;

/** Resolves once libsodium's WebAssembly is loaded. Call (and await) before any other function. */
export function ready(): Promise<void> {
  readyPromise ??= sodium.ready.then(() => {
    isReady = true;
  });
  return readyPromise;
}

function lib(): typeof sodium {
  if (!isReady) throw new Error('twilio-e2ee: await ready() before using the crypto core');
  return sodium;
}

/** Random bytes from the platform CSPRNG (libsodium's randombytes_buf is far slower in this build). */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let o = 0; o < length; o += 65536) globalThis.crypto.getRandomValues(out.subarray(o, Math.min(length, o + 65536)));
  return out;
}

/** BLAKE2b with a 32-byte output, optionally keyed (RFC 7693). */
export function blake2b256(message: Uint8Array, key?: Uint8Array): Uint8Array {
  return lib().crypto_generichash(32, message, key ?? null);
}

export interface SignKeyPair {
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** 64-byte libsodium secret key (seed || public key). */
  secretKey: Uint8Array;
}

/** Ed25519 key pair from a 32-byte seed (RFC 8032 section 5.1.5). */
export function signKeyPairFromSeed(seed: Uint8Array): SignKeyPair {
  const kp = lib().crypto_sign_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return lib().crypto_sign_detached(message, secretKey);
}

/** Ed25519 verification; never throws, false on any malformed input. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return lib().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** X25519 public key of a 32-byte secret scalar. */
export function x25519Base(secret: Uint8Array): Uint8Array {
  return lib().crypto_scalarmult_base(secret);
}

/**
 * X25519(secret, publicKey). Returns null when the result is all zero (the public key has low
 * order), which libsodium reports by failing; callers turn that into their own typed error.
 */
export function x25519(secret: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  try {
    return lib().crypto_scalarmult(secret, publicKey);
  } catch {
    return null;
  }
}

/** XChaCha20-Poly1305-IETF encryption (24-byte nonce); output is ciphertext || 16-byte tag. */
export function xchachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null): Uint8Array {
  return lib().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

/** XChaCha20-Poly1305-IETF decryption; null when authentication fails. */
export function xchachaOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Uint8Array | null {
  try {
    return lib().crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return null;
  }
}

/** ChaCha20-Poly1305-IETF (RFC 8439, 12-byte nonce); output is ciphertext || 16-byte tag. */
export function chachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null): Uint8Array {
  return lib().crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

/** ChaCha20-Poly1305-IETF decryption; null when authentication fails. */
export function chachaOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Uint8Array | null {
  try {
    return lib().crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return null;
  }
}
