import { E2EEError, ErrorCode } from './errors.js';

const B64U_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64U_LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < B64U_ALPHABET.length; i++) B64U_LOOKUP[B64U_ALPHABET.charCodeAt(i)] = i;

/** base64url without padding. */
export function toB64u(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64U_ALPHABET[n >> 18]! + B64U_ALPHABET[(n >> 12) & 63]! + B64U_ALPHABET[(n >> 6) & 63]! + B64U_ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64U_ALPHABET[n >> 18]! + B64U_ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64U_ALPHABET[n >> 18]! + B64U_ALPHABET[(n >> 12) & 63]! + B64U_ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

const B64U_PATTERN = /^[A-Za-z0-9_-]*$/;
/** Node's Buffer decodes natively, several times faster than any loop here; browsers use atob. */
const NodeBuffer = (globalThis as { Buffer?: { from(text: string, encoding: 'base64url'): Uint8Array } }).Buffer;

/**
 * Strict base64url decoding: no padding, no whitespace, no standard-alphabet characters, and the
 * unused low bits of the last character must be zero. Accepting several spellings of the same
 * bytes would let one signed card or envelope travel under several texts.
 * @param field names the value in the error message.
 */
export function fromB64u(text: string, field = 'value'): Uint8Array {
  if (typeof text !== 'string') throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" expected a base64url string`);
  const len = text.length;
  if (len % 4 === 1) throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" is not valid base64url (length ${len})`);
  if (!B64U_PATTERN.test(text)) {
    let i = 0;
    while (i < len && (B64U_LOOKUP[text.charCodeAt(i)] ?? -1) >= 0) i++;
    throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" is not valid base64url (character at ${i})`);
  }
  const spare = len % 4; // 2 or 3 characters in the last group leave 4 or 2 unused bits
  if (spare !== 0 && (B64U_LOOKUP[text.charCodeAt(len - 1)]! & (spare === 2 ? 0x0f : 0x03)) !== 0) {
    throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" is not canonical base64url (non-zero trailing bits)`);
  }
  // Validated above, so both decoders see only canonical base64url. Copied out of Buffer's
  // shared pool, so no caller ever holds a view of other allocations.
  if (NodeBuffer) return new Uint8Array(NodeBuffer.from(text, 'base64url'));
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - spare) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Decodes b64u and checks the byte length, naming the field in the error. */
export function fromB64uExact(text: string, length: number, field: string): Uint8Array {
  const bytes = fromB64u(text, field);
  if (bytes.length !== length) {
    throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" expected ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

const HEX = '0123456789abcdef';

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
  return out;
}

/** Strict lowercase hex decoding. */
export function fromHex(text: string, field = 'value'): Uint8Array {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) {
    throw new E2EEError(ErrorCode.ENCODING_INVALID, `"${field}" expected lowercase hex`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF (a default decoder drops it), so a BOM-prefixed snapshot or payload
// is refused as not JSON, as RFC 8259 parsers do, instead of being read as a second spelling.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, throwing on invalid sequences (never replacing them). */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time comparison of two byte strings of equal length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Throws INVALID_ARGUMENT unless `value` is a Uint8Array of `length` bytes. */
export function checkBytes(value: unknown, length: number, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `"${field}" expected Uint8Array of length ${length}`);
  }
  if (value.length !== length) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `"${field}" expected Uint8Array of length ${length}, got length=${value.length}`);
  }
  return value;
}
