/**
 * Encrypting an attachment as a stream (docs/PROTOCOL.md section 16.3): one 64 KiB buffer, whatever
 * the file's size; the digest is known once the last frame is out.
 */
import { ATTACHMENT_CHUNK_BYTES, ATTACHMENT_FILE_ID_BYTES, ATTACHMENT_MAGIC, ATTACHMENT_VERSION, KEY_BYTES } from './constants.js';
import { checkBytes, toB64u } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import {
  attachmentBlobSize,
  checkAttachmentSize,
  chunkAd,
  chunkNonce,
  contentTypeProblem,
  filenameProblem,
  FRAME_OVERHEAD,
  paddedAttachmentSize,
  type AttachmentMetadata,
} from './attachment-format.js';
import { blake2b256Stream, chachaSeal, randomBytes } from './sodium.js';

/**
 * Content in pieces of any size (a fetch body, a file reader, a generator), or in one piece. Each
 * piece is done with before the next is asked for, so a reader may fill one array again and again.
 */
export type AttachmentSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array;

export interface EncryptAttachmentOptions {
  /** The real content type, e.g. "image/png": it travels encrypted, never to Twilio. */
  contentType: string;
  /** The real file name (no path): it travels encrypted. */
  filename: string;
  /**
   * The content's length in bytes, when known (always, for a Uint8Array): an oversized file is
   * refused before any byte is read, and `blobSize` is known up front. Without it, the limit is
   * enforced as the bytes arrive.
   */
  size?: number;
}

export interface EncryptedAttachment {
  /** The encrypted blob, piece by piece, each a new array the reader may keep (read it once, to the end, e.g. into an upload). */
  chunks: AsyncIterable<Uint8Array>;
  /** Resolves once `chunks` has been read to the end (the digest covers the whole blob); rejects if it fails or is abandoned. */
  metadata: Promise<AttachmentMetadata>;
  /** The blob's length in bytes, when the content's size is known. */
  blobSize: number | undefined;
}

/**
 * Encrypts one file under a fresh key: fixed 64 KiB chunks, each sealed with its position and a
 * last-chunk mark, the length padded to a 5% bucket. Holds one chunk in memory at a time.
 * Throws INVALID_ARGUMENT for a bad content type, filename or size, ATTACHMENT_TOO_LARGE (before
 * reading anything) when the size is known to be over the limit; while streaming, the same codes
 * when the content turns out larger than said or than the limit.
 * @example
 *   const { chunks, metadata } = encryptAttachment(bytes, { contentType: 'image/png', filename: 'cat.png' });
 *   await upload(chunks); // then put await metadata in the message
 */
export function encryptAttachment(source: AttachmentSource, options: EncryptAttachmentOptions): EncryptedAttachment {
  return encryptAttachmentWith(source, options, randomBytes(KEY_BYTES), randomBytes(ATTACHMENT_FILE_ID_BYTES));
}

/**
 * encryptAttachment with a given key and file id: for test vectors only (shared/testing.ts). A
 * key used twice leaks the XOR of two files' contents.
 */
export function encryptAttachmentWith(source: AttachmentSource, options: EncryptAttachmentOptions, key: Uint8Array, fileId: Uint8Array): EncryptedAttachment {
  checkBytes(key, KEY_BYTES, 'key');
  checkBytes(fileId, ATTACHMENT_FILE_ID_BYTES, 'fileId');
  const problem = contentTypeProblem(options?.contentType) ?? filenameProblem(options?.filename);
  if (problem) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, problem);
  const size = source instanceof Uint8Array ? source.length : options.size;
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size < 0) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"size" expected a non-negative integer');
    if (source instanceof Uint8Array && options.size !== undefined && options.size !== size) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `"size" is ${options.size} but the content has ${size} bytes`);
    }
    checkAttachmentSize(size);
  }
  let settle!: { resolve: (m: AttachmentMetadata) => void; reject: (err: unknown) => void };
  const metadata = new Promise<AttachmentMetadata>((resolve, reject) => (settle = { resolve, reject }));
  metadata.catch(() => {}); // the error also reaches whoever reads `chunks`: not unhandled
  const chunks = sealFrames(source, { ...options, size }, key, fileId, settle);
  return { chunks, metadata, blobSize: size === undefined ? undefined : attachmentBlobSize(paddedAttachmentSize(size)) };
}

async function* sealFrames(
  source: AttachmentSource,
  options: EncryptAttachmentOptions,
  key: Uint8Array,
  fileId: Uint8Array,
  settle: { resolve: (m: AttachmentMetadata) => void; reject: (err: unknown) => void },
): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    const ad = chunkAd(fileId);
    const hash = blake2b256Stream();
    let index = 0;
    // Every frame is a new array, sealed in place: the reader may keep it (an upload queue does).
    const seal = (plaintext: Uint8Array, last: boolean): Uint8Array => {
      const frame = new Uint8Array(FRAME_OVERHEAD + plaintext.length);
      frame.set(fileId);
      chachaSeal(key, chunkNonce(index++, last), plaintext, ad, frame.subarray(ATTACHMENT_FILE_ID_BYTES));
      hash.update(frame);
      return frame;
    };
    const magic = ATTACHMENT_MAGIC.slice();
    hash.update(magic);
    yield magic;

    // A full chunk is sealed once it is known not to be the last: more bytes follow, or the size
    // given says so. Chunks lying whole in a piece are sealed where they lie; only the bytes of
    // chunks that straddle pieces (or may be the last) are copied into `buffer`.
    const paddedKnown = options.size === undefined ? 0 : paddedAttachmentSize(options.size);
    const notLast = (rest: number) => rest > ATTACHMENT_CHUNK_BYTES || (index + 1) * ATTACHMENT_CHUNK_BYTES < paddedKnown;
    const buffer = new Uint8Array(ATTACHMENT_CHUNK_BYTES);
    let filled = 0;
    let size = 0;
    for await (const piece of source instanceof Uint8Array ? [source] : source) {
      if (!(piece instanceof Uint8Array)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'attachment content must come as Uint8Array pieces');
      size += piece.length;
      if (options.size !== undefined && size > options.size) {
        throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the content has more than the ${options.size} bytes "size" said`);
      }
      checkAttachmentSize(size);
      for (let offset = 0; offset < piece.length; ) {
        if (filled === buffer.length) {
          yield seal(buffer, false);
          filled = 0;
        }
        const rest = piece.length - offset;
        if (filled === 0 && rest >= buffer.length && notLast(rest)) {
          yield seal(piece.subarray(offset, offset + buffer.length), false);
          offset += buffer.length;
          continue;
        }
        const n = Math.min(buffer.length - filled, rest);
        buffer.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
      }
    }
    if (options.size !== undefined && size !== options.size) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the content has ${size} bytes, "size" said ${options.size}`);
    }
    // Zero padding up to the bucket, then the last chunk.
    const paddedSize = paddedAttachmentSize(size);
    for (let remaining = paddedSize - size; ; ) {
      const n = Math.min(buffer.length - filled, remaining);
      buffer.fill(0, filled, filled + n);
      filled += n;
      remaining -= n;
      if (remaining === 0) break;
      yield seal(buffer, false);
      filled = 0;
    }
    yield seal(buffer.subarray(0, filled), true);
    finished = true;
    settle.resolve({
      v: ATTACHMENT_VERSION,
      key: toB64u(key),
      fileId: toB64u(fileId),
      size,
      paddedSize,
      digest: toB64u(hash.digest()),
      contentType: options.contentType,
      filename: options.filename,
      chunkSize: ATTACHMENT_CHUNK_BYTES,
    });
  } catch (err) {
    settle.reject(err);
    throw err;
  } finally {
    if (!finished) settle.reject(new E2EEError(ErrorCode.INVALID_ARGUMENT, 'the encrypted attachment was not read to its end: it has no metadata'));
  }
}

