/**
 * Decrypting an attachment as a stream (docs/PROTOCOL.md section 16.4): each frame is opened
 * before any of its bytes is handed on, one frame in memory at a time. On a failure, nearby
 * positions are tried (only then, and at most REORDER_WINDOW each way) to name what happened.
 */
import { ATTACHMENT_CHUNK_BYTES, ATTACHMENT_FILE_ID_BYTES, ATTACHMENT_MAGIC } from './constants.js';
import { equalBytes } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { chunkAd, chunkCount, chunkLength, chunkNonce, FRAME_OVERHEAD, FULL_FRAME_BYTES, parseAttachmentMetadata, type ParsedAttachmentMetadata } from './attachment-format.js';
import type { AttachmentSource } from './attachment-seal.js';
import { blake2b256Stream, chachaOpen } from './sodium.js';

/** Positions tried each way around a chunk that does not open where it stands. */
export const REORDER_WINDOW = 4;

/**
 * Reads exact byte counts out of pieces of any size: a view of the piece when it holds them all,
 * else a copy into one array kept for the next straddling read. Either way the bytes returned
 * are valid only until the next read, and a piece is done with before the next one is asked for.
 */
class ByteReader {
  private piece: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private spare: Uint8Array = new Uint8Array(0);
  private readonly iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;

  constructor(source: AttachmentSource) {
    const iterable: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? [source] : source;
    // A sync source is stepped directly: no async wrapper (and its promises) per piece.
    this.iterator = Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
  }

  /** Whether a piece with unread bytes is at hand (pulling pieces as needed). */
  private async more(): Promise<boolean> {
    while (this.offset === this.piece.length) {
      const next = await this.iterator.next();
      if (next.done) return false;
      if (!(next.value instanceof Uint8Array)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'an attachment blob must come as Uint8Array pieces');
      this.piece = next.value;
      this.offset = 0;
    }
    return true;
  }

  /** `length` bytes, or fewer if the source ends first. */
  async read(length: number): Promise<Uint8Array> {
    if (!(await this.more())) return new Uint8Array(0);
    if (this.piece.length - this.offset >= length) {
      this.offset += length;
      return this.piece.subarray(this.offset - length, this.offset);
    }
    if (this.spare.length < length) this.spare = new Uint8Array(length);
    const out = this.spare;
    let filled = 0;
    while (filled < length && (await this.more())) {
      const n = Math.min(length - filled, this.piece.length - this.offset);
      out.set(this.piece.subarray(this.offset, this.offset + n), filled);
      filled += n;
      this.offset += n;
    }
    return out.subarray(0, filled);
  }

  async atEnd(): Promise<boolean> {
    return !(await this.more());
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

function fail(code: ErrorCode, message: string, chunk?: number): E2EEError {
  return new E2EEError(code, message, chunk === undefined ? undefined : { details: { chunk } });
}

/**
 * The verified content of an encrypted attachment, piece by piece (each a new array the reader
 * may keep). `metadata` is the object
 * from the message (checked here: ATTACHMENT_METADATA_INVALID). A failure stops the stream with
 * its code, and no byte of the failing chunk is handed on; the last piece is handed on only after
 * the digest of the whole blob matched, so a stream that ends without an error is the file the
 * sender signed. An app that writes pieces as they come MUST discard them if the stream fails.
 */
export function decryptAttachment(source: AttachmentSource, metadata: unknown): AsyncIterable<Uint8Array> {
  const parsed = parseAttachmentMetadata(metadata);
  return openFrames(new ByteReader(source), parsed);
}

async function* openFrames(reader: ByteReader, m: ParsedAttachmentMetadata): AsyncGenerator<Uint8Array> {
  try {
    const hash = blake2b256Stream();
    const header = await reader.read(ATTACHMENT_MAGIC.length);
    hash.update(header);
    if (header.length < ATTACHMENT_MAGIC.length) throw fail(ErrorCode.ATTACHMENT_TRUNCATED, 'the attachment blob ends inside its header');
    if (!equalBytes(header, ATTACHMENT_MAGIC)) throw fail(ErrorCode.ATTACHMENT_MALFORMED, 'not an attachment blob of version 1 (magic bytes)');

    const count = chunkCount(m.paddedSize);
    const ad = chunkAd(m.fileId);
    const open = (frame: Uint8Array, index: number): Uint8Array | null =>
      chachaOpen(m.key, chunkNonce(index, index === count - 1), frame.subarray(ATTACHMENT_FILE_ID_BYTES), ad);

    /** Why `frame` does not open at `index`: the error to throw. */
    const diagnose = async (frame: Uint8Array, index: number, expected: number): Promise<E2EEError> => {
      if (frame.length === 0) return fail(ErrorCode.ATTACHMENT_TRUNCATED, `the attachment blob ends before chunk ${index} of ${count}`, index);
      if (frame.length >= ATTACHMENT_FILE_ID_BYTES && !equalBytes(frame.subarray(0, ATTACHMENT_FILE_ID_BYTES), m.fileId)) {
        return fail(ErrorCode.ATTACHMENT_CHUNK_FOREIGN, `chunk ${index} belongs to another file`, index);
      }
      for (let other = Math.max(0, index - REORDER_WINDOW); other <= Math.min(count - 1, index + REORDER_WINDOW); other++) {
        if (other === index || open(frame, other) === null) continue;
        if (other < index) return fail(ErrorCode.ATTACHMENT_CHUNK_REORDERED, `chunk ${other} stands at position ${index}`, index);
        // A later chunk here: chunk `index` was dropped, or moved further on.
        for (let ahead = 0; ahead < REORDER_WINDOW; ahead++) {
          const next = await reader.read(FULL_FRAME_BYTES);
          if (next.length === 0) break;
          if (open(next, index) !== null) return fail(ErrorCode.ATTACHMENT_CHUNK_REORDERED, `chunk ${index} comes after chunk ${other}`, index);
        }
        return fail(ErrorCode.ATTACHMENT_CHUNK_MISSING, `chunk ${index} is missing (chunk ${other} stands in its place)`, index);
      }
      if (frame.length < expected) return fail(ErrorCode.ATTACHMENT_TRUNCATED, `the attachment blob ends inside chunk ${index} of ${count}`, index);
      return fail(ErrorCode.ATTACHMENT_CHUNK_TAMPERED, `chunk ${index} does not open: altered, or not this key`, index);
    };

    for (let index = 0; index < count; index++) {
      const expected = FRAME_OVERHEAD + chunkLength(m.paddedSize, index, count);
      const frame = await reader.read(expected);
      hash.update(frame);
      const plaintext = frame.length >= FRAME_OVERHEAD && equalBytes(frame.subarray(0, ATTACHMENT_FILE_ID_BYTES), m.fileId) ? open(frame, index) : null;
      if (plaintext === null || frame.length !== expected) throw await diagnose(frame, index, expected);
      // Content first, then zero padding (only in the last chunks).
      const content = Math.max(0, Math.min(plaintext.length, m.size - index * ATTACHMENT_CHUNK_BYTES));
      for (let i = content; i < plaintext.length; i++) {
        if (plaintext[i] !== 0) throw fail(ErrorCode.ATTACHMENT_PADDING_INVALID, `non-zero padding in chunk ${index}`, index);
      }
      if (index === count - 1) {
        if (!(await reader.atEnd())) throw fail(ErrorCode.ATTACHMENT_EXTENDED, `bytes follow the last chunk (${count})`);
        if (!equalBytes(hash.digest(), m.digest)) throw fail(ErrorCode.ATTACHMENT_DIGEST_MISMATCH, 'the blob is not the one the sender signed (digest)');
      }
      if (content > 0) yield plaintext.subarray(0, content);
    }
  } finally {
    await reader.close();
  }
}
