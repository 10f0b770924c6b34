/**
 * The witness's state file: for each log (by origin) the latest checkpoint it cosigned, and the
 * evidence of forks it was shown. It is the witness's memory of what it vouched for, so it is
 * never rolled back: each change is written to a new file, fsynced and renamed over the old one
 * (then the directory fsynced), a missing file is an error rather than a fresh start (`init`
 * creates it), and a lock file keeps a second process off it.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MERKLE_HASH_BYTES } from '../../shared/constants.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { fromBase64 } from '../../shared/signed-note.js';

/** The latest checkpoint a witness cosigned for one log. */
export interface LogRecord {
  size: number;
  /** Base64 of the root hash. */
  root: string;
  /** The signed checkpoint note as the log submitted it. */
  checkpoint: string;
  /** When it was cosigned, Unix seconds. */
  cosignedAt: number;
}

/** Two checkpoints, both signed by the log, for the same size with different roots. */
export interface ForkEvidence {
  origin: string;
  size: number;
  detectedAt: number;
  /** The checkpoint the witness cosigned. */
  cosigned: string;
  /** The one that conflicts with it. */
  conflicting: string;
}

export interface WitnessState {
  version: 1;
  /** The verifier key of the witness this state belongs to. */
  witness: string;
  logs: Record<string, LogRecord>;
  forks: ForkEvidence[];
}

/** Forks kept as evidence in the file (each is proof the log misbehaved; more go to the log only). */
export const MAX_FORK_EVIDENCE = 32;

function stateError(path: string, message: string): E2EEError {
  return new E2EEError(ErrorCode.CONFIG_INVALID, `witness state ${path}: ${message}`);
}

function isRecord(value: unknown): value is LogRecord {
  const r = value as LogRecord;
  const root = typeof r?.root === 'string' ? fromBase64(r.root) : null;
  return Number.isSafeInteger(r?.size) && r.size >= 0 && root?.length === MERKLE_HASH_BYTES && typeof r.checkpoint === 'string' && Number.isSafeInteger(r.cosignedAt);
}

/** Reads and checks the state file. Throws CONFIG_INVALID when it is missing, unreadable or not a state file. */
export function readState(path: string): WitnessState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw stateError(path, code === 'ENOENT' ? 'does not exist (`witness init` creates it; never recreate the state of a witness in use)' : `cannot be read (${code})`);
  }
  let state: WitnessState;
  try {
    state = JSON.parse(text) as WitnessState;
  } catch {
    throw stateError(path, 'is not JSON');
  }
  const logs = state?.logs;
  if (state?.version !== 1 || typeof state.witness !== 'string' || typeof logs !== 'object' || logs === null || !Array.isArray(state.forks)) {
    throw stateError(path, 'is not a version 1 witness state');
  }
  for (const [origin, record] of Object.entries(logs)) if (!isRecord(record)) throw stateError(path, `the record of "${origin}" is malformed`);
  return state;
}

/** Writes `state` in place of the file, atomically and durably (a crash leaves the old or the new file, whole). */
export function writeState(path: string, state: WitnessState, options: { create?: boolean } = {}): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    // A new state is linked into place, which fails if one exists: replacing it would forget what the witness cosigned.
    if (options.create) linkSync(temp, path);
    else renameSync(temp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw stateError(path, code === 'EEXIST' ? 'exists already: a witness state is never replaced' : `cannot be written (${code})`);
  } finally {
    rmSync(temp, { force: true });
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** The lock files this process holds (a lock naming this pid is otherwise a stale one, as after a container restart). */
const held = new Set<string>();

/** Whether process `pid` runs (signal 0 checks without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a lock file names, or null (gone meanwhile, or unreadable). */
function lockHolder(lock: string): number | null {
  try {
    return Number(readFileSync(lock, 'utf8').trim());
  } catch {
    return null;
  }
}

/**
 * Takes `<path>.lock` for this process, so two witnesses never share one state (each would roll
 * the other back). A lock left by a process that no longer runs is taken over. Returns the release.
 */
export function lockState(path: string): () => void {
  const lock = `${path}.lock`;
  if (held.has(lock)) throw stateError(path, 'is in use by another witness in this process');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      held.add(lock);
      return () => {
        held.delete(lock);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw stateError(path, `cannot create the lock file ${lock} (${(err as NodeJS.ErrnoException).code})`);
    }
    const pid = lockHolder(lock);
    if (pid !== null && Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw stateError(path, `is in use by another witness process (pid ${pid}, ${lock})`);
    }
    rmSync(lock, { force: true }); // left by a process that is gone
  }
  throw stateError(path, `cannot take the lock file ${lock}`);
}
