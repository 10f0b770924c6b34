/**
 * The witness (c2sp.org/tlog-witness): it cosigns a log's checkpoint only when it extends the
 * latest one it cosigned for that log, and remembers the new one before answering. The checks of
 * add-checkpoint, in the spec's order and with its statuses:
 *
 *   unknown origin 404; no valid signature of a trusted log key 403; old size above the
 *   checkpoint's 400; old size not the one it cosigned last 409 (body: that size); same size with
 *   another root 409 (a fork: kept as evidence); a consistency proof that does not verify 422.
 *
 * docs/PROTOCOL.md section 17.6, docs/API.md "Running a witness".
 */
import { NOTE_TYPE_COSIGNATURE_V1 } from '../../shared/constants.js';
import { equalBytes, utf8 } from '../../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { parseCheckpoint, type Checkpoint } from '../../shared/log-checkpoint.js';
import { cosignatureSignerFromKey, cosignatureTimestamp } from '../../shared/log-cosignature.js';
import { EMPTY_ROOT, verifyConsistency } from '../../shared/merkle.js';
import { formatNote, fromBase64, openNote, parseNote, toBase64, type NoteSigner, type NoteVerifier } from '../../shared/signed-note.js';
import { ed25519NoteVerifier, formatVerifierKey, parseVerifierKey } from '../../shared/signed-note-keys.js';
import { parseAddCheckpoint, SIZE_CONTENT_TYPE, formatSize, type AddCheckpoint } from './protocol.js';
import { lockState, MAX_FORK_EVIDENCE, readState, writeState, type WitnessState } from './state.js';

export type LogLevel = 'info' | 'warn' | 'error';
/** Where the witness reports what it did: never a key, only public checkpoints and sizes. */
export type WitnessLogger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface WitnessOptions {
  /** The witness's signer key, "PRIVATE+KEY+<name>+<key ID>+<base64>" of type 0x04 (`witness keygen`). */
  key: string;
  /** The verifier keys of the logs it witnesses (type 0x01); a log's origin is its key's name. */
  logs: readonly string[];
  /** The state file (`witness init` creates it). */
  statePath: string;
  /** Unix seconds (default: the clock). */
  now?: () => number;
  log?: WitnessLogger;
}

/** An HTTP answer. */
export interface WitnessAnswer {
  status: number;
  contentType: string;
  body: string;
}

const unixNow = () => Math.floor(Date.now() / 1000);

function refusal(status: number, code: ErrorCode, message: string): WitnessAnswer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ error: { code, message } }) };
}

/** The trusted log keys by origin. Throws NOTE_KEY_INVALID for a key that is not an Ed25519 vkey. */
export function trustedLogs(vkeys: readonly string[]): Map<string, NoteVerifier[]> {
  const logs = new Map<string, NoteVerifier[]>();
  for (const vkey of new Set(vkeys)) {
    const { name, key } = parseVerifierKey(vkey);
    logs.set(name, [...(logs.get(name) ?? []), ed25519NoteVerifier(name, key)]);
  }
  return logs;
}

/** The verifier key of the witness whose signer key is `key` (what logs and clients pin). */
export function witnessVerifierKey(key: string): string {
  const signer = cosignatureSignerFromKey(key);
  return formatVerifierKey(signer.name, NOTE_TYPE_COSIGNATURE_V1, signer.publicKey);
}

/** Creates the state file of a new witness. Throws CONFIG_INVALID when one exists at `path`. */
export function initWitnessState(path: string, key: string): WitnessState {
  const state: WitnessState = { version: 1, witness: witnessVerifierKey(key), logs: {}, forks: [] };
  writeState(path, state, { create: true });
  return state;
}

export class Witness {
  /** The witness's verifier key. */
  readonly vkey: string;
  private readonly signer: NoteSigner;
  private readonly logs: Map<string, NoteVerifier[]>;
  private readonly log: WitnessLogger;
  private readonly now: () => number;
  private state: WitnessState;
  private release: (() => void) | null;

  /** Opens the state (locked for this witness until close()). Throws CONFIG_INVALID or NOTE_KEY_INVALID. */
  constructor(private readonly options: WitnessOptions) {
    this.now = options.now ?? unixNow;
    this.signer = cosignatureSignerFromKey(options.key, this.now);
    this.vkey = witnessVerifierKey(options.key);
    this.logs = trustedLogs(options.logs);
    this.log = options.log ?? (() => {});
    this.release = lockState(options.statePath);
    try {
      this.state = readState(options.statePath);
      if (this.state.witness !== this.vkey) {
        throw new E2EEError(ErrorCode.CONFIG_INVALID, `witness state ${options.statePath} belongs to the witness ${this.state.witness}, not to this key (${this.vkey})`);
      }
    } catch (err) {
      this.close();
      throw err;
    }
    for (const fork of this.state.forks) {
      this.log('error', `FORK on record: the log ${fork.origin} signed two trees of size ${fork.size} (evidence in the state file)`, { origin: fork.origin, size: fork.size });
    }
  }

  /** The latest checkpoint cosigned per origin: size and base64 root. */
  latest(origin: string): { size: number; root: string } | null {
    const record = this.state.logs[origin];
    return record ? { size: record.size, root: record.root } : null;
  }

  /**
   * Answers an add-checkpoint request body. Synchronous from the check to the fsynced write, so
   * no other request interleaves (the spec's race that would roll the state back).
   */
  addCheckpoint(body: Uint8Array): WitnessAnswer {
    if (!this.release) return refusal(503, ErrorCode.INTERNAL, 'the witness is closed');
    let request: AddCheckpoint;
    let checkpoint: Checkpoint;
    try {
      request = parseAddCheckpoint(body);
      checkpoint = parseCheckpoint(parseNote(request.note).text);
    } catch (err) {
      if (!isE2EEError(err)) throw err;
      return refusal(err.code === ErrorCode.PAYLOAD_TOO_LARGE ? 413 : 400, err.code, err.message);
    }
    const { origin, size, rootHash } = checkpoint;
    const keys = this.logs.get(origin);
    if (!keys) return refusal(404, ErrorCode.CHECKPOINT_ORIGIN_MISMATCH, `this witness does not follow the log "${origin}"`);
    try {
      openNote(request.note, keys);
    } catch (err) {
      if (!isE2EEError(err)) throw err;
      this.log('warn', 'refused a checkpoint without a valid log signature', { origin, size });
      return refusal(403, err.code, err.message);
    }
    const { oldSize, proof } = request;
    if (oldSize > size) return refusal(400, ErrorCode.BAD_REQUEST, `the old size ${oldSize} is above the checkpoint's size ${size}`);
    const record = this.state.logs[origin];
    const [latestSize, latestRoot] = record ? [record.size, fromBase64(record.root)!] : [0, EMPTY_ROOT];
    if (oldSize !== latestSize) {
      this.log('info', 'old size is not the latest cosigned', { origin, oldSize, size, latestSize });
      return { status: 409, contentType: SIZE_CONTENT_TYPE, body: formatSize(latestSize) };
    }
    if (oldSize === 0 && proof.length > 0) return refusal(400, ErrorCode.BAD_REQUEST, 'the proof from size 0 is empty');
    if (size === latestSize && !equalBytes(rootHash, latestRoot)) {
      this.recordFork(origin, size, request.note);
      return refusal(409, ErrorCode.LOG_CONSISTENCY_INVALID, `the log signed another root for size ${size} than the one this witness cosigned: a fork`);
    }
    if (oldSize > 0) {
      try {
        verifyConsistency({ size1: oldSize, size2: size, root1: latestRoot, root2: rootHash, proof });
      } catch (err) {
        if (!isE2EEError(err)) throw err;
        this.log('error', `consistency proof from ${oldSize} to ${size} does not verify: a fork of ${origin}, or a wrong proof; not cosigned`, { origin, oldSize, size, checkpoint: request.note });
        return refusal(422, err.code, err.message);
      }
    }
    return this.cosign(origin, checkpoint, request.note);
  }

  /** Records the checkpoint (fsynced) and answers with the cosignature line. */
  private cosign(origin: string, { size, rootHash }: Checkpoint, note: string): WitnessAnswer {
    const text = parseNote(note).text;
    const signature = this.signer.sign(utf8(text));
    const line = formatNote({ text, signatures: [{ name: this.signer.name, keyId: this.signer.keyId, signature }] }).slice(text.length + 1);
    const logs = { ...this.state.logs, [origin]: { size, root: toBase64(rootHash), checkpoint: note, cosignedAt: Number(cosignatureTimestamp(signature)) } };
    if (!this.save({ ...this.state, logs })) return refusal(500, ErrorCode.INTERNAL, 'the witness could not record the checkpoint: not cosigned');
    this.log('info', 'cosigned', { origin, size });
    return { status: 200, contentType: 'text/plain; charset=utf-8', body: line };
  }

  private recordFork(origin: string, size: number, conflicting: string): void {
    const cosigned = this.state.logs[origin]?.checkpoint;
    if (cosigned === undefined) {
      // Nothing cosigned yet: an empty tree with another root than SHA-256 of nothing is no tree at all.
      this.log('error', `the log ${origin} signed an empty tree with a wrong root; not cosigned`, { origin, conflicting });
      return;
    }
    this.log('error', `FORK: the log ${origin} signed two different trees of size ${size}; not cosigned`, { origin, size, cosigned, conflicting });
    if (this.state.forks.length >= MAX_FORK_EVIDENCE || this.state.forks.some((f) => f.conflicting === conflicting)) return;
    const fork = { origin, size, detectedAt: this.now(), cosigned, conflicting };
    this.save({ ...this.state, forks: [...this.state.forks, fork] });
  }

  /** Writes the state; on failure keeps the old one (in memory and on disk) and reports it. */
  private save(next: WitnessState): boolean {
    try {
      writeState(this.options.statePath, next);
      this.state = next;
      return true;
    } catch (err) {
      this.log('error', `cannot write the state file: ${(err as Error).message}`);
      return false;
    }
  }

  /** Releases the state file's lock; answers 503 from then on. */
  close(): void {
    this.release?.();
    this.release = null;
  }
}
