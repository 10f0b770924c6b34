/**
 * Encrypted attachments (docs/PROTOCOL.md section 16): a file is encrypted as a stream of 64 KiB
 * chunks under a fresh key; the key, the real name, type and size and the blob's digest travel in
 * the message's signed envelope (AttachmentMetadata), the blob goes to Twilio's media store.
 * Works on async iterables of Uint8Array (constant memory); the Web Streams functions are thin
 * adapters for fetch bodies and File.stream().
 */
import type { AttachmentMetadata } from './attachment-format.js';
import { decryptAttachment } from './attachment-open.js';
import { encryptAttachment, type EncryptAttachmentOptions } from './attachment-seal.js';
import { iterableToReadable, readableToIterable } from './attachment-streams.js';

export {
  attachmentBlobSize,
  MAX_ATTACHMENT_BYTES,
  paddedAttachmentSize,
  parseAttachmentMetadata,
  type AttachmentMetadata,
  type ParsedAttachmentMetadata,
} from './attachment-format.js';
export { decryptAttachment } from './attachment-open.js';
export { encryptAttachment, type AttachmentSource, type EncryptAttachmentOptions, type EncryptedAttachment } from './attachment-seal.js';
export { iterableToReadable, readableToIterable } from './attachment-streams.js';

/** encryptAttachment from and to Web Streams: `stream` is the blob to upload. */
export function encryptAttachmentStream(
  input: ReadableStream<Uint8Array>,
  options: EncryptAttachmentOptions,
): { stream: ReadableStream<Uint8Array>; metadata: Promise<AttachmentMetadata>; blobSize: number | undefined } {
  const { chunks, metadata, blobSize } = encryptAttachment(readableToIterable(input), options);
  return { stream: iterableToReadable(chunks), metadata, blobSize };
}

/** decryptAttachment from and to Web Streams: the stream errors with the E2EEError that stopped it. */
export function decryptAttachmentStream(input: ReadableStream<Uint8Array>, metadata: unknown): ReadableStream<Uint8Array> {
  return iterableToReadable(decryptAttachment(readableToIterable(input), metadata));
}
