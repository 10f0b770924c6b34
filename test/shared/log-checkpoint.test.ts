/**
 * Checkpoints (c2sp.org/tlog-checkpoint) and witness cosignatures (c2sp.org/tlog-cosignature):
 * real checkpoints of the Go checksum database open under its published key, the C2SP examples
 * parse, ours are signed and cosigned in the format other implementations check (verified here
 * with node:crypto over the message built by hand from the spec), and every departure from the
 * format or the trust given is refused with its typed error.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NOTE_TYPE_COSIGNATURE_V1, NOTE_TYPE_ED25519 } from '../../shared/constants.js';
import { ErrorCode } from '../../shared/errors.js';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint } from '../../shared/log-checkpoint.js';
import {
  cosignatureSigner,
  cosignatureSignerFromKey,
  cosignatureTimestamp,
  cosignatureVerifier,
  cosignatureVerifierFromKey,
} from '../../shared/log-cosignature.js';
import { MerkleTree, leafHash } from '../../shared/merkle.js';
import { mergeNotes, parseNote, signNote } from '../../shared/signed-note.js';
import { ed25519NoteSigner, ed25519NoteVerifier, formatSignerKey, formatVerifierKey, noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import { ready } from '../../shared/sodium.js';
import { errorCodeOf } from '../support/errors.js';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/signed-notes.json', import.meta.url), 'utf8'));
const sumdb = vectors.sumdb as { vkey: string; origin: string; checkpoints: Array<{ size: number; note: string }> };
const c2sp = vectors.c2sp as { checkpoint: string; cosigned: string; cosignatureTimestamp: number };


const ORIGIN = 'cards.example.com/log';
const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z
const seed = (n: number) => new Uint8Array(32).fill(n);
const tree = new MerkleTree(['a', 'b', 'c'].map((s) => leafHash(new TextEncoder().encode(s))));
const checkpoint: Checkpoint = { origin: ORIGIN, size: 3, rootHash: tree.root(), extensions: [] };

await ready(); // the keys below are made while the suites are collected

describe('checkpoints', () => {
  it('opens real checkpoints of the Go checksum database under its published key', () => {
    const log = noteVerifierFromKey(sumdb.vkey);
    for (const { size, note } of sumdb.checkpoints) {
      const { checkpoint: cp, cosignatures } = openCheckpoint(note, { origin: sumdb.origin, log });
      expect(cp.size).toBe(size);
      expect(cp.rootHash).toHaveLength(32);
      expect(cosignatures).toEqual([]);
    }
    expect(errorCodeOf(() => openCheckpoint(sumdb.checkpoints[0]!.note, { origin: ORIGIN, log }))).toBe(ErrorCode.CHECKPOINT_ORIGIN_MISMATCH);
  });

  it('parses the C2SP example, whose key it does not hold', () => {
    const { text } = parseNote(c2sp.checkpoint);
    expect(parseCheckpoint(text)).toMatchObject({ origin: 'example.com/behind-the-sofa', size: 20852163, extensions: [] });
    expect(formatCheckpoint(parseCheckpoint(text))).toBe(text);
    const stranger = ed25519NoteVerifier('example.com/behind-the-sofa', ed25519NoteSigner('x', seed(9)).publicKey);
    expect(errorCodeOf(() => openCheckpoint(c2sp.checkpoint, { origin: 'example.com/behind-the-sofa', log: stranger }))).toBe(ErrorCode.NOTE_UNVERIFIED);
  });

  it('signs ours under the origin and opens it only with the pinned log key', () => {
    const logKey = ed25519NoteSigner(ORIGIN, seed(1));
    const note = signCheckpoint(checkpoint, logKey);
    const log = noteVerifierFromKey(formatVerifierKey(ORIGIN, NOTE_TYPE_ED25519, logKey.publicKey));
    expect(openCheckpoint(note, { origin: ORIGIN, log }).checkpoint).toEqual(checkpoint);
    expect(errorCodeOf(() => openCheckpoint(note, { origin: ORIGIN, log: ed25519NoteVerifier(ORIGIN, ed25519NoteSigner(ORIGIN, seed(2)).publicKey) }))).toBe(ErrorCode.NOTE_UNVERIFIED);
    expect(errorCodeOf(() => openCheckpoint(note.replace('\n3\n', '\n4\n'), { origin: ORIGIN, log }))).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);
    expect(errorCodeOf(() => signCheckpoint(checkpoint, ed25519NoteSigner('other.example/log', seed(1))))).toBe(ErrorCode.INVALID_ARGUMENT);
    // Signed by the log key but not a checkpoint: refused after the signature, as text.
    expect(errorCodeOf(() => openCheckpoint(signNote(`${ORIGIN}\n03\n`, [logKey]), { origin: ORIGIN, log }))).toBe(ErrorCode.CHECKPOINT_MALFORMED);
  });

  it('refuses every malformed checkpoint text with CHECKPOINT_MALFORMED', () => {
    const root = Buffer.from(tree.root()).toString('base64');
    const bad = [
      `${ORIGIN}\n3\n${root}`, // no final newline
      `${ORIGIN}\n3\n`, // no root
      `\n3\n${root}\n`, // empty origin
      `${ORIGIN}\n03\n${root}\n`,
      `${ORIGIN}\n-1\n${root}\n`,
      `${ORIGIN}\n3.0\n${root}\n`,
      `${ORIGIN}\n+3\n${root}\n`,
      `${ORIGIN}\n9007199254740992\n${root}\n`, // 2^53
      `${ORIGIN}\n3\n${root.slice(0, -1)}\n`, // unpadded
      `${ORIGIN}\n3\n${Buffer.alloc(31).toString('base64')}\n`,
      `${ORIGIN}\n3\n${root.slice(0, 42)}B=\n`, // non-zero unused bits
      `${ORIGIN}\n3\n${root}\n\n`, // empty extension line
    ];
    for (const text of bad) expect(errorCodeOf(() => parseCheckpoint(text)), JSON.stringify(text)).toBe(ErrorCode.CHECKPOINT_MALFORMED);
    expect(parseCheckpoint(`${ORIGIN}\n0\n${root}\next one\next two\n`)).toMatchObject({ size: 0, extensions: ['ext one', 'ext two'] });
    expect(errorCodeOf(() => formatCheckpoint({ ...checkpoint, origin: 'a\nb' }))).toBe(ErrorCode.CHECKPOINT_MALFORMED);
    expect(errorCodeOf(() => formatCheckpoint({ ...checkpoint, size: 1.5 }))).toBe(ErrorCode.CHECKPOINT_MALFORMED);
  });
});

describe('witness cosignatures', () => {
  const logKey = ed25519NoteSigner(ORIGIN, seed(1));
  const log = ed25519NoteVerifier(ORIGIN, logKey.publicKey);
  const witnessName = 'witness.example.org/w1';

  it('cosign in the cosignature/v1 format: key ID with type 0x04, u64 time, Ed25519 over header, time line and text', () => {
    const witness = cosignatureSigner(witnessName, seed(3), () => NOW);
    const note = signCheckpoint(checkpoint, logKey);
    const cosigned = mergeNotes(note, signNote(parseNote(note).text, [witness]));
    const line = parseNote(cosigned).signatures[1]!;

    // Checked without our code: node:crypto, and the message written out from the spec.
    const keyId = createHash('sha256').update(Buffer.concat([Buffer.from(`${witnessName}\n`), Buffer.from([0x04]), witness.publicKey])).digest().readUInt32BE(0);
    expect(line.keyId).toBe(keyId);
    expect(Buffer.from(line.signature.subarray(0, 8)).readBigUInt64BE()).toBe(BigInt(NOW));
    const message = `cosignature/v1\ntime ${NOW}\n${ORIGIN}\n3\n${Buffer.from(tree.root()).toString('base64')}\n`;
    const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), witness.publicKey]), format: 'der', type: 'spki' });
    expect(verify(null, Buffer.from(message), spki, line.signature.subarray(8))).toBe(true);

    const trusted = cosignatureVerifierFromKey(formatVerifierKey(witnessName, NOTE_TYPE_COSIGNATURE_V1, witness.publicKey));
    expect(openCheckpoint(cosigned, { origin: ORIGIN, log, witnesses: [trusted], now: NOW }).cosignatures).toEqual([{ name: witnessName, keyId, timestamp: NOW }]);
    // Without the witness trusted its line is ignored; with the wrong key it fails.
    expect(openCheckpoint(cosigned, { origin: ORIGIN, log, now: NOW }).cosignatures).toEqual([]);
    const impostor = cosignatureVerifier(witnessName, cosignatureSigner(witnessName, seed(4)).publicKey);
    expect(openCheckpoint(cosigned, { origin: ORIGIN, log, witnesses: [impostor], now: NOW }).cosignatures).toEqual([]);
  });

  it('refuse a cosignature dated beyond the skew, a tampered one, and a note only a witness signed', () => {
    const witness = cosignatureSigner(witnessName, seed(3), () => NOW + 601);
    const trusted = cosignatureVerifier(witnessName, witness.publicKey);
    const note = signCheckpoint(checkpoint, logKey);
    const cosigned = mergeNotes(note, signNote(parseNote(note).text, [witness]));
    expect(errorCodeOf(() => openCheckpoint(cosigned, { origin: ORIGIN, log, witnesses: [trusted], now: NOW }))).toBe(ErrorCode.COSIGNATURE_TIME_INVALID);
    expect(openCheckpoint(cosigned, { origin: ORIGIN, log, witnesses: [trusted], now: NOW + 1 }).cosignatures).toHaveLength(1);

    // Changing the signed time breaks the signature.
    const [logLine, witnessLine] = cosigned.split('\n\n')[1]!.split('\n');
    const sig = Buffer.from(witnessLine!.split(' ')[2]!, 'base64');
    sig.writeBigUInt64BE(BigInt(NOW), 4);
    const moved = `${parseNote(note).text}\n${logLine}\n— ${witnessName} ${sig.toString('base64')}\n`;
    expect(errorCodeOf(() => openCheckpoint(moved, { origin: ORIGIN, log, witnesses: [trusted], now: NOW }))).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);

    const witnessOnly = signNote(parseNote(note).text, [witness]);
    expect(errorCodeOf(() => openCheckpoint(witnessOnly, { origin: ORIGIN, log, witnesses: [trusted], now: NOW + 1 }))).toBe(ErrorCode.NOTE_UNVERIFIED);
    expect(errorCodeOf(() => signNote('two\nlines\n', [witness]))).toBe(ErrorCode.CHECKPOINT_MALFORMED);
  });

  it('read the C2SP example cosignature and keep signer keys of type 0x04 apart from 0x01', () => {
    const [, example] = parseNote(c2sp.cosigned).signatures;
    expect(example!.name).toBe('witness.example.com/w1');
    expect(cosignatureTimestamp(example!.signature)).toBe(BigInt(c2sp.cosignatureTimestamp));

    const skey = formatSignerKey(witnessName, NOTE_TYPE_COSIGNATURE_V1, seed(3));
    expect(cosignatureSignerFromKey(skey).publicKey).toEqual(cosignatureSigner(witnessName, seed(3)).publicKey);
    const plain = formatVerifierKey(witnessName, NOTE_TYPE_ED25519, cosignatureSigner(witnessName, seed(3)).publicKey);
    expect(errorCodeOf(() => cosignatureVerifierFromKey(plain))).toBe(ErrorCode.NOTE_KEY_INVALID);
    expect(errorCodeOf(() => cosignatureSignerFromKey(formatSignerKey(witnessName, NOTE_TYPE_ED25519, seed(3))))).toBe(ErrorCode.NOTE_KEY_INVALID);
  });
});
