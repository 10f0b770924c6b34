/**
 * Thumbnails of image files, made on the sending device and carried inside the envelope
 * (docs/PROTOCOL.md section 16.7), so a receiver shows the picture before downloading it. Browsers
 * only (createImageBitmap, and OffscreenCanvas or a canvas element); Node has no default.
 */
import { MAX_ATTACHMENT_PREVIEW_BYTES } from '../shared/limits.js';
import type { AttachmentPreview } from '../shared/payload.js';

/** The default thumbnail's longest side, pixels. */
export const PREVIEW_MAX_SIDE = 96;
/** Larger images get no thumbnail: decoding them costs more than a preview is worth. */
export const PREVIEW_MAX_SOURCE_BYTES = 25_000_000;
/** Encodings tried in order, each at falling quality, until one fits MAX_ATTACHMENT_PREVIEW_BYTES. */
const ENCODINGS = [
  { type: 'image/webp', quality: 0.7 },
  { type: 'image/jpeg', quality: 0.7 },
  { type: 'image/jpeg', quality: 0.4 },
];

/** Makes (or not) the preview of a file to send: the client's `attachmentPreview` option. */
export type PreviewMaker = (file: Blob) => Promise<AttachmentPreview | undefined>;

/** The thumbnail's size: the image scaled down (never up) so that its longest side is at most `maxSide`. */
export function previewSize(width: number, height: number, maxSide = PREVIEW_MAX_SIDE): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

type Canvas2D = { drawImage(image: unknown, x: number, y: number, w: number, h: number): void };
type AnyCanvas = { getContext(kind: '2d'): Canvas2D | null };

function canvasOf(width: number, height: number): { canvas: AnyCanvas; encode(type: string, quality: number): Promise<Blob | null> } | null {
  if (typeof OffscreenCanvas === 'function') {
    const canvas = new OffscreenCanvas(width, height);
    return { canvas: canvas as unknown as AnyCanvas, encode: (type, quality) => canvas.convertToBlob({ type, quality }).catch(() => null) };
  }
  if (typeof document === 'undefined') return null;
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = [width, height];
  return { canvas: canvas as unknown as AnyCanvas, encode: (type, quality) => new Promise((resolve) => canvas.toBlob(resolve, type, quality)) };
}

/**
 * The default preview in browsers: for an image/* file a decoder can read, a WebP (or JPEG)
 * thumbnail whose longest side is 96 pixels and whose bytes fit MAX_ATTACHMENT_PREVIEW_BYTES.
 * Anything else (no decoder, not an image, too large, an encoding that does not fit) has none:
 * a preview is never worth failing a send for.
 */
export async function imagePreview(file: Blob): Promise<AttachmentPreview | undefined> {
  if (!file.type.startsWith('image/') || file.size > PREVIEW_MAX_SOURCE_BYTES || typeof createImageBitmap !== 'function') return undefined;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return undefined; // not an image this browser decodes
  }
  try {
    const { width, height } = previewSize(bitmap.width, bitmap.height);
    const target = canvasOf(width, height);
    const context = target?.canvas.getContext('2d');
    if (!target || !context) return undefined;
    context.drawImage(bitmap, 0, 0, width, height);
    for (const { type, quality } of ENCODINGS) {
      const encoded = await target.encode(type, quality);
      // A browser that cannot write the type asked for falls back to PNG: only the type asked is taken.
      if (!encoded || encoded.type !== type || encoded.size > MAX_ATTACHMENT_PREVIEW_BYTES) continue;
      return { contentType: type, bytes: new Uint8Array(await encoded.arrayBuffer()), width, height };
    }
    return undefined;
  } finally {
    bitmap.close();
  }
}

/** The preview maker for the `attachmentPreview` option: false for none, a function of the app's, or the default. */
export function previewMaker(option: false | PreviewMaker | undefined): PreviewMaker {
  if (option === false) return async () => undefined;
  return option ?? imagePreview;
}
