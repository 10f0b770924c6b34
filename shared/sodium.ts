/**
 * The primitives, in one place: every other module calls these, never libsodium directly, so a
 * change of library (or a faster backend on the server) happens here and the Wycheproof tests
 * in test/shared/wycheproof.test.ts exercise exactly these calls.
 *
 * Each operation has exactly one implementation at a time: libsodium's, unless a backend
 * installed with setBackend() provides that operation (the server installs node:crypto for
 * Ed25519 signing and X25519, see server/crypto-backend.ts). Whatever a backend leaves out stays
 * on libsodium.
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

/**
 * Another implementation of some primitives. Each function must behave exactly as the libsodium
 * one it replaces, on every input (test/shared/wycheproof.test.ts runs the vectors through every
 * backend), and throw where libsodium throws.
 */
export interface CryptoBackend {
  /** Shown by benchmarks and logs, e.g. "node:crypto". */
  readonly name: string;
  sign?(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  verify?(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  x25519Base?(secret: Uint8Array): Uint8Array;
  /** null when the result is all zero (low-order public key). */
  x25519?(secret: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
  /** ChaCha20-Poly1305-IETF, as chachaSeal (attachment chunks are where a native build pays); writes into `out` when given. */
  chachaSeal?(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null, out?: Uint8Array): Uint8Array;
  /** As chachaOpen: null when authentication fails. */
  chachaOpen?(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Uint8Array | null;
}

/** The operations a backend may take over. */
export type BackendOperation = Exclude<keyof CryptoBackend, 'name'>;

const LIBSODIUM = 'libsodium';
let backend: CryptoBackend | null = null;

/**
 * Installs a backend for the operations it provides (null restores libsodium for all). A process
 * has one backend at a time: the last call wins.
 */
export function setBackend(next: CryptoBackend | null): void {
  backend = next;
}

/** Which implementation runs each operation that a backend may take over. */
export function backendInfo(): Record<BackendOperation, string> {
  const of = (op: BackendOperation) => (backend?.[op] ? backend.name : LIBSODIUM);
  return {
    sign: of('sign'),
    verify: of('verify'),
    x25519Base: of('x25519Base'),
    x25519: of('x25519'),
    chachaSeal: of('chachaSeal'),
    chachaOpen: of('chachaOpen'),
  };
}

/** The backend's operation, or undefined for libsodium; either way only after ready(). */
function fromBackend<K extends BackendOperation>(op: K): CryptoBackend[K] | undefined {
  if (!isReady) throw new Error('twilio-e2ee: await ready() before using the crypto core');
  return backend?.[op];
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

/** An incremental BLAKE2b-256 (unkeyed): the same digest as blake2b256 of all updates concatenated. */
export interface Blake2bStream {
  update(bytes: Uint8Array): void;
  /** The 32-byte digest; the stream cannot be updated afterwards. */
  digest(): Uint8Array;
}

export function blake2b256Stream(): Blake2bStream {
  const state = lib().crypto_generichash_init(null, 32);
  return {
    update: (bytes) => lib().crypto_generichash_update(state, bytes),
    digest: () => lib().crypto_generichash_final(state, 32),
  };
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

/** Ed25519 signature (64 bytes) with a 64-byte secret key (seed || public key). */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const impl = fromBackend('sign');
  return impl ? impl(message, secretKey) : lib().crypto_sign_detached(message, secretKey);
}

/** Ed25519 verification; never throws, false on any malformed input. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const impl = fromBackend('verify');
  try {
    return impl ? impl(signature, message, publicKey) : lib().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** X25519 public key of a 32-byte secret scalar. */
export function x25519Base(secret: Uint8Array): Uint8Array {
  const impl = fromBackend('x25519Base');
  return impl ? impl(secret) : lib().crypto_scalarmult_base(secret);
}

/**
 * X25519(secret, publicKey). Returns null when the result is all zero (the public key has low
 * order), which libsodium reports by failing; callers turn that into their own typed error.
 */
export function x25519(secret: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  const impl = fromBackend('x25519');
  if (impl) return impl(secret, publicKey);
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

/**
 * ChaCha20-Poly1305-IETF (RFC 8439, 12-byte nonce); output is ciphertext || 16-byte tag, written
 * into `out` (plaintext.length + 16 bytes) and returned when given: attachment frames are sealed
 * straight into the array they are sent in.
 */
export function chachaSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null, out?: Uint8Array): Uint8Array {
  if (out && out.length !== plaintext.length + 16) throw new RangeError(`"out" expected ${plaintext.length + 16} bytes, got ${out.length}`);
  const impl = fromBackend('chachaSeal');
  const sealed = impl ? impl(key, nonce, plaintext, ad, out) : lib().crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  if (!out || sealed === out) return sealed;
  out.set(sealed); // libsodium's wrappers (and a backend that ignores `out`) return an array of their own
  return out;
}

/** ChaCha20-Poly1305-IETF decryption; null when authentication fails. */
export function chachaOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Uint8Array | null {
  const impl = fromBackend('chachaOpen');
  if (impl) return impl(key, nonce, ciphertext, ad);
  try {
    return lib().crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return null;
  }
}
