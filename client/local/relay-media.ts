/**
 * Media on the local relay, as the SDK has them: LocalMedia (the SDK's Media), the uploads of
 * `sendMessage(SendMediaOptions)` and `addMedia` (POST <relay URL as http(s)>/media, with the
 * relay token, one blob per request), and the checks the SDK makes before sending. Upload
 * progress is reported as bytes go out: XMLHttpRequest's upload progress in browsers, bytes handed
 * to fetch in Node.
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { RELAY_LIMITS, type RelayMediaData } from '../../shared/relay-protocol.js';
import { cancellable } from './relay-unsupported.js';

/** The SDK's SendMediaOptions; `media` may also be a Uint8Array or an ArrayBuffer. */
export interface LocalSendMediaOptions {
  contentType: string | null;
  filename?: string;
  media: string | Blob | Uint8Array | ArrayBuffer | null;
}

/** What an app passes as media: SendMediaOptions, or a FormData holding a file (as the SDK takes). */
export type LocalMediaInput = LocalSendMediaOptions | FormData;

/** The extra event of the relay client: upload progress (the SDK has none). */
export interface MediaUploadProgress {
  filename: string;
  loaded: number;
  total: number;
}

/** A blob attached to a relay message, as the SDK's Media. */
export class LocalMedia {
  readonly sid: string;
  readonly category = 'media' as const;
  readonly filename: string | null;
  readonly contentType: string;
  readonly size: number;

  constructor(
    data: RelayMediaData,
    private readonly urls: (sids: string[]) => Promise<Map<string, string>>,
  ) {
    this.sid = data.sid;
    this.filename = data.filename;
    this.contentType = data.contentType;
    this.size = data.size;
  }

  /** A URL to fetch the blob from (no headers needed), valid for 5 minutes; a new one each call. */
  getContentTemporaryUrl(): Promise<string | null> & { cancel(): void } {
    return cancellable(this.urls([this.sid]).then((urls) => urls.get(this.sid) ?? null));
  }
}

/** One blob ready to upload. */
interface Upload {
  blob: Blob;
  contentType: string;
  filename: string | null;
}

const OCTET_STREAM = 'application/octet-stream';

/** The blob of one media input; INVALID_ARGUMENT when there is none. */
function toUpload(input: LocalMediaInput): Upload {
  if (typeof FormData !== 'undefined' && input instanceof FormData) {
    for (const [, value] of input) {
      if (typeof value === 'string') continue;
      return { blob: value, contentType: value.type || OCTET_STREAM, filename: (value as File).name || null };
    }
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'the FormData holds no file');
  }
  const { contentType, filename, media } = input as LocalSendMediaOptions;
  if (media === null || media === undefined) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'media content is required');
  const blob = media instanceof Blob ? media : new Blob([media as BlobPart]);
  return { blob, contentType: contentType || OCTET_STREAM, filename: filename ?? null };
}

/**
 * The uploads of one message, checked as the SDK checks them before anything is sent:
 * TOO_MANY_ATTACHMENTS past the count limit, ATTACHMENT_TOO_LARGE for a blob past the size limit.
 */
export function prepareUploads(inputs: readonly LocalMediaInput[]): Upload[] {
  if (inputs.length > RELAY_LIMITS.mediaPerMessage) {
    throw new E2EEError(ErrorCode.TOO_MANY_ATTACHMENTS, `a message has at most ${RELAY_LIMITS.mediaPerMessage} media (got ${inputs.length})`);
  }
  const uploads = inputs.map(toUpload);
  const large = uploads.find((u) => u.blob.size > RELAY_LIMITS.mediaBytes);
  if (large) throw new E2EEError(ErrorCode.ATTACHMENT_TOO_LARGE, `a media blob has at most ${RELAY_LIMITS.mediaBytes} bytes (${large.filename ?? 'one'} has ${large.blob.size})`);
  return uploads;
}

export interface UploadTarget {
  /** POST URL: the relay URL as http(s), then /media. */
  url: string;
  token: string;
  conversationSid: string;
  onProgress(progress: MediaUploadProgress): void;
}

/** Uploads one blob; resolves with the stored media. The relay's error code reaches the caller unchanged. */
export async function upload(target: UploadTarget, item: Upload): Promise<RelayMediaData> {
  const query = new URLSearchParams({ conversationSid: target.conversationSid });
  if (item.filename !== null) query.set('filename', item.filename);
  const url = `${target.url}?${query}`;
  const headers = { authorization: `Bearer ${target.token}`, 'content-type': item.contentType };
  const progress = (loaded: number) => target.onProgress({ filename: item.filename ?? '', loaded, total: item.blob.size });
  const { status, text } = typeof XMLHttpRequest === 'function' ? await viaXhr(url, headers, item.blob, progress) : await viaFetch(url, headers, item.blob, progress);
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = null;
  }
  if (status === 201) return answer as RelayMediaData;
  const error = (answer as { error?: { code?: string; message?: string } } | null)?.error;
  if (error?.code) throw new E2EEError(error.code as ErrorCode, error.message ?? 'upload refused');
  throw new E2EEError(ErrorCode.SERVER_ERROR, `the relay answered ${status} to an upload`, { details: { status } });
}

type Answer = { status: number; text: string };

function viaXhr(url: string, headers: Record<string, string>, blob: Blob, progress: (loaded: number) => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => progress(event.loaded);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new E2EEError(ErrorCode.NETWORK_ERROR, 'the upload to the relay failed'));
    xhr.send(blob);
  });
}

async function viaFetch(url: string, headers: Record<string, string>, blob: Blob, progress: (loaded: number) => void): Promise<Answer> {
  const reader = blob.stream().getReader();
  let loaded = 0;
  // Pulled as the connection takes bytes: `loaded` is what went out (give or take a socket buffer).
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      loaded += value.byteLength;
      progress(loaded);
      controller.enqueue(value);
    },
  });
  let response: Response;
  try {
    const init = { method: 'POST', headers: { ...headers, 'content-length': String(blob.size) }, body, duplex: 'half' };
    response = await fetch(url, init as RequestInit);
  } catch {
    throw new E2EEError(ErrorCode.NETWORK_ERROR, 'the upload to the relay failed');
  }
  return { status: response.status, text: await response.text() };
}

/** The sids of a list of media (the SDK's Media, or their sids); INVALID_ARGUMENT for anything else. */
export function mediaSidsOf(media: unknown): string[] {
  if (!Array.isArray(media)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'expected an array of media or media sids');
  return media.map((m: unknown) => {
    const sid = typeof m === 'string' ? m : (m as { sid?: unknown } | null)?.sid;
    if (typeof sid !== 'string') throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'expected an array of media or media sids');
    return sid;
  });
}
