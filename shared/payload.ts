/**
 * The signed payload of an envelope (docs/PROTOCOL.md section 5.3): version 1 (the body only),
 * version 2 (the body, the message attributes split into an encrypted part and a clear part, and
 * for an edit its binding to the original message) and version 3 (version 2 with attachments:
 * their metadata and previews). Versions 2 and 3 may carry the sender's latest checkpoint of the
 * card transparency log (gossip: its size and root). Building, strict parsing, and the attribute
 * helpers the client uses to split, rebuild and compare attributes.
 */
import { parseAttachmentMetadata, type AttachmentMetadata } from './attachment-format.js';
import { fromB64u, toB64u, utf8 } from './encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from './errors.js';
import { parseFlatObject } from './json.js';
import { MAX_ATTACHMENT_PREVIEW_BYTES, MAX_ATTACHMENT_PREVIEW_SIDE, MAX_ATTRIBUTES_BYTES } from './limits.js';

/** A JSON value (message attributes). */
export type JsonValue = null | string | number | boolean | { [key: string]: JsonValue } | JsonValue[];
export type JsonObject = { [key: string]: JsonValue };

/** The signed content of a message. Version 1 has the first four members only. */
export interface EnvelopePayload {
  /** 2 or 3; absent in version 1. */
  v?: 2 | 3;
  conversationSid: string;
  /** hex of 16 random bytes; unique per conversation (replay detection). */
  messageId: string;
  /** Unix milliseconds, as claimed by the sender. */
  sentAt: number;
  body: string;
  /** v2: the JSON text of the encrypted attributes (everything but the clear keys). */
  attributes?: string;
  /** v2: the JSON text of the clear attributes, the object Twilio holds as the message's attributes. */
  clearAttributes?: string;
  /** v2 edits: the messageId of the original message. */
  editOf?: string;
  /** v2 edits: the edit counter, 1 for the first edit. */
  edit?: number;
  /** v3: the JSON text of the attachments (AttachmentWire[]), at least one. */
  attachments?: string;
  /** v2, v3 (gossip): the tree size of the sender's latest verified checkpoint of the card log; with logRoot. */
  logSize?: number;
  /** v2, v3 (gossip): that checkpoint's root hash, b64u of 32 bytes; with logSize. */
  logRoot?: string;
}

/** The sender's latest checkpoint of the card transparency log, as gossiped in a payload. */
export interface GossipCheckpoint {
  /** The tree size, at least 1. */
  size: number;
  /** The root hash, 32 bytes. */
  root: Uint8Array;
}

/** A thumbnail of an image attachment, shown before the file is downloaded. */
export interface AttachmentPreview {
  /** image/jpeg, image/png or image/webp (never a type a browser would run, like SVG). */
  contentType: string;
  /** The image's bytes, at most MAX_ATTACHMENT_PREVIEW_BYTES. */
  bytes: Uint8Array;
  /** Pixels, 1 to MAX_ATTACHMENT_PREVIEW_SIDE. */
  width: number;
  height: number;
}

/** One file of a message: what fetches, checks and decrypts it, and an optional preview. */
export interface PayloadAttachment {
  file: AttachmentMetadata;
  preview?: AttachmentPreview;
}

/** Preview types a receiver shows: raster images only. */
const PREVIEW_TYPES = ['image/jpeg', 'image/png', 'image/webp'];

/** An edit's binding to the message it replaces. */
export interface EditMarker {
  /** The original message's messageId. */
  of: string;
  /** 1 for the first edit, then one more than the version edited. */
  n: number;
}

/** The message content to seal beyond the body (a version 2 payload). */
export interface PayloadContent {
  /** The message attributes as the app gives them; undefined is `{}`. */
  attributes?: JsonValue;
  /** Top-level attribute keys that stay readable to Twilio (still signed). */
  clearKeys?: readonly string[];
  edit?: EditMarker;
  /** Files sent with the message: a version 3 payload when there is at least one. */
  attachments?: readonly PayloadAttachment[];
  /** The sender's latest verified checkpoint of the card log (gossip); none when it holds none. */
  log?: GossipCheckpoint;
}

const HEX32 = /^[0-9a-f]{32}$/;
const V1_MEMBERS = ['conversationSid', 'messageId', 'sentAt', 'body'];
const V2_MEMBERS = ['v', ...V1_MEMBERS, 'attributes', 'clearAttributes'];
const EDIT_MEMBERS = ['editOf', 'edit'];
const LOG_MEMBERS = ['logSize', 'logRoot'];
const ROOT_B64U = /^[A-Za-z0-9_-]{43}$/;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON text of an attributes part, refused above Twilio's attribute limit (never truncated). */
function attributesText(value: JsonValue, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"attributes" expected a JSON value');
  const bytes = utf8(text).length;
  if (bytes > MAX_ATTRIBUTES_BYTES) {
    throw new E2EEError(ErrorCode.ATTRIBUTES_TOO_LARGE, `the ${what} attributes are ${bytes} bytes of JSON; the limit is ${MAX_ATTRIBUTES_BYTES}; nothing was sent`);
  }
  return text;
}

/**
 * Splits attributes into the encrypted part and the clear part: the clear part is the object of
 * the top-level keys named in `clearKeys` that the attributes have; the encrypted part is the rest
 * (or the whole value, when the attributes are not an object). Each part is at most
 * MAX_ATTRIBUTES_BYTES of JSON (ATTRIBUTES_TOO_LARGE).
 */
export function splitAttributes(attributes: JsonValue | undefined, clearKeys: readonly string[] = []): { encrypted: string; clear: string } {
  const value = attributes === undefined ? {} : attributes;
  const clear: JsonObject = {};
  let hidden: JsonValue = value;
  if (isObject(value)) {
    const rest: JsonObject = {};
    for (const [key, v] of Object.entries(value)) {
      if (clearKeys.includes(key)) clear[key] = v;
      else rest[key] = v;
    }
    hidden = rest;
  }
  return { encrypted: attributesText(hidden, 'encrypted'), clear: attributesText(clear, 'clear') };
}

/** Builds the payload: version 1 without content, version 2 with it. */
export function buildPayload(base: Pick<EnvelopePayload, 'conversationSid' | 'messageId' | 'sentAt' | 'body'>, content?: PayloadContent): EnvelopePayload {
  if (content === undefined) return { conversationSid: base.conversationSid, messageId: base.messageId, sentAt: base.sentAt, body: base.body };
  const { encrypted, clear } = splitAttributes(content.attributes, content.clearKeys);
  const files = content.attachments ?? [];
  const payload: EnvelopePayload = { v: files.length > 0 ? 3 : 2, ...base, attributes: encrypted, clearAttributes: clear };
  if (content.edit !== undefined) {
    const { of, n } = content.edit;
    if (typeof of !== 'string' || !HEX32.test(of) || !Number.isSafeInteger(n) || n < 1) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"edit" expected {of: a messageId (32 hex), n: a positive integer}');
    }
    payload.editOf = of;
    payload.edit = n;
  }
  if (files.length > 0) payload.attachments = attachmentsText(files);
  if (content.log !== undefined) {
    const { size, root } = content.log;
    if (!Number.isSafeInteger(size) || size < 1 || !(root instanceof Uint8Array) || root.length !== 32) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"log" expected {size: a positive integer, root: 32 bytes}');
    }
    payload.logSize = size;
    payload.logRoot = toB64u(root);
  }
  return payload;
}

/** The JSON text of the attachments, each checked as a receiver would check it (INVALID_ARGUMENT otherwise). */
function attachmentsText(files: readonly PayloadAttachment[]): string {
  const wire = files.map(({ file, preview }) => {
    const item: Record<string, unknown> = { file: { ...file } };
    if (preview) item.preview = { contentType: preview.contentType, width: preview.width, height: preview.height, data: toB64u(preview.bytes) };
    return item;
  });
  const text = JSON.stringify(wire);
  try {
    parseAttachments(text);
  } catch (err) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `attachments: ${(err as Error).message}`, { cause: err });
  }
  return text;
}

/**
 * Parses the attachments text of a version 3 payload: canonical JSON, a non-empty array of
 * {file, preview?}, each file's metadata canonical (section 16.2), no file id twice, previews of a
 * raster type within the preview limits. ENVELOPE_MALFORMED, or the metadata's own code.
 */
function parseAttachments(text: string): PayloadAttachment[] {
  const value = parseCanonicalJson(text);
  if (!Array.isArray(value) || value.length === 0) throw malformedPayload('payload attachments must be a non-empty array');
  const seen = new Set<string>();
  return value.map((item) => {
    if (!isObject(item) || !sameMembers(Object.keys(item).sort(), 'preview' in item ? ['file', 'preview'] : ['file'])) {
      throw malformedPayload('a payload attachment has exactly file, and optionally preview');
    }
    const file = parseAttachmentMetadata(item.file).metadata;
    if (seen.has(file.fileId)) throw malformedPayload('two payload attachments have the same fileId');
    seen.add(file.fileId);
    return item.preview === undefined ? { file } : { file, preview: parsePreview(item.preview) };
  });
}

function parsePreview(value: JsonValue): AttachmentPreview {
  const bad = () => malformedPayload(`an attachment preview has exactly contentType (${PREVIEW_TYPES.join(', ')}), width and height (1..${MAX_ATTACHMENT_PREVIEW_SIDE}) and data (b64u, 1..${MAX_ATTACHMENT_PREVIEW_BYTES} bytes)`);
  if (!isObject(value) || !sameMembers(Object.keys(value).sort(), ['contentType', 'data', 'height', 'width'])) throw bad();
  const { contentType, width, height, data } = value;
  const side = (n: JsonValue | undefined) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_ATTACHMENT_PREVIEW_SIDE;
  if (typeof contentType !== 'string' || !PREVIEW_TYPES.includes(contentType) || !side(width) || !side(height) || typeof data !== 'string') throw bad();
  let bytes: Uint8Array;
  try {
    bytes = fromB64u(data, 'preview');
  } catch {
    throw bad();
  }
  if (bytes.length === 0 || bytes.length > MAX_ATTACHMENT_PREVIEW_BYTES) throw bad();
  return { contentType, width: width as number, height: height as number, bytes };
}

/** The attachments of a version 3 payload (empty for the other versions). */
export function payloadAttachments(payload: EnvelopePayload): PayloadAttachment[] {
  return payload.attachments === undefined ? [] : parseAttachments(payload.attachments);
}

function malformedPayload(message: string): E2EEError {
  return new E2EEError(ErrorCode.ENVELOPE_MALFORMED, message);
}

/** Parses JSON text written by JSON.stringify, and only such text (one spelling per value, no duplicate keys). */
function parseCanonicalJson(text: string): JsonValue | undefined {
  try {
    const value = JSON.parse(text) as JsonValue;
    return JSON.stringify(value) === text ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Parses payload bytes strictly (section 5.3): a version 1 or a version 2 payload, nothing else. */
export function parsePayload(text: string): EnvelopePayload {
  const obj = parseFlatObject(text);
  if (!obj) throw malformedPayload('envelope payload is not a flat JSON object');
  const keys = Object.keys(obj).sort();
  const { conversationSid, messageId, sentAt, body } = obj;
  if (
    typeof conversationSid !== 'string' ||
    typeof messageId !== 'string' ||
    !HEX32.test(messageId) ||
    typeof sentAt !== 'number' ||
    !Number.isSafeInteger(sentAt) ||
    typeof body !== 'string'
  ) {
    throw malformedPayload('envelope payload must have conversationSid, messageId (32 hex), sentAt (unix ms) and body');
  }
  const base = { conversationSid, messageId, sentAt, body };
  if (obj.v === undefined) {
    if (!sameMembers(keys, V1_MEMBERS)) throw malformedPayload('a version 1 payload has exactly conversationSid, messageId, sentAt and body');
    return base;
  }
  const isEdit = keys.includes('editOf') || keys.includes('edit');
  const gossips = keys.includes('logSize') || keys.includes('logRoot');
  const members = [...V2_MEMBERS, ...(isEdit ? EDIT_MEMBERS : []), ...(obj.v === 3 ? ['attachments'] : []), ...(gossips ? LOG_MEMBERS : [])];
  if ((obj.v !== 2 && obj.v !== 3) || !sameMembers(keys, members)) {
    throw malformedPayload(
      'a version 2 payload has exactly v (2), conversationSid, messageId, sentAt, body, attributes, clearAttributes, for an edit editOf and edit, and optionally logSize and logRoot together; version 3 (v: 3) has attachments too',
    );
  }
  const { attributes, clearAttributes, editOf, edit } = obj;
  if (typeof attributes !== 'string' || typeof clearAttributes !== 'string') throw malformedPayload('payload attributes must be JSON text');
  const hidden = parseCanonicalJson(attributes);
  const clear = parseCanonicalJson(clearAttributes);
  if (hidden === undefined || !isObject(clear)) throw malformedPayload('payload attributes must be canonical JSON, the clear part an object');
  if (!isObject(hidden) ? Object.keys(clear).length > 0 : Object.keys(clear).some((k) => Object.hasOwn(hidden, k))) {
    throw malformedPayload('payload attribute parts overlap');
  }
  const payload: EnvelopePayload = { v: obj.v as 2 | 3, ...base, attributes, clearAttributes };
  if (isEdit) {
    if (typeof editOf !== 'string' || !HEX32.test(editOf) || typeof edit !== 'number' || !Number.isSafeInteger(edit) || edit < 1) {
      throw malformedPayload('an edit has editOf (32 hex) and edit (a positive integer)');
    }
    payload.editOf = editOf;
    payload.edit = edit;
  }
  if (gossips) {
    const { logSize, logRoot } = obj;
    if (typeof logSize !== 'number' || !Number.isSafeInteger(logSize) || logSize < 1 || typeof logRoot !== 'string' || !ROOT_B64U.test(logRoot)) {
      throw malformedPayload('a payload checkpoint has logSize (a positive integer) and logRoot (b64u of 32 bytes)');
    }
    try {
      fromB64u(logRoot, 'logRoot'); // canonical: no stray bits in the last character
    } catch {
      throw malformedPayload('a payload checkpoint has logSize (a positive integer) and logRoot (b64u of 32 bytes)');
    }
    payload.logSize = logSize;
    payload.logRoot = logRoot;
  }
  if (obj.v === 3) {
    if (typeof obj.attachments !== 'string') throw malformedPayload('payload attachments must be JSON text');
    payload.attachments = obj.attachments;
    try {
      parseAttachments(obj.attachments);
    } catch (err) {
      // Metadata keeps its own code (ATTACHMENT_METADATA_INVALID, ATTACHMENT_TOO_LARGE); anything else is a malformed payload.
      throw isE2EEError(err) ? err : malformedPayload('payload attachments are not JSON');
    }
  }
  return payload;
}

function sameMembers(sortedKeys: string[], expected: string[]): boolean {
  const want = [...expected].sort();
  return sortedKeys.length === want.length && sortedKeys.every((k, i) => k === want[i]);
}

/** The full attributes of a version 2 payload (the encrypted part with the clear keys added); undefined for version 1. */
export function payloadAttributes(payload: EnvelopePayload): JsonValue | undefined {
  if (payload.attributes === undefined || payload.clearAttributes === undefined) return undefined;
  const hidden = JSON.parse(payload.attributes) as JsonValue;
  const clear = JSON.parse(payload.clearAttributes) as JsonObject;
  return isObject(hidden) ? { ...hidden, ...clear } : hidden;
}

/** The sender's gossiped checkpoint of the card log, or undefined when the payload has none (every version 1 payload). */
export function payloadCheckpoint(payload: EnvelopePayload): GossipCheckpoint | undefined {
  return payload.logSize !== undefined && payload.logRoot !== undefined ? { size: payload.logSize, root: fromB64u(payload.logRoot, 'logRoot') } : undefined;
}

/** The edit marker of a payload, or undefined for an original (and for every version 1 payload). */
export function payloadEdit(payload: EnvelopePayload): EditMarker | undefined {
  return payload.editOf !== undefined && payload.edit !== undefined ? { of: payload.editOf, n: payload.edit } : undefined;
}

/** JSON text with object keys sorted at every level: equal for equal values, whatever their key order. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * True when what the transport holds as the message's attributes is the signed clear part, as a
 * JSON value (key order free). A missing value is `{}`.
 */
export function clearAttributesMatch(payload: EnvelopePayload, transport: unknown): boolean {
  if (payload.clearAttributes === undefined) return true;
  return sortedJson(transport === undefined ? {} : transport) === sortedJson(JSON.parse(payload.clearAttributes));
}
