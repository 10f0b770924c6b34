/**
 * The add-checkpoint request of c2sp.org/tlog-witness, the one call between a log and a witness:
 *
 *   POST <submission prefix>/add-checkpoint
 *   old <size>\n  <base64 consistency proof hash>\n ...  \n  <signed checkpoint note>
 *
 * answered with the witness's cosignature lines (200), or the size it last cosigned (409,
 * text/x.tlog.size). Both the witness (server.ts) and the log's client (log-client.ts) read and
 * write it here. docs/PROTOCOL.md section 17.6.
 */
import { MERKLE_HASH_BYTES } from '../../shared/constants.js';
import { fromUtf8, utf8 } from '../../shared/encoding.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { MAX_NOTE_BYTES } from '../../shared/limits.js';
import { fromBase64, toBase64 } from '../../shared/signed-note.js';

/** The path after the submission prefix. */
export const ADD_CHECKPOINT_PATH = '/add-checkpoint';
/** The content type of a 409 answer: the witness's latest cosigned size and a newline. */
export const SIZE_CONTENT_TYPE = 'text/x.tlog.size';
/** A consistency proof has at most 63 hashes (the spec's limit: trees below 2^63). */
export const MAX_PROOF_LINES = 63;
/** A request body: the old size line, 63 proof lines and the largest note, with room to spare. */
export const MAX_ADD_CHECKPOINT_BYTES = MAX_NOTE_BYTES + 4096;

/** What a log submits: the size the witness last cosigned, the proof from it, the signed checkpoint. */
export interface AddCheckpoint {
  oldSize: number;
  /** The RFC 6962 consistency proof from `oldSize` to the checkpoint's size (empty from 0). */
  proof: Uint8Array[];
  /** The checkpoint as a signed note (the log's signature, perhaps others'). */
  note: string;
}

const SIZE = /^(?:0|[1-9][0-9]*)$/;

function bad(message: string): E2EEError {
  return new E2EEError(ErrorCode.BAD_REQUEST, message);
}

/** The request body. Throws BAD_REQUEST for what parseAddCheckpoint would refuse. */
export function formatAddCheckpoint({ oldSize, proof, note }: AddCheckpoint): string {
  const body = `old ${oldSize}\n${proof.map((hash) => `${toBase64(hash)}\n`).join('')}\n${note}`;
  parseAddCheckpoint(utf8(body));
  return body;
}

/**
 * The request body, strictly: "old <decimal>" without leading zeros, at most 63 proof lines each
 * base64 of 32 bytes, an empty line, then the note (checked later, as a note and a checkpoint).
 * Throws BAD_REQUEST.
 */
export function parseAddCheckpoint(body: Uint8Array): AddCheckpoint {
  if (body.length > MAX_ADD_CHECKPOINT_BYTES) throw new E2EEError(ErrorCode.PAYLOAD_TOO_LARGE, `the body is at most ${MAX_ADD_CHECKPOINT_BYTES} bytes`);
  let text: string;
  try {
    text = fromUtf8(body);
  } catch {
    throw bad('the body is not UTF-8');
  }
  const end = text.indexOf('\n\n');
  if (end < 0) throw bad('the body is an old size line, proof lines, an empty line and a checkpoint');
  const [oldLine, ...proofLines] = text.slice(0, end).split('\n');
  const old = /^old (\S+)$/.exec(oldLine!)?.[1];
  if (old === undefined || !SIZE.test(old) || !Number.isSafeInteger(Number(old))) throw bad('the first line is "old <size>", a decimal below 2^53');
  if (proofLines.length > MAX_PROOF_LINES) throw bad(`a consistency proof has at most ${MAX_PROOF_LINES} hashes`);
  const proof = proofLines.map((line, i) => {
    const hash = fromBase64(line);
    if (!hash || hash.length !== MERKLE_HASH_BYTES) throw bad(`proof line ${i + 1} is not base64 of a 32-byte hash`);
    return hash;
  });
  return { oldSize: Number(old), proof, note: text.slice(end + 2) };
}

/** The body of a 409 answer: "<size>\n". */
export function formatSize(size: number): string {
  return `${size}\n`;
}

/** The size in a 409 answer, or null when the body is not one. */
export function parseSize(body: string): number | null {
  const match = /^(0|[1-9][0-9]*)\n$/.exec(body);
  return match && Number.isSafeInteger(Number(match[1])) ? Number(match[1]) : null;
}
