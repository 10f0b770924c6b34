/**
 * The encrypted attachment format's layout (docs/PROTOCOL.md section 16): sizes, padding buckets,
 * chunk nonces, and the metadata that travels inside the message's signed, encrypted envelope.
 *
 *   blob  = magic(8) || frame_0 || ... || frame_{n-1}
 *   frame = fileId(16) || ChaCha20-Poly1305(key, nonce_i, chunk_i, ATTACHMENT_LABEL || fileId)
 *   nonce_i = i as 11 bytes big-endian || (1 if i = n-1 else 0)
 *
 * The chunks are the content followed by zero padding up to paddedSize, cut every 64 KiB; there
 * is always at least one chunk, since paddedSize is at least 256.
 */
import { AEAD_TAG_BYTES, ATTACHMENT_CHUNK_BYTES, ATTACHMENT_FILE_ID_BYTES, ATTACHMENT_LABEL, ATTACHMENT_MAGIC, ATTACHMENT_VERSION, KEY_BYTES } from './constants.js';
import { concatBytes, fromB64uExact } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { MAX_ATTACHMENT_BLOB_BYTES, MAX_ATTACHMENT_CONTENT_TYPE_CHARS, MAX_ATTACHMENT_FILENAME_CHARS } from './limits.js';

/**
 * What the receiver needs to fetch, check and decrypt one attachment; it rides in the message's
 * signed payload, so it is as authentic as the message. Byte strings are b64u.
 */
export interface AttachmentMetadata {
  v: 1;
  /** The file key, 32 bytes: fresh per file, never reused. */
  key: string;
  /** 16 random bytes, in the clear at the start of every frame. */
  fileId: string;
  /** The content's real length in bytes. */
  size: number;
  /** The content plus zero padding: paddedAttachmentSize(size). */
  paddedSize: number;
  /** BLAKE2b-256 of the whole encrypted blob, 32 bytes. */
  digest: string;
  contentType: string;
  filename: string;
  /** Plaintext bytes per chunk: 65536 in version 1. */
  chunkSize: number;
}

/** Bytes of a frame's clear prefix and tag. */
export const FRAME_OVERHEAD = ATTACHMENT_FILE_ID_BYTES + AEAD_TAG_BYTES;
/** Every frame but the last has this length. */
export const FULL_FRAME_BYTES = ATTACHMENT_CHUNK_BYTES + FRAME_OVERHEAD;

/** Every file up to this size (the empty one included) pads to it: small files are the easiest to tell apart by size. */
export const MIN_PADDED_BYTES = 256;

/**
 * The padded size of `size` content bytes: the smallest bucket at or above it, where buckets
 * start at 256 and each is the previous plus floor(previous / 20) (5% apart), and the top bucket
 * is cut to the largest size that fits Twilio's limit (MAX_ATTACHMENT_BYTES), so no file that
 * fits is refused for its padding. Integer arithmetic only, so every implementation finds the
 * same bucket; at most 5% is added above 256 bytes, and the blob's length tells the bucket
 * (about log_1.05 of the size) rather than the size.
 */
export function paddedAttachmentSize(size: number): number {
  let bucket = MIN_PADDED_BYTES;
  while (bucket < size) bucket += Math.floor(bucket / 20);
  return size <= MAX_ATTACHMENT_BYTES ? Math.min(bucket, MAX_ATTACHMENT_BYTES) : bucket;
}

/** Chunks in a file of `paddedSize` bytes. */
export function chunkCount(paddedSize: number): number {
  return Math.ceil(paddedSize / ATTACHMENT_CHUNK_BYTES);
}

/** Plaintext bytes of chunk `index` of `count`. */
export function chunkLength(paddedSize: number, index: number, count: number): number {
  return index < count - 1 ? ATTACHMENT_CHUNK_BYTES : paddedSize - (count - 1) * ATTACHMENT_CHUNK_BYTES;
}

/** The encrypted blob's length for `paddedSize` bytes of padded content. */
export function attachmentBlobSize(paddedSize: number): number {
  return ATTACHMENT_MAGIC.length + paddedSize + chunkCount(paddedSize) * FRAME_OVERHEAD;
}

/** The largest content size whose blob (padded to exactly this size) fits MAX_ATTACHMENT_BLOB_BYTES. */
export const MAX_ATTACHMENT_BYTES = largestFitting();

function largestFitting(): number {
  // The blob grows with the padded size; bisect over [0, limit].
  let lo = 0;
  let hi = MAX_ATTACHMENT_BLOB_BYTES;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (attachmentBlobSize(mid) <= MAX_ATTACHMENT_BLOB_BYTES) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Throws ATTACHMENT_TOO_LARGE when `size` content bytes would not fit Twilio's media limit. */
export function checkAttachmentSize(size: number): void {
  if (size > MAX_ATTACHMENT_BYTES) {
    throw new E2EEError(
      ErrorCode.ATTACHMENT_TOO_LARGE,
      `an attachment of ${size} bytes is over the limit of ${MAX_ATTACHMENT_BYTES} (its encrypted blob must fit ${MAX_ATTACHMENT_BLOB_BYTES} bytes)`,
    );
  }
}

/** The 12-byte nonce of chunk `index`: 11-byte big-endian counter, then 1 on the last chunk. */
export function chunkNonce(index: number, last: boolean): Uint8Array {
  // Counters stay far below 2^32 (150 MB / 64 KiB): bytes 0-6 stay zero. No DataView: it would
  // give this small array a separate buffer on every chunk.
  const nonce = new Uint8Array(12);
  for (let i = 0; i < 4; i++) nonce[10 - i] = (index >>> (8 * i)) & 0xff;
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Associated data of every chunk of the file `fileId`. */
export function chunkAd(fileId: Uint8Array): Uint8Array {
  return concatBytes(ATTACHMENT_LABEL, fileId);
}

const METADATA_MEMBERS = ['v', 'key', 'fileId', 'size', 'paddedSize', 'digest', 'contentType', 'filename', 'chunkSize'] as const;
/** type/subtype with RFC 6838 restricted-name characters. */
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;
/** Control characters and path separators: a name must not steer a naive app's save path. */
const FILENAME_FORBIDDEN = /[\u0000-\u001f\u007f/\\]/;

/** Returns why `contentType` is not acceptable, or null. */
export function contentTypeProblem(contentType: unknown): string | null {
  if (typeof contentType !== 'string' || contentType.length > MAX_ATTACHMENT_CONTENT_TYPE_CHARS || !CONTENT_TYPE.test(contentType)) {
    return `"contentType" expected type/subtype of at most ${MAX_ATTACHMENT_CONTENT_TYPE_CHARS} characters`;
  }
  return null;
}

/** Returns why `filename` is not acceptable, or null. */
export function filenameProblem(filename: unknown): string | null {
  if (typeof filename !== 'string' || filename.length === 0 || filename.length > MAX_ATTACHMENT_FILENAME_CHARS) {
    return `"filename" expected 1..${MAX_ATTACHMENT_FILENAME_CHARS} characters`;
  }
  if (FILENAME_FORBIDDEN.test(filename) || filename === '.' || filename === '..') return '"filename" has a control character or a path separator';
  return null;
}

/** Decoded metadata, as the decrypting side uses it. */
export interface ParsedAttachmentMetadata {
  key: Uint8Array;
  fileId: Uint8Array;
  digest: Uint8Array;
  size: number;
  paddedSize: number;
  metadata: AttachmentMetadata;
}

function invalid(message: string, cause?: unknown): E2EEError {
  return new E2EEError(ErrorCode.ATTACHMENT_METADATA_INVALID, `attachment metadata: ${message}`, { cause });
}

/**
 * Checks metadata received in an envelope and decodes its byte strings. Throws
 * ATTACHMENT_METADATA_INVALID for anything but the one canonical form, ATTACHMENT_TOO_LARGE for
 * a size over the limit.
 */
export function parseAttachmentMetadata(value: unknown): ParsedAttachmentMetadata {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('expected an object');
  const m = value as Record<string, unknown>;
  const extra = Object.keys(m).filter((k) => !(METADATA_MEMBERS as readonly string[]).includes(k));
  if (extra.length > 0) throw invalid(`unknown member "${extra[0]}"`);
  if (m.v !== ATTACHMENT_VERSION) throw invalid(`"v" must be ${ATTACHMENT_VERSION}`);
  if (m.chunkSize !== ATTACHMENT_CHUNK_BYTES) throw invalid(`"chunkSize" must be ${ATTACHMENT_CHUNK_BYTES}`);
  if (!Number.isSafeInteger(m.size) || (m.size as number) < 0) throw invalid('"size" expected a non-negative integer');
  const size = m.size as number;
  checkAttachmentSize(size);
  if (m.paddedSize !== paddedAttachmentSize(size)) throw invalid(`"paddedSize" must be ${paddedAttachmentSize(size)} for size ${size}`);
  const problem = contentTypeProblem(m.contentType) ?? filenameProblem(m.filename);
  if (problem) throw invalid(problem);
  let key: Uint8Array, fileId: Uint8Array, digest: Uint8Array;
  try {
    key = fromB64uExact(m.key as string, KEY_BYTES, 'key');
    fileId = fromB64uExact(m.fileId as string, ATTACHMENT_FILE_ID_BYTES, 'fileId');
    digest = fromB64uExact(m.digest as string, 32, 'digest');
  } catch (err) {
    throw invalid((err as Error).message, err);
  }
  return { key, fileId, digest, size, paddedSize: m.paddedSize as number, metadata: { ...(m as unknown as AttachmentMetadata) } };
}
