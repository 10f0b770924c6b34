/**
 * Received attachments (docs/PROTOCOL.md section 16.7): each file a verified message signed, with
 * its real name, type and size, matched to the message's opaque media blob by its neutral name,
 * and downloaded, verified and decrypted as a stream that hands on only verified bytes.
 */
import type { Media } from '@twilio/conversations';
import type { AttachmentMetadata } from '../shared/attachment-format.js';
import { iterableToReadable, readableToIterable } from '../shared/attachment-streams.js';
import { fromB64u, toHex } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { AttachmentPreview, PayloadAttachment } from '../shared/payload.js';
import type { BaseMessage } from './conversations.js';

export type { AttachmentPreview } from '../shared/payload.js';

/** Options of E2EEAttachment.stream() and blob(). */
export interface AttachmentReadOptions {
  /** Verified content bytes handed on so far, of `total` (the signed size). */
  onProgress?(loaded: number, total: number): void;
  /** Stops the download; the stream errors with the signal's reason. */
  signal?: AbortSignal;
}

/** One file of a verified message (`e2eeInfo(message).attachments`). */
export interface E2EEAttachment {
  /** The real name, type and size, as the sender signed them (never what Twilio holds). */
  readonly filename: string;
  readonly contentType: string;
  readonly size: number;
  /** The sender's thumbnail (images), shown before downloading; unverified by nothing: it is signed. */
  readonly preview?: AttachmentPreview;
  /** Twilio's media holding the encrypted blob (application/octet-stream, `<fileId hex>.bin`); null when the message has none, or several, of that name. */
  readonly media: Media | null;
  /**
   * Downloads, verifies and decrypts the file. Only verified bytes come out; a blob that is not
   * the one the sender signed errors the stream with its E2EEError (ATTACHMENT_*), and anything
   * already read from it must be discarded.
   */
  stream(options?: AttachmentReadOptions): ReadableStream<Uint8Array>;
  /** The whole verified file, typed with its real content type. */
  blob(options?: AttachmentReadOptions): Promise<Blob>;
}

/** The name a file's blob has on Twilio: its file id (in the clear in every frame already) in hex. */
export function blobFilename(file: AttachmentMetadata): string {
  return `${toHex(fromB64u(file.fileId))}.bin`;
}

/** The attachments of a verified message, matched to its media. */
export function receivedAttachments(raw: BaseMessage, files: readonly PayloadAttachment[]): E2EEAttachment[] {
  if (files.length === 0) return [];
  const media = ((raw as { attachedMedia?: Media[] | null }).attachedMedia ?? []).filter((m) => m && typeof m === 'object');
  return files.map(({ file, preview }) => {
    const name = blobFilename(file);
    const named = media.filter((m) => m.filename === name);
    const blob = named.length === 1 ? named[0]! : null;
    const problem =
      named.length === 1 ? null : `the message has ${named.length === 0 ? 'no' : named.length} media named ${name} for "${file.filename}"; exactly one expected`;
    const stream = (options: AttachmentReadOptions = {}) => iterableToReadable(download(blob, problem, file, options));
    return Object.freeze({
      filename: file.filename,
      contentType: file.contentType,
      size: file.size,
      ...(preview && { preview }),
      media: blob,
      stream,
      async blob(options?: AttachmentReadOptions): Promise<Blob> {
        const parts: Uint8Array[] = [];
        for await (const piece of readableToIterable(stream(options))) parts.push(piece);
        return new Blob(parts as BlobPart[], { type: file.contentType });
      },
    });
  });
}

function unavailable(message: string, options?: { cause?: unknown; status?: number }): E2EEError {
  return new E2EEError(ErrorCode.ATTACHMENT_UNAVAILABLE, message, {
    cause: options?.cause,
    ...(options?.status !== undefined && { details: { status: options.status } }),
  });
}

async function* download(media: Media | null, problem: string | null, file: AttachmentMetadata, options: AttachmentReadOptions): AsyncGenerator<Uint8Array> {
  const { signal, onProgress } = options;
  if (!media) throw new E2EEError(ErrorCode.ATTACHMENT_MEDIA_MISMATCH, problem!);
  signal?.throwIfAborted();
  let url: string | null;
  try {
    url = await media.getContentTemporaryUrl();
  } catch (cause) {
    throw unavailable(`no download URL for "${file.filename}"`, { cause });
  }
  if (!url) throw unavailable(`the media service gave no download URL for "${file.filename}"`);
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    throw unavailable(`"${file.filename}" could not be downloaded`, { cause });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw unavailable(`the media service answered ${response.status} for "${file.filename}"`, { status: response.status });
  }
  let loaded = 0;
  const { decryptAttachment } = await import('./on-demand.js');
  for await (const piece of decryptAttachment(readableToIterable(response.body), file)) {
    loaded += piece.length;
    onProgress?.(loaded, file.size);
    yield piece;
  }
}
