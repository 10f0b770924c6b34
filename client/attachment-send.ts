/**
 * Sending files end-to-end encrypted (docs/PROTOCOL.md section 16.7): each file is encrypted on
 * this device into an opaque blob, uploaded as the message's media under a neutral name, and its
 * key, real name, type, size and digest travel in the message's signed envelope. Every refusal
 * (bad input, too large, too many, no recipient, an envelope that cannot fit) comes before any
 * byte is uploaded.
 */
import { encryptAttachment, type AttachmentSource } from '../shared/attachment-seal.js';
import { readableToIterable } from '../shared/attachment-streams.js';
import { checkAttachmentSize, contentTypeProblem, filenameProblem, paddedAttachmentSize, MAX_ATTACHMENT_BYTES, type AttachmentMetadata } from '../shared/attachment-format.js';
import { ATTACHMENT_CHUNK_BYTES, ATTACHMENT_VERSION } from '../shared/constants.js';
import { toB64u, utf8 } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { DEFAULT_ATTACHMENTS_PER_MESSAGE } from '../shared/limits.js';
import { payloadAttachments, type AttachmentPreview } from '../shared/payload.js';
import { blobFilename } from './attachment.js';
import type { JSONValue } from './conversations.js';
import type { ConversationWrapper } from './wrapped-conversation.js';

/** The `attachmentProgress` event of the E2EE client: one file of a message being sent. */
export interface AttachmentProgress {
  conversationSid: string;
  /** The real file name (Twilio sees only the neutral one). */
  filename: string;
  /** The value the app passed as `media`. */
  media: unknown;
  /** 'encrypting': content bytes read; 'uploading': blob bytes sent (relay only; the SDK reports none); 'sent': the message is stored. */
  phase: 'encrypting' | 'uploading' | 'sent';
  loaded: number;
  /** The file's size (encrypting: `loaded` itself while a stream's size is unknown) or the blob's size. */
  total: number;
}

/** One file as the app gave it (the SDK's SendMediaOptions), checked. */
interface OutgoingFile {
  contentType: string;
  filename: string;
  /** Known up front for bytes and Blobs; learned while reading for streams. */
  size: number | undefined;
  /** The Blob the app gave, for a preview. */
  blob: Blob | undefined;
  open(): AttachmentSource;
  media: unknown;
}

/** The part of the SDK's MessageBuilder the send uses (the relay client's has it too). */
interface MediaBuilder {
  setBody(text: string): MediaBuilder;
  setAttributes(attributes: JSONValue): MediaBuilder;
  addMedia(options: { contentType: string; filename: string; media: UploadBody }): MediaBuilder;
  build(): { send(): Promise<number | null> };
}

/**
 * An encrypted blob as the SDK uploads it: a Blob with the browser's XMLHttpRequest; in Node a
 * Buffer, since the SDK's fallback there (the `xmlhttprequest` package) sends only strings and
 * Buffers (a Blob throws a TypeError). The relay client takes both.
 */
type UploadBody = Blob | Uint8Array;

function uploadBody(parts: Uint8Array[]): { body: UploadBody; size: number } {
  const NodeBuffer = typeof XMLHttpRequest === 'undefined' ? (globalThis as { Buffer?: { concat(parts: Uint8Array[]): Uint8Array } }).Buffer : undefined;
  if (NodeBuffer) {
    const body = NodeBuffer.concat(parts);
    return { body, size: body.length };
  }
  const body = new Blob(parts as BlobPart[], { type: 'application/octet-stream' });
  return { body, size: body.size };
}

/** Emit 'encrypting' progress every this many bytes (and at the end). */
const PROGRESS_STEP = 1 << 20;

function invalid(message: string): E2EEError {
  return new E2EEError(ErrorCode.INVALID_ARGUMENT, `refused, nothing was sent: ${message}`);
}

const isBlob = (v: object): v is Blob => (typeof Blob !== 'undefined' && v instanceof Blob) || (typeof (v as Blob).size === 'number' && typeof (v as Blob).stream === 'function');
const isStream = (v: object): v is ReadableStream<Uint8Array> => typeof (v as ReadableStream).getReader === 'function';
const isAsyncIterable = (v: object): v is AsyncIterable<Uint8Array> => typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';

/** Checks one SendMediaOptions: media a Blob/File, ArrayBuffer, typed array (Buffer), string, ReadableStream or async iterable (Node Readable). */
export function outgoingFile(options: unknown): OutgoingFile {
  if (typeof FormData !== 'undefined' && options instanceof FormData) {
    throw new E2EEError(ErrorCode.UNSUPPORTED_CONTENT, 'refused, nothing was sent: FormData cannot be encrypted; pass {contentType, filename, media}');
  }
  if (typeof options !== 'object' || options === null || !('media' in options)) throw invalid('a file is {contentType, filename, media}');
  const { media, contentType, filename } = options as { media: unknown; contentType?: unknown; filename?: unknown };
  if (typeof media !== 'string' && (typeof media !== 'object' || media === null)) throw invalid('"media" expected a Blob, bytes, a string or a stream');
  let bytes: Uint8Array | undefined;
  let open: () => AttachmentSource;
  let size: number | undefined;
  let blob: Blob | undefined;
  if (typeof media === 'string') bytes = utf8(media);
  else if (media instanceof ArrayBuffer) bytes = new Uint8Array(media);
  else if (ArrayBuffer.isView(media)) bytes = new Uint8Array(media.buffer, media.byteOffset, media.byteLength);
  if (bytes) {
    const content = bytes;
    [size, open] = [content.length, () => content];
  } else if (isBlob(media as object)) {
    blob = media as Blob;
    [size, open] = [blob.size, () => readableToIterable(blob!.stream() as ReadableStream<Uint8Array>)];
  } else if (isStream(media as object)) {
    open = () => readableToIterable(media as ReadableStream<Uint8Array>);
  } else if (isAsyncIterable(media as object)) {
    open = () => media as AsyncIterable<Uint8Array>;
  } else {
    throw invalid('"media" expected a Blob, bytes, a string or a stream');
  }
  const type = contentType ?? (blob?.type || 'application/octet-stream');
  const name = filename ?? ((blob as File | undefined)?.name || 'attachment');
  const problem = contentTypeProblem(type) ?? filenameProblem(name);
  if (problem) throw invalid(problem);
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size < 0) throw invalid('"media" has no valid size');
    checkAttachmentSize(size);
  }
  return { contentType: type as string, filename: name as string, size, blob, open, media };
}

/** The conversation's media count limit (the SDK's ConversationLimits), or Twilio's 10. */
function countLimit(raw: unknown): number {
  const limit = (raw as { limits?: { mediaAttachmentsCountLimit?: unknown } }).limits?.mediaAttachmentsCountLimit;
  return typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0 ? limit : DEFAULT_ATTACHMENTS_PER_MESSAGE;
}

/**
 * Metadata as long as the real one can be (the size given, or the largest), for sealing before
 * anything is encrypted: it decides which previews fit and whether the message fits at all.
 */
function placeholder(file: OutgoingFile, index: number): AttachmentMetadata {
  const size = file.size ?? MAX_ATTACHMENT_BYTES;
  const id = new Uint8Array(16);
  id[0] = index;
  const zeros = toB64u(new Uint8Array(32));
  return { v: ATTACHMENT_VERSION, key: zeros, fileId: toB64u(id), size, paddedSize: paddedAttachmentSize(size), digest: zeros, contentType: file.contentType, filename: file.filename, chunkSize: ATTACHMENT_CHUNK_BYTES };
}

/** Encrypts one file into the blob to upload, reporting content bytes read. */
async function encryptToBlob(file: OutgoingFile, progress: (loaded: number, total: number) => void): Promise<{ metadata: AttachmentMetadata; blob: { body: UploadBody; size: number } }> {
  let loaded = 0;
  let reported = 0;
  async function* counted(): AsyncGenerator<Uint8Array> {
    const source = file.open();
    for await (const piece of source instanceof Uint8Array ? [source] : source) {
      loaded += (piece as Uint8Array).length ?? 0;
      if (loaded - reported >= PROGRESS_STEP) progress((reported = loaded), file.size ?? loaded);
      yield piece;
    }
  }
  const { chunks, metadata } = encryptAttachment(counted(), { contentType: file.contentType, filename: file.filename, ...(file.size !== undefined && { size: file.size }) });
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  progress(loaded, loaded);
  return { metadata: await metadata, blob: uploadBody(parts) };
}

/**
 * Sends `body`, `attributes` and files as one message: checks every file, makes previews, seals
 * once to learn that the message fits (recipients, attributes, envelope size), then encrypts each
 * file, seals the real metadata, and sends through the SDK's builder with the blobs as media.
 */
export async function sendWithFiles(conversation: ConversationWrapper, body: string, attributes: JSONValue | undefined, media: readonly unknown[]): Promise<number> {
  const files = media.map(outgoingFile);
  const raw = conversation.raw;
  const limit = countLimit(raw);
  if (files.length > limit) {
    throw new E2EEError(ErrorCode.TOO_MANY_ATTACHMENTS, `${files.length} files in one message; the limit is ${limit}; nothing was sent`);
  }
  if (typeof raw.prepareMessage !== 'function') throw new E2EEError(ErrorCode.UNSUPPORTED_CONTENT, 'refused, nothing was sent: this conversations client has no message builder for media');
  const { crypto, hooks } = await conversation.owner.engine;
  const previews: Array<AttachmentPreview | undefined> = await Promise.all(
    files.map((f) => (f.blob && f.contentType.startsWith('image/') ? hooks.attachmentPreview(f.blob).catch(() => undefined) : undefined)),
  );
  const trial = await crypto.seal(raw, body, { attributes, attachments: files.map((f, i) => ({ file: placeholder(f, i), ...(previews[i] && { preview: previews[i] }) })) });
  const kept = payloadAttachments(trial.payload).map((a) => a.preview);

  const progress = (file: OutgoingFile, phase: AttachmentProgress['phase'], loaded: number, total: number) =>
    hooks.attachmentProgress({ conversationSid: raw.sid, filename: file.filename, media: file.media, phase, loaded, total });
  const encrypted: Array<Awaited<ReturnType<typeof encryptToBlob>>> = [];
  for (const file of files) encrypted.push(await encryptToBlob(file, (loaded, total) => progress(file, 'encrypting', loaded, total)));
  const sealed = await crypto.seal(raw, body, { attributes, attachments: encrypted.map((e, i) => ({ file: e.metadata, ...(kept[i] && { preview: kept[i] }) })) });

  let builder = (raw.prepareMessage() as MediaBuilder).setBody(sealed.text).setAttributes(JSON.parse(sealed.payload.clearAttributes ?? '{}') as JSONValue);
  const names = encrypted.map((e) => blobFilename(e.metadata));
  for (const [i, e] of encrypted.entries()) builder = builder.addMedia({ contentType: 'application/octet-stream', filename: names[i]!, media: e.blob.body });
  names.forEach((name, i) => conversation.owner.uploads.set(name, (loaded, total) => progress(files[i]!, 'uploading', loaded, total)));
  let index: number | null;
  try {
    index = await builder.build().send();
  } finally {
    for (const name of names) conversation.owner.uploads.delete(name);
  }
  encrypted.forEach((e, i) => progress(files[i]!, 'sent', e.blob.size, e.blob.size));
  if (typeof index === 'number') hooks.afterSend(raw, sealed, index);
  return index as number;
}
