/**
 * The log's side of c2sp.org/tlog-witness: submit a new checkpoint, with a consistency proof, to
 * each configured witness and collect their cosignatures. Witnesses are asked in parallel, each
 * within a timeout; one that is down, slow or refusing is reported and skipped, never waited for,
 * so it never stops the log from publishing. docs/PROTOCOL.md section 17.6.
 */
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { checkCosignatures, cosignatureVerifierFromKey, type Cosignature } from '../../shared/log-cosignature.js';
import { parseCheckpoint } from '../../shared/log-checkpoint.js';
import { formatNote, mergeNotes, openNote, parseNote, type NoteVerifier } from '../../shared/signed-note.js';
import { ADD_CHECKPOINT_PATH, formatAddCheckpoint, parseSize, SIZE_CONTENT_TYPE } from './protocol.js';

/** A witness the log submits to. */
export interface WitnessEndpoint {
  /** Its submission prefix: the log POSTs to `<url>/add-checkpoint`. */
  url: string;
  /** Its cosignature verifier key ("<name>+<key ID>+<base64>", type 0x04). */
  vkey: string;
}

export interface CosignOptions {
  /** The new checkpoint, signed by the LogKey. */
  checkpoint: string;
  witnesses: readonly WitnessEndpoint[];
  /** The RFC 6962 consistency proof between two sizes of the log (never asked from 0). */
  consistencyProof(oldSize: number, newSize: number): Uint8Array[] | Promise<Uint8Array[]>;
  /**
   * The size each witness (by vkey) last cosigned, as far as the log knows; updated in place.
   * Keep one map for the process: an unknown witness is asked with 0 and answers its size (409).
   */
  sizes?: Map<string, number>;
  /** Per witness, for all its requests together, ms (default 5000). */
  timeoutMs?: number;
}

/** What one witness did. */
export type WitnessOutcome =
  | { vkey: string; url: string; ok: true; cosignature: Cosignature }
  | { vkey: string; url: string; ok: false; error: E2EEError };

export interface CosignResult {
  /** The checkpoint with every cosignature collected merged in (the checkpoint itself when none). */
  note: string;
  /** The cosignature lines alone ("— <name> <base64>\n"), in witness order. */
  lines: string;
  outcomes: WitnessOutcome[];
}

export const DEFAULT_WITNESS_TIMEOUT_MS = 5_000;

/**
 * The witnesses of a setting: entries separated by commas, each "<submission prefix URL> <vkey>".
 * Throws INVALID_ARGUMENT (or NOTE_KEY_INVALID for a key) naming the entry's place, never a secret.
 */
export function parseWitnessList(text: string): WitnessEndpoint[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const [url, vkey, extra] = entry.split(/\s+/);
      if (!url || !vkey || extra !== undefined || !/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) {
        throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `witness ${i + 1} is not "<http(s) URL> <verifier key>"`);
      }
      cosignatureVerifierFromKey(vkey);
      return { url: url.replace(/\/+$/, ''), vkey };
    });
}

/** The witness's cosignature lines that verify under its pinned key (others ignored), with its time. */
function readCosignature(checkpoint: string, body: string, verifier: NoteVerifier): { lines: string; cosignature: Cosignature } {
  const { text } = parseNote(checkpoint);
  const opened = openNote(`${text}\n${body}`, [verifier]); // NOTE_MALFORMED, NOTE_SIGNATURE_INVALID, NOTE_UNVERIFIED
  const [cosignature] = checkCosignatures(opened, [verifier], Date.now() / 1000); // COSIGNATURE_TIME_INVALID
  return { lines: formatNote({ text, signatures: opened.verified }).slice(text.length + 1), cosignature: cosignature! };
}

/** The log's consistency proof; a failure of the log's own is INTERNAL, not the witness's. */
async function proofFor(options: CosignOptions, oldSize: number, size: number): Promise<Uint8Array[]> {
  if (oldSize === 0 || oldSize === size) return [];
  try {
    return await options.consistencyProof(oldSize, size);
  } catch (err) {
    throw new E2EEError(ErrorCode.INTERNAL, `no consistency proof from ${oldSize} to ${size}: ${(err as Error).message}`, { cause: err });
  }
}

async function post(url: string, body: string, signal: AbortSignal): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${url}${ADD_CHECKPOINT_PATH}`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The error a witness's refusal stands for: its own code when it sent the error shape. */
function refused(status: number, text: string): E2EEError {
  let code: unknown;
  let message = `the witness answered ${status}`;
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    code = error?.code;
    if (typeof error?.message === 'string') message = `${message}: ${error.message.slice(0, 300)}`;
  } catch {
    // not the error shape
  }
  const known = typeof code === 'string' && Object.hasOwn(ErrorCode, code);
  return new E2EEError(known ? (code as ErrorCode) : ErrorCode.SERVER_ERROR, message, { details: { status } });
}

async function submitTo(witness: WitnessEndpoint, options: CosignOptions, size: number): Promise<WitnessOutcome & { lines?: string }> {
  const { vkey, url } = witness;
  const sizes = options.sizes;
  const signal = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_WITNESS_TIMEOUT_MS);
  try {
    const verifier = cosignatureVerifierFromKey(vkey);
    let oldSize = Math.min(sizes?.get(vkey) ?? 0, size);
    // Twice at most: a 409 tells the size the witness holds, and the second request proves from it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof = await proofFor(options, oldSize, size);
      const answer = await post(url, formatAddCheckpoint({ oldSize, proof, note: options.checkpoint }), signal);
      if (answer.status === 200) {
        const { lines, cosignature } = readCosignature(options.checkpoint, answer.text, verifier);
        sizes?.set(vkey, size);
        return { vkey, url, ok: true, cosignature, lines };
      }
      const held = answer.status === 409 && answer.type.startsWith(SIZE_CONTENT_TYPE) ? parseSize(answer.text) : null;
      if (held === null) throw refused(answer.status, answer.text);
      sizes?.set(vkey, held);
      if (held > size) {
        // An older checkpoint than one it saw (another instance published since), or a rollback: not cosigned either way.
        throw new E2EEError(ErrorCode.CONFLICT, `the witness cosigned a larger tree (${held}) than this checkpoint (${size})`, { details: { status: 409, witnessSize: held } });
      }
      oldSize = held;
    }
    throw new E2EEError(ErrorCode.CONFLICT, 'the witness changed its size between two requests', { details: { status: 409 } });
  } catch (err) {
    if (isE2EEError(err)) return { vkey, url, ok: false, error: err };
    const timedOut = signal.aborted;
    return { vkey, url, ok: false, error: new E2EEError(ErrorCode.NETWORK_ERROR, timedOut ? 'the witness did not answer in time' : `the witness could not be reached: ${(err as Error).message}`, { cause: err }) };
  }
}

/**
 * Submits `checkpoint` to every witness at once and merges the cosignatures that verify under
 * their pinned keys. Never throws for a witness's failure: each is in `outcomes`. Throws
 * CHECKPOINT_MALFORMED or NOTE_MALFORMED when the checkpoint itself is not one.
 */
export async function requestCosignatures(options: CosignOptions): Promise<CosignResult> {
  const { size } = parseCheckpoint(parseNote(options.checkpoint).text);
  const results = await Promise.all(options.witnesses.map((witness) => submitTo(witness, options, size)));
  let note = options.checkpoint;
  let lines = '';
  const outcomes = results.map(({ lines: more, ...outcome }): WitnessOutcome => {
    if (!outcome.ok || !more) return outcome as WitnessOutcome;
    try {
      note = mergeNotes(note, `${parseNote(note).text}\n${more}`);
      lines += more;
      return outcome as WitnessOutcome;
    } catch (err) {
      return { vkey: outcome.vkey, url: outcome.url, ok: false, error: err as E2EEError }; // NOTE_MALFORMED: over 16 signatures
    }
  });
  return { note, lines, outcomes };
}

/** What the log hands its witness hook after publishing a checkpoint (server/log.ts). */
export interface PublishedCheckpoint {
  note: string;
  size: number;
  /** The size of the checkpoint published before it, 0 at first. */
  previousSize: number;
  /** The consistency proof from previousSize to size (empty from 0). */
  consistency: Uint8Array[];
}

export interface WitnessHookOptions {
  witnesses: readonly WitnessEndpoint[];
  /** Proofs from other sizes, for a witness that missed a checkpoint (or after a restart). */
  consistencyProof?(oldSize: number, newSize: number): Uint8Array[] | Promise<Uint8Array[]>;
  timeoutMs?: number;
  /** Told each witness's outcome (a failed one is to be logged, not thrown). */
  onOutcome?(outcome: WitnessOutcome, size: number): void;
}

/**
 * The log's publishing hook: submits each new checkpoint to the witnesses and returns the
 * verified cosignature lines ("— <name> <base64>\n") to store with it. Remembers each
 * witness's size across calls. Never throws for a witness's failure.
 */
export function witnessHook(options: WitnessHookOptions): (checkpoint: PublishedCheckpoint) => Promise<string[]> {
  const sizes = new Map<string, number>();
  return async ({ note, size, previousSize, consistency }) => {
    const consistencyProof = (oldSize: number, newSize: number) => {
      if (oldSize === previousSize && newSize === size) return consistency;
      if (!options.consistencyProof) throw new Error(`the log gave no proof from ${oldSize}`);
      return options.consistencyProof(oldSize, newSize);
    };
    const result = await requestCosignatures({ checkpoint: note, witnesses: options.witnesses, consistencyProof, sizes, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
    for (const outcome of result.outcomes) options.onOutcome?.(outcome, size);
    return result.lines.split('\n').filter(Boolean).map((line) => `${line}\n`);
  };
}
