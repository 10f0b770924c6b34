/**
 * ChaCha20-Poly1305-IETF on node:crypto (OpenSSL), for the backend pattern of shared/sodium.ts:
 * on 64 KiB attachment chunks OpenSSL's vectorized ChaCha20 is several times faster than
 * libsodium's WebAssembly build (`npm run bench` measures both). Spread into a backend to use it:
 * `setBackend({ ...nodeCryptoBackend, ...nodeChachaBackend })`. Behaves as libsodium's: the
 * output is ciphertext || 16-byte tag (in the caller's array when one is given), and opening
 * returns null on any failure.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CryptoBackend } from '../shared/sodium.js';

const TAG_BYTES = 16;

function checkSizes(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`ChaCha20-Poly1305 key must be 32 bytes, got ${key.length}`);
  if (nonce.length !== 12) throw new RangeError(`ChaCha20-Poly1305 nonce must be 12 bytes, got ${nonce.length}`);
}

export const nodeChachaBackend: Required<Pick<CryptoBackend, 'chachaSeal' | 'chachaOpen'>> = {
  // Node's API takes no output array, so OpenSSL's ciphertext is copied once, into `out`; nor can
  // a cipher take a new nonce, hence one cipher per call.
  chachaSeal(key, nonce, plaintext, ad, out = new Uint8Array(plaintext.length + TAG_BYTES)) {
    checkSizes(key, nonce);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
    if (ad) cipher.setAAD(ad, { plaintextLength: plaintext.length });
    out.set(cipher.update(plaintext));
    cipher.final();
    out.set(cipher.getAuthTag(), plaintext.length);
    return out;
  },

  chachaOpen(key, nonce, ciphertext, ad) {
    if (key.length !== 32 || nonce.length !== 12 || ciphertext.length < TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
      if (ad) decipher.setAAD(ad, { plaintextLength: ciphertext.length - TAG_BYTES });
      const plaintext = decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES));
      decipher.final(); // throws when the tag does not verify
      return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    } catch {
      return null;
    }
  },
};
