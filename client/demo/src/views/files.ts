/**
 * Files in the timeline: the files of a received message (images inline, at once as the
 * envelope's small preview, then in full once downloaded and verified; other files as cards with
 * a Download button), the upload progress of a message being sent, and what Twilio stores for
 * them (opaque blobs). Each file's element is built once and updated in place as its transfer
 * moves, so progress never redraws the timeline and an image never flickers.
 */
import type { Message } from '@twilio/conversations';
import { unwrap } from '../../../index.js';
import { h, icon, mount } from '../dom.js';
import { attachmentsOf, AUTO_IMAGE_BYTES, isImage, type Fetched, type FileCache, type Transfer, type Upload } from '../files.js';
import { formatSize } from '../format.js';
import './files.css';

const built = new WeakMap<object, HTMLElement>();

/** Builds an element once per `owner`; later calls hand back the same element. */
function once(owner: object, build: () => HTMLElement): HTMLElement {
  let el = built.get(owner);
  if (!el) built.set(owner, (el = build()));
  return el;
}

function progressBar(transfer: Transfer): HTMLElement {
  const fill = h('span', { class: 'bar-fill' });
  const bar = h('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill);
  const update = () => {
    const percent = Math.round(transfer.fraction * 100);
    fill.style.width = `${percent}%`;
    bar.setAttribute('aria-valuenow', String(percent));
  };
  update();
  transfer.watch(update);
  return bar;
}

const PHASE_TEXT: Partial<Record<Transfer['phase'], string>> = {
  waiting: 'Waiting',
  encrypting: 'Encrypting',
  uploading: 'Uploading',
  sent: 'Sent',
  downloading: 'Downloading and verifying',
  failed: 'Not sent',
};

function phaseText(transfer: Transfer): string {
  const text = PHASE_TEXT[transfer.phase] ?? '';
  const counted = transfer.phase === 'encrypting' || transfer.phase === 'uploading' || transfer.phase === 'downloading';
  return counted ? `${text} ${Math.round(transfer.fraction * 100)}%` : text;
}

/** A label for a file's type: "PDF", "PNG image", else its extension or type. */
function typeLabel(filename: string, contentType: string): string {
  if (contentType === 'application/pdf') return 'PDF';
  const [kind, sub = ''] = contentType.split('/');
  if (kind === 'image') return `${sub.replace(/^(svg)\+xml$/, '$1').toUpperCase()} image`;
  const ext = /\.([a-z0-9]{1,8})$/i.exec(filename)?.[1];
  return ext ? `${ext.toUpperCase()} file` : contentType || 'File';
}

/** The files of a message being sent: name, size and a bar through encrypting and uploading. */
export function uploadsView(uploads: readonly Upload[]): HTMLElement | null {
  if (uploads.length === 0) return null;
  return h(
    'div',
    { class: 'uploads' },
    uploads.map(({ file, transfer }) =>
      once(transfer, () => {
        const status = h('span', { class: 'file-status' });
        const el = h('div', { class: 'upload', 'data-testid': 'upload', 'data-filename': file.name }, icon('file', 'icon icon-sm'), h('span', { class: 'file-name' }, file.name), h('span', { class: 'file-size' }, formatSize(file.size)), status, progressBar(transfer));
        const update = () => {
          el.dataset.phase = transfer.phase;
          status.textContent = phaseText(transfer);
        };
        update();
        transfer.watch(update);
        return el;
      }),
    ),
  );
}

/** The files of a received message, or null when it has none. */
export function attachmentsView(message: Message, files: FileCache): HTMLElement | null {
  const attachments = attachmentsOf(message);
  if (attachments.length === 0) return null;
  return h(
    'div',
    { class: 'attachments', 'data-testid': 'attachments' },
    attachments.map((_, i) => {
      const entry = files.entry(message, i);
      return once(entry, () => (isImage(entry.attachment) ? imageView(entry, files) : cardView(entry, files)));
    }),
  );
}

function downloadButton(entry: Fetched, files: FileCache): HTMLElement {
  return h(
    'button',
    { class: 'btn sm', type: 'button', 'data-testid': 'attachment-download', title: `Save ${entry.attachment.filename} (verified and decrypted)`, onclick: () => void files.save(entry) },
    icon('download', 'icon icon-xs'),
    'Download',
  );
}

/** The error, progress or nothing, below a file; kept up to date with its transfer. */
function statusLine(entry: Fetched, files: FileCache): HTMLElement {
  const line = h('div', { class: 'file-line' });
  const update = () => {
    const { transfer } = entry;
    if (transfer.error) {
      mount(
        line,
        h(
          'div',
          { class: 'file-error', role: 'alert', 'data-testid': 'attachment-error' },
          icon('alert', 'icon icon-xs'),
          h('span', null, h('b', null, transfer.error.title), transfer.error.detail ? ` ${transfer.error.detail}` : ''),
          h('button', { class: 'link', type: 'button', onclick: () => void files.fetch(entry) }, 'Try again'),
        ),
      );
    } else if (transfer.phase === 'downloading') mount(line, h('span', { class: 'file-status' }, phaseText(transfer)), progressBar(transfer));
    else mount(line);
  };
  update();
  entry.transfer.watch(update);
  return line;
}

/** An image: its preview (from the envelope) at once, blurred; the verified image over it once downloaded. */
function imageView(entry: Fetched, files: FileCache): HTMLElement {
  const { attachment } = entry;
  const { preview } = attachment;
  const frame = h('div', { class: 'image-frame' });
  if (preview) frame.style.aspectRatio = `${preview.width} / ${preview.height}`;
  if (entry.previewUrl) frame.append(h('img', { class: 'image-preview', src: entry.previewUrl, alt: '', 'data-testid': 'attachment-preview' }));
  else frame.append(h('span', { class: 'image-placeholder' }, icon('image')));
  const show = h('button', { class: 'btn sm image-show', type: 'button', onclick: () => void files.fetch(entry) }, `Show image (${formatSize(attachment.size)})`);
  const el = h(
    'figure',
    { class: 'file image', 'data-testid': 'attachment', 'data-kind': 'image', 'data-filename': attachment.filename },
    frame,
    h('figcaption', { class: 'file-caption' }, h('span', { class: 'file-name', title: attachment.filename }, attachment.filename), h('span', { class: 'file-size' }, formatSize(attachment.size)), downloadButton(entry, files)),
    statusLine(entry, files),
  );
  let full: HTMLImageElement | null = null;
  const update = () => {
    el.dataset.state = entry.transfer.phase;
    if (entry.url && !full) {
      full = h('img', { class: 'image-full', src: entry.url, alt: attachment.filename, 'data-testid': 'attachment-image' });
      // Not an image after all (the sender's type was wrong): the card's Download still saves it.
      full.addEventListener('error', () => full?.remove());
      frame.append(full);
    }
    show.hidden = entry.transfer.phase !== 'waiting';
  };
  if (attachment.size > AUTO_IMAGE_BYTES) frame.append(show);
  update();
  entry.transfer.watch(update);
  if (attachment.size <= AUTO_IMAGE_BYTES) void files.fetch(entry);
  return el;
}

/** Any other file: its real name, type and size (from the signed envelope) and Download. */
function cardView(entry: Fetched, files: FileCache): HTMLElement {
  const { filename, contentType, size } = entry.attachment;
  const el = h(
    'div',
    { class: 'file card', 'data-testid': 'attachment', 'data-kind': 'file', 'data-filename': filename },
    h(
      'div',
      { class: 'file-card-row' },
      h('span', { class: 'file-icon' }, icon('file'), h('span', { class: 'file-ext' }, /\.([a-z0-9]{1,4})$/i.exec(filename)?.[1]?.toUpperCase() ?? '')),
      h('div', { class: 'file-text' }, h('span', { class: 'file-name', title: filename, 'data-testid': 'attachment-name' }, filename), h('span', { class: 'file-size', 'data-testid': 'attachment-meta' }, `${typeLabel(filename, contentType)} · ${formatSize(size)}`)),
      downloadButton(entry, files),
    ),
    statusLine(entry, files),
  );
  const update = () => (el.dataset.state = entry.transfer.phase);
  update();
  entry.transfer.watch(update);
  return el;
}

/** What Twilio (or the relay) stores for a message's files: opaque blobs, their size and type only. */
export function rawMediaView(message: Message): HTMLElement | null {
  const media = unwrap(message).attachedMedia ?? [];
  if (media.length === 0) return null;
  return h(
    'div',
    { class: 'raw-media-list' },
    media.map((m) =>
      h(
        'div',
        { class: 'raw-media', 'data-testid': 'raw-media', 'data-filename': m.filename ?? '', 'data-content-type': m.contentType, 'data-size': m.size },
        icon('file', 'icon icon-xs'),
        h('span', null, m.filename ?? '(no name)'),
        h('span', null, m.contentType),
        h('span', null, `${m.size.toLocaleString()} bytes`),
      ),
    ),
  );
}
