/**
 * Signed notes (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, then one
 * or more lines "— <key name> base64(key ID || signature)". The log's checkpoints and the
 * witnesses' cosignatures travel in this format so that existing verifiers and witnesses read
 * them. Parsing is strict and every refusal is typed (NOTE_MALFORMED, NOTE_SIGNATURE_INVALID,
 * NOTE_UNVERIFIED). docs/PROTOCOL.md section 17.2; keys are in signed-note-keys.ts.
 */
import { fromB64u, fromUtf8, toB64u, utf8 } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';
import { MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES } from './limits.js';

/** One signature line of a note. */
export interface NoteSignature {
  /** The key name. */
  name: string;
  /** The key ID: the line's first 4 bytes, big-endian. */
  keyId: number;
  /** The signature bytes after the key ID. */
  signature: Uint8Array;
}

/** A key that can check a note's signatures: known by its name and key ID together. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /** Whether `signature` (after the key ID) is this key's over the note text's UTF-8 bytes. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** A key that signs note texts. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** The signature (without the key ID) over the note text's UTF-8 bytes. */
  sign(text: Uint8Array): Uint8Array;
}

/** A note split into its text (final newline included) and its signatures, nothing verified. */
export interface Note {
  text: string;
  signatures: NoteSignature[];
}

/** A note whose signatures from known keys all verified (at least one). */
export interface VerifiedNote {
  text: string;
  /** One per known key that signed, in the order of the note. */
  verified: NoteSignature[];
  /** Signatures of keys the verifier was not given: ignored, as the format requires. */
  unverified: NoteSignature[];
}

const EM_DASH = '\u2014 ';
// Control characters other than newline, and lone surrogates (which have no UTF-8 form).
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Unicode spaces as Go's unicode.IsSpace sees them (the reference implementation), and "+".
const NOT_IN_NAME = /[\s\u0085+]/u;
const STD_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function malformed(message: string): E2EEError {
  return new E2EEError(ErrorCode.NOTE_MALFORMED, message);
}

/** Standard base64 with padding (RFC 4648 section 4), as the C2SP formats write it. */
export function toBase64(bytes: Uint8Array): string {
  const b64u = toB64u(bytes);
  return b64u.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64u.length % 4)) % 4);
}

/**
 * Strict standard base64: padded, no whitespace, zero unused bits, so each byte string has one
 * spelling (a root hash or signature cannot travel under two texts). Null when not canonical.
 */
export function fromBase64(text: string): Uint8Array | null {
  if (typeof text !== 'string' || !STD_B64.test(text)) return null;
  try {
    return fromB64u(text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'));
  } catch {
    return null;
  }
}

/** Whether `name` may name a key: non-empty, no Unicode space, no "+". */
export function isKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && !NOT_IN_NAME.test(name) && !FORBIDDEN.test(name);
}

function checkText(text: string): void {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw malformed('a note text must end with a newline');
  if (FORBIDDEN.test(text)) throw malformed('a note may hold no control character but newline, and only valid UTF-8');
}

/** The note (a string, or its UTF-8 bytes) split into text and signature lines; verifies nothing. */
export function parseNote(note: string | Uint8Array): Note {
  if (note instanceof Uint8Array) {
    if (note.length > MAX_NOTE_BYTES) throw malformed(`a note is at most ${MAX_NOTE_BYTES} bytes`);
    try {
      note = fromUtf8(note);
    } catch {
      throw malformed('a note must be valid UTF-8');
    }
  }
  if (typeof note !== 'string') throw malformed('a note must be text');
  if (note.length > MAX_NOTE_BYTES || utf8(note).length > MAX_NOTE_BYTES) throw malformed(`a note is at most ${MAX_NOTE_BYTES} bytes`);
  // The text ends at the last blank line; signature lines hold no blank line.
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('a note needs a blank line before its signatures');
  const text = note.slice(0, split + 1);
  checkText(note);
  const block = note.slice(split + 2);
  if (!block.endsWith('\n')) throw malformed('a note must end with a signature line and a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) throw malformed(`a note carries at most ${MAX_NOTE_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(EM_DASH)) throw malformed('a signature line starts with an em dash and a space');
  const rest = line.slice(EM_DASH.length);
  const space = rest.indexOf(' ');
  const name = rest.slice(0, space);
  if (space < 0 || !isKeyName(name)) throw malformed('a signature line needs a key name without spaces or "+"');
  const bytes = fromBase64(rest.slice(space + 1));
  if (!bytes || bytes.length < 5) throw malformed(`the signature of "${name}" is not base64 of a key ID and a signature`);
  const keyId = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  return { name, keyId, signature: bytes.slice(4) };
}

function signatureLine({ name, keyId, signature }: NoteSignature): string {
  const bytes = new Uint8Array(4 + signature.length);
  new DataView(bytes.buffer).setUint32(0, keyId);
  bytes.set(signature, 4);
  return `${EM_DASH}${name} ${toBase64(bytes)}\n`;
}

/** The note's text form: its text, a blank line, a line per signature. Checks what parseNote checks. */
export function formatNote(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw malformed('a note carries at least one signature');
  for (const s of note.signatures) {
    if (!isKeyName(s.name) || !Number.isInteger(s.keyId) || s.keyId < 0 || s.keyId > 0xffffffff || !(s.signature instanceof Uint8Array) || s.signature.length === 0) {
      throw malformed('a signature needs a key name, a 32-bit key ID and signature bytes');
    }
  }
  const text = `${note.text}\n${note.signatures.map(signatureLine).join('')}`;
  parseNote(text); // the size limits
  return text;
}

/** Signs `text` (ending in a newline) with each signer, in order. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  const bytes = utf8(text);
  return formatNote({ text, signatures: signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(bytes) })) });
}

/** Adds the signatures of `more` (say, a witness's cosignature lines) that `note` lacks; both must have the same text. */
export function mergeNotes(note: string, more: string): string {
  const [a, b] = [parseNote(note), parseNote(more)];
  if (a.text !== b.text) throw malformed('only the signatures of one text can be merged');
  const seen = new Set(a.signatures.map(signatureLine));
  return formatNote({ text: a.text, signatures: [...a.signatures, ...b.signatures.filter((s) => !seen.has(signatureLine(s)))] });
}

/**
 * Verifies a note with the keys given. A signature whose name and key ID both match a key must
 * verify, else the whole note is refused (NOTE_SIGNATURE_INVALID); signatures of other keys are
 * ignored; at least one known key must have signed (NOTE_UNVERIFIED).
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): VerifiedNote {
  const known = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const id = `${v.name}+${v.keyId}`;
    if (known.has(id)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `two verifiers for the key ${v.name}+${v.keyId.toString(16).padStart(8, '0')}`);
    known.set(id, v);
  }
  const { text, signatures } = parseNote(note);
  const bytes = utf8(text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const done = new Set<string>();
  for (const sig of signatures) {
    const id = `${sig.name}+${sig.keyId}`;
    const verifier = known.get(id);
    if (!verifier) {
      unverified.push(sig);
      continue;
    }
    if (!verifier.verify(bytes, sig.signature)) {
      throw new E2EEError(ErrorCode.NOTE_SIGNATURE_INVALID, `the signature of ${sig.name}+${sig.keyId.toString(16).padStart(8, '0')} does not verify`);
    }
    if (!done.has(id)) verified.push(sig);
    done.add(id);
  }
  if (verified.length === 0) throw new E2EEError(ErrorCode.NOTE_UNVERIFIED, 'the note has no signature from a known key');
  return { text, verified, unverified };
}
