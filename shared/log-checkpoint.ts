/**
 * Checkpoints (c2sp.org/tlog-checkpoint): the log's signed statement of its tree at one size, a
 * signed note whose text is
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n]...
 *
 * signed by the LogKey under the origin as key name, and cosigned by witnesses. Strict parsing,
 * then opening with the pinned keys: docs/PROTOCOL.md section 17.3.
 */
import { MERKLE_HASH_BYTES } from './constants.js';
import { E2EEError, ErrorCode } from './errors.js';
import { checkCosignatures, type Cosignature } from './log-cosignature.js';
import { fromBase64, openNote, signNote, toBase64, type NoteSigner, type NoteVerifier } from './signed-note.js';

/** The tree head a checkpoint states. */
export interface Checkpoint {
  /** The log's identity, e.g. "cards.example.com/log". */
  origin: string;
  /** Leaves in the tree. */
  size: number;
  /** The tree's RFC 6962 root (32 bytes). */
  rootHash: Uint8Array;
  /** Opaque lines after the root hash (NOT RECOMMENDED by the format; ours has none). */
  extensions: string[];
}

function malformed(message: string): E2EEError {
  return new E2EEError(ErrorCode.CHECKPOINT_MALFORMED, message);
}

const SIZE = /^(?:0|[1-9][0-9]*)$/;

/** The checkpoint's note text. Throws CHECKPOINT_MALFORMED for what parseCheckpoint would refuse. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions = [] } = checkpoint;
  if ([origin, ...extensions].some((line) => typeof line !== 'string' || line.includes('\n'))) throw malformed('a checkpoint line is text without a newline');
  const text = [origin, String(size), rootHash instanceof Uint8Array ? toBase64(rootHash) : '', ...extensions].join('\n') + '\n';
  parseCheckpoint(text);
  return text;
}

/**
 * A checkpoint's note text, strictly: at least three lines, each ending in a newline; a non-empty
 * origin; the size in decimal without leading zeros, at most 2^53 - 1; the root hash as canonical
 * base64 of 32 bytes; extension lines non-empty.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw malformed('a checkpoint ends with a newline');
  const [origin, size, root, ...extensions] = text.slice(0, -1).split('\n');
  if (!origin) throw malformed('a checkpoint starts with a non-empty origin line');
  if (size === undefined || !SIZE.test(size) || !Number.isSafeInteger(Number(size))) throw malformed('the tree size is a decimal number below 2^53');
  const rootHash = root === undefined ? null : fromBase64(root);
  if (!rootHash || rootHash.length !== MERKLE_HASH_BYTES) throw malformed('the root hash is base64 of 32 bytes');
  if (extensions.some((line) => line === '')) throw malformed('extension lines are non-empty');
  return { origin, size: Number(size), rootHash, extensions };
}

/** The signed checkpoint note. The LogKey's name must be the origin (the format's SHOULD, made a rule here). */
export function signCheckpoint(checkpoint: Checkpoint, logKey: NoteSigner): string {
  if (logKey.name !== checkpoint.origin) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the log key "${logKey.name}" is not named for the origin "${checkpoint.origin}"`);
  return signNote(formatCheckpoint(checkpoint), [logKey]);
}

/** What a client or witness pins to accept a log's checkpoints. */
export interface CheckpointTrust {
  /** The log's origin line. */
  origin: string;
  /** The LogKey's verifier. */
  log: NoteVerifier;
  /** Witness cosignature verifiers whose cosignatures are checked and returned (none required here). */
  witnesses?: readonly NoteVerifier[];
  /** Unix seconds, for cosignature times (default: the clock). */
  now?: number;
}

export interface OpenedCheckpoint {
  checkpoint: Checkpoint;
  /** The verified cosignatures of the trusted witnesses, with their times. */
  cosignatures: Cosignature[];
}

/**
 * Verifies a checkpoint note: the LogKey's signature (NOTE_UNVERIFIED without it,
 * NOTE_SIGNATURE_INVALID when a known key's fails), then the text (CHECKPOINT_MALFORMED) and
 * its origin (CHECKPOINT_ORIGIN_MISMATCH), then the trusted witnesses' cosignature times.
 */
export function openCheckpoint(note: string | Uint8Array, trust: CheckpointTrust): OpenedCheckpoint {
  const witnesses = trust.witnesses ?? [];
  const opened = openNote(note, [trust.log, ...witnesses]);
  if (!opened.verified.some((s) => s.name === trust.log.name && s.keyId === trust.log.keyId)) {
    throw new E2EEError(ErrorCode.NOTE_UNVERIFIED, `the checkpoint is not signed by the log key ${trust.log.name}`);
  }
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== trust.origin) {
    throw new E2EEError(ErrorCode.CHECKPOINT_ORIGIN_MISMATCH, `the checkpoint is for "${checkpoint.origin}", not "${trust.origin}"`);
  }
  return { checkpoint, cosignatures: checkCosignatures(opened, witnesses, trust.now ?? Date.now() / 1000) };
}
