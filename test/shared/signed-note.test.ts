/**
 * Signed notes (c2sp.org/signed-note) against the reference implementation's vectors
 * (golang.org/x/mod's note package, test/fixtures/signed-notes.json): its keys parse, its note
 * is signed byte for byte the same and verifies, its malformed notes and mangled keys are refused
 * with typed errors; random notes parse and print back to the same text.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { NOTE_TYPE_ED25519 } from '../../shared/constants.js';
import { ErrorCode } from '../../shared/errors.js';
import { MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES } from '../../shared/limits.js';
import { formatNote, fromBase64, mergeNotes, openNote, parseNote, signNote, toBase64 } from '../../shared/signed-note.js';
import {
  ed25519NoteSigner,
  formatSignerKey,
  formatVerifierKey,
  noteSignerFromKey,
  noteVerifierFromKey,
  parseSignerKey,
} from '../../shared/signed-note-keys.js';
import { ready } from '../../shared/sodium.js';
import { runs } from '../support/fast-check.js';
import { errorCodeOf } from '../support/errors.js';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/signed-notes.json', import.meta.url), 'utf8'));
const go = vectors.goNote as { skey: string; vkey: string; otherVkey: string; badVkeys: string[]; text: string; signatureLine: string; otherSignatureLine: string };


beforeAll(() => ready());

describe('the reference implementation vectors', () => {
  it('signs its note byte for byte as golang.org/x/mod does, with the key ID of its keys', () => {
    const signer = noteSignerFromKey(go.skey);
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(signNote(go.text, [signer])).toBe(`${go.text}\n${go.signatureLine}`);
    expect(formatVerifierKey(signer.name, NOTE_TYPE_ED25519, signer.publicKey)).toBe(go.vkey);
    expect(formatSignerKey(signer.name, NOTE_TYPE_ED25519, parseSignerKey(go.skey).key)).toBe(go.skey);
  });

  it('verifies known keys, ignores unknown ones, and refuses a note no known key signed', () => {
    const [peter, enoch] = [noteVerifierFromKey(go.vkey), noteVerifierFromKey(go.otherVkey)];
    const note = `${go.text}\n${go.signatureLine}${go.otherSignatureLine}`;
    const one = openNote(note, [peter]);
    expect(one.text).toBe(go.text);
    expect(one.verified.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
    expect(one.unverified.map((s) => [s.name, s.keyId])).toEqual([['EnochRoot', 0xaf0cfe78]]);
    expect(openNote(note, [peter, enoch]).verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(errorCodeOf(() => openNote(note, []))).toBe(ErrorCode.NOTE_UNVERIFIED);
    expect(errorCodeOf(() => openNote(`${go.text}\n${go.signatureLine}`, [enoch]))).toBe(ErrorCode.NOTE_UNVERIFIED);
    expect(errorCodeOf(() => openNote(note, [enoch, peter, enoch]))).toBe(ErrorCode.INVALID_ARGUMENT);
    // Repeated lines count once.
    expect(openNote(`${go.text}\n${go.signatureLine}${go.signatureLine}`, [peter]).verified).toHaveLength(1);
  });

  it('refuses the whole note when a known key signature fails, even beside a good one', () => {
    const peter = noteVerifierFromKey(go.vkey);
    const bad = go.signatureLine.slice(0, 60) + 'ABCD' + go.signatureLine.slice(60);
    expect(errorCodeOf(() => openNote(`${go.text}\n${bad}`, [peter]))).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);
    expect(errorCodeOf(() => openNote(`${go.text}\n${go.signatureLine}${bad}`, [peter]))).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);
    expect(errorCodeOf(() => openNote(`${go.text.replace('answer', 'Answer')}\n${go.signatureLine}`, [peter]))).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);
  });

  it('refuses its malformed notes with NOTE_MALFORMED', () => {
    const peter = noteVerifierFromKey(go.vkey);
    const bad = [
      go.text,
      go.text + '\n',
      go.text + '\n' + go.signatureLine.slice(0, -1),
      '\x01' + go.text + '\n' + go.signatureLine,
      go.text + '\n' + go.signatureLine.replace('PeterNeumann', 'Bad Name'),
      go.text + '\n' + go.signatureLine + 'Unexpected line.\n',
      go.text + '\n' + go.signatureLine.replace('PeterNeumann', 'Peter+Neumann'),
      go.text + '\n' + go.signatureLine.replace('=\n', '\n'), // unpadded base64
      go.text + '\n' + '— PeterNeumann AAAAAA==\n', // a key ID and no signature
      go.text + '\n' + go.signatureLine.repeat(MAX_NOTE_SIGNATURES + 1),
      'x'.repeat(MAX_NOTE_BYTES) + '\n\n' + go.signatureLine,
    ];
    for (const note of bad) expect(errorCodeOf(() => openNote(note, [peter])), JSON.stringify(note.slice(0, 80))).toBe(ErrorCode.NOTE_MALFORMED);
    const invalidUtf8 = new Uint8Array([0xff, ...new TextEncoder().encode(`${go.text}\n${go.signatureLine}`)]);
    expect(errorCodeOf(() => openNote(invalidUtf8, [peter]))).toBe(ErrorCode.NOTE_MALFORMED);
    expect(openNote(new TextEncoder().encode(`${go.text}\n${go.signatureLine}`), [peter]).text).toBe(go.text);
  });

  it('refuses every mangled verifier key with NOTE_KEY_INVALID', () => {
    const manglings = new Set(go.badVkeys);
    for (let i = 0; i <= go.vkey.length; i++) for (let j = i + 1; j <= go.vkey.length; j++) if (i !== 0 || j !== go.vkey.length) manglings.add(go.vkey.slice(i, j));
    for (let i = 0; i < go.vkey.length; i++) manglings.add(go.vkey.slice(0, i) + String.fromCharCode(go.vkey.charCodeAt(i) + 1) + go.vkey.slice(i + 1));
    for (const key of manglings) expect(errorCodeOf(() => noteVerifierFromKey(key)), key).toBe(ErrorCode.NOTE_KEY_INVALID);
    expect(errorCodeOf(() => noteSignerFromKey(go.skey.replace('c74f20a3', 'c74f20a4')))).toBe(ErrorCode.NOTE_KEY_INVALID);
    expect(errorCodeOf(() => noteSignerFromKey(go.vkey))).toBe(ErrorCode.NOTE_KEY_INVALID);
    expect(errorCodeOf(() => noteVerifierFromKey(42 as unknown as string))).toBe(ErrorCode.NOTE_KEY_INVALID);
  });
});

describe('notes of our own', () => {
  const seed = (n: number) => new Uint8Array(32).fill(n);

  it('merges a second signer’s lines into a note, once each', () => {
    const [a, b] = [ed25519NoteSigner('a.example/log', seed(1)), ed25519NoteSigner('b.example/w', seed(2))];
    const text = 'one\n\ntwo\n'; // a blank line inside the text: the last one separates
    const merged = mergeNotes(signNote(text, [a]), signNote(text, [b, a]));
    expect(parseNote(merged).signatures.map((s) => s.name)).toEqual(['a.example/log', 'b.example/w']);
    expect(openNote(merged, [a, b].map((s) => noteVerifierFromKey(formatVerifierKey(s.name, NOTE_TYPE_ED25519, s.publicKey)))).text).toBe(text);
    expect(errorCodeOf(() => mergeNotes(merged, signNote('other\n', [b])))).toBe(ErrorCode.NOTE_MALFORMED);
    expect(errorCodeOf(() => signNote('no newline', [a]))).toBe(ErrorCode.NOTE_MALFORMED);
    expect(errorCodeOf(() => signNote('a\tb\n', [a]))).toBe(ErrorCode.NOTE_MALFORMED);
  });

  it('reads standard base64 strictly: padded, no stray bits', () => {
    expect(fromBase64('AQ==')).toEqual(new Uint8Array([1]));
    for (const text of ['AQ', 'AR==', 'AQ=', 'A Q==', 'AQ==\n', '-_8=']) expect(fromBase64(text), text).toBeNull();
    expect(toBase64(new Uint8Array([0xfb, 0xff]))).toBe('+/8=');
  });

  it('prints any note it parses back to the same text, and refuses the rest with NOTE_MALFORMED only', () => {
    const name = fc.stringMatching(/^[a-z0-9./_-]{1,20}$/);
    const line = fc.string({ maxLength: 30 }).filter((s) => !/[\u0000-\u001f]/.test(s));
    const note = fc.record({
      text: fc.array(line, { minLength: 1, maxLength: 5 }).map((lines) => lines.join('\n') + '\n'),
      signatures: fc.array(fc.record({ name, keyId: fc.nat(0xffffffff), signature: fc.uint8Array({ minLength: 1, maxLength: 80 }) }), { minLength: 1, maxLength: 4 }),
    });
    fc.assert(
      fc.property(note, (n) => {
        const text = formatNote(n);
        const parsed = parseNote(text);
        expect(parsed.text).toBe(n.text);
        expect(parsed.signatures).toEqual(n.signatures);
        expect(formatNote(parsed)).toBe(text);
      }),
      { numRuns: runs(200) },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const code = errorCodeOf(() => formatNote(parseNote(text)) === text || expect.fail('not printed back'));
        expect(['ok', ErrorCode.NOTE_MALFORMED]).toContain(code);
      }),
      { numRuns: runs(300) },
    );
  });
});
