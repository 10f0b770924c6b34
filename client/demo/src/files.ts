/**
 * Files in the demo: each upload's and download's progress (a Transfer, which the views draw in
 * place, so a progress event never redraws the timeline), and the files this session downloaded,
 * verified and decrypted, kept as object URLs for <img> and for saving.
 */
import type { Message } from '@twilio/conversations';
import { e2eeInfo, ErrorCode, isE2EEError, MAX_ATTACHMENT_BYTES, type E2EEAttachment } from '../../index.js';
import { describeError, type Described } from './errors.js';
import { formatSize, plural } from './format.js';

/** Images up to this size are downloaded, verified and shown at once; larger ones when asked. */
export const AUTO_IMAGE_BYTES = 5_000_000;

export type Phase = 'waiting' | 'encrypting' | 'uploading' | 'sent' | 'downloading' | 'done' | 'failed';

/** One file on its way: encrypting and uploading it, or downloading, verifying and decrypting it. */
export class Transfer {
  loaded = 0;
  error: Described | null = null;
  private readonly watchers = new Set<() => void>();

  constructor(
    public phase: Phase,
    public total: number,
  ) {}

  set(phase: Phase, loaded = this.loaded, total = this.total): void {
    Object.assign(this, { phase, loaded, total });
    if (phase !== 'failed') this.error = null;
    for (const watcher of this.watchers) watcher();
  }

  fail(error: Described): void {
    this.set('failed');
    this.error = error;
    for (const watcher of this.watchers) watcher();
  }

  /** 0 to 1; encrypting and uploading each fill the bar once. */
  get fraction(): number {
    return this.total > 0 ? Math.min(this.loaded / this.total, 1) : this.phase === 'sent' || this.phase === 'done' ? 1 : 0;
  }

  watch(watcher: () => void): void {
    this.watchers.add(watcher);
  }
}

/** A file of a message being sent, with its progress. */
export interface Upload {
  file: File;
  transfer: Transfer;
}

/** The files of a received message, as the wrapper opened them from its signed envelope (empty when none). */
export function attachmentsOf(message: Message): readonly E2EEAttachment[] {
  return e2eeInfo(message).attachments ?? [];
}

/** "Files: photo.png, notes.pdf": a message of files only, in the conversation list. */
export function filesSummary(message: Message): string {
  const names = attachmentsOf(message).map((a) => a.filename);
  return names.length ? `${names.length === 1 ? 'File' : 'Files'}: ${names.join(', ')}` : '';
}

export function isImage(attachment: { contentType: string }): boolean {
  return /^image\/(png|jpeg|gif|webp|avif|bmp)$/i.test(attachment.contentType);
}

/** A downloaded file of a message, or one being downloaded. */
export interface Fetched {
  readonly key: string;
  attachment: E2EEAttachment;
  readonly transfer: Transfer;
  /** The download under way. */
  running?: Promise<void>;
  /** The verified, decrypted file, once downloaded. */
  url?: string;
  /** The envelope's preview image, if it carried one. */
  previewUrl?: string;
}

/** What this session downloaded, by message and position; object URLs are freed on sign-out. */
export class FileCache {
  private readonly entries = new Map<string, Fetched>();

  entry(message: Message, i: number): Fetched {
    const attachment = attachmentsOf(message)[i]!;
    const key = `${message.sid}:${i}`;
    let entry = this.entries.get(key);
    // A message opened again (an update, a page loaded again) lists the same files anew.
    if (entry && sameFile(entry.attachment, attachment)) entry.attachment = attachment;
    else {
      this.free(entry);
      const { preview } = attachment;
      entry = { key, attachment, transfer: new Transfer('waiting', attachment.size) };
      if (preview) entry.previewUrl = URL.createObjectURL(new Blob([preview.bytes as BlobPart], { type: preview.contentType }));
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Downloads, verifies and decrypts the file once; a failure stays on the entry until retried. */
  fetch(entry: Fetched): Promise<void> {
    if (entry.url) return Promise.resolve();
    if (!entry.running) {
      entry.transfer.set('downloading', 0, entry.attachment.size);
      entry.running = entry.attachment
        .blob({ onProgress: (loaded, total) => entry.transfer.set('downloading', loaded, total) })
        .then(
          (blob) => {
            entry.url = URL.createObjectURL(blob);
            entry.transfer.set('done', blob.size, blob.size);
          },
          (err: unknown) => entry.transfer.fail(describeDownloadError(err)),
        )
        .finally(() => delete entry.running);
    }
    return entry.running;
  }

  /**
   * Saves the decrypted file under its real name. Only ever as a download: opened in a tab, a
   * blob URL of a sender-chosen type (text/html) would run in this page's origin.
   */
  async save(entry: Fetched): Promise<void> {
    await this.fetch(entry);
    if (!entry.url) return;
    const link = document.createElement('a');
    link.href = entry.url;
    link.download = entry.attachment.filename;
    link.click();
  }

  clear(): void {
    for (const entry of this.entries.values()) this.free(entry);
    this.entries.clear();
  }

  private free(entry: Fetched | undefined): void {
    if (entry?.url) URL.revokeObjectURL(entry.url);
    if (entry?.previewUrl) URL.revokeObjectURL(entry.previewUrl);
  }
}

function sameFile(a: E2EEAttachment, b: E2EEAttachment): boolean {
  return a.filename === b.filename && a.contentType === b.contentType && a.size === b.size && a.media?.sid === b.media?.sid;
}

/** A file that fails verification says so on that file; none of it is shown or saved. */
function describeDownloadError(err: unknown): Described {
  if (isE2EEError(err) && err.code.startsWith('ATTACHMENT_')) {
    return { kind: 'other', title: 'This file could not be verified', detail: `${err.code}: it is not what the sender encrypted and signed, so none of it is shown or saved.` };
  }
  return describeError(err);
}

/** Why files were refused before anything was sent: which file, and the limit. */
export function describeFilesError(err: unknown, files: readonly File[], countLimit: number | undefined): Described | null {
  if (isE2EEError(err, ErrorCode.ATTACHMENT_TOO_LARGE)) {
    const big = files.filter((f) => f.size > MAX_ATTACHMENT_BYTES).map((f) => `“${f.name}” is ${formatSize(f.size)}`);
    return {
      kind: 'refused',
      title: 'File too large',
      detail: `${big.join(', ') || 'A file is over the limit'}: a file can be at most ${formatSize(MAX_ATTACHMENT_BYTES)} (Twilio’s 150 MB media limit, less the encryption’s overhead). Nothing was sent.`,
    };
  }
  if (isE2EEError(err, ErrorCode.TOO_MANY_ATTACHMENTS)) {
    const most = countLimit ? `at most ${plural(countLimit, 'file')}` : 'fewer files';
    return { kind: 'refused', title: 'Too many files', detail: `${plural(files.length, 'file')} in one message: a message can carry ${most}. Nothing was sent; send them in several messages.` };
  }
  return null;
}
