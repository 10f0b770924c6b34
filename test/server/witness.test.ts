/**
 * The witness (c2sp.org/tlog-witness add-checkpoint) against a real witness server and its state
 * file, fed by the log's own client (server/witness/log-client.ts) or by hand-made bodies: it
 * cosigns a growing log, refuses rollbacks and forks with the spec's statuses and keeps refusing
 * after a restart, refuses bad log signatures and malformed bodies with typed errors, and its
 * cosignatures verify with shared/log-cosignature.ts.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import { openCheckpoint, signCheckpoint } from '../../shared/log-checkpoint.js';
import { cosignatureVerifierFromKey } from '../../shared/log-cosignature.js';
import { ed25519NoteSigner, noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import { fromBase64, toBase64 } from '../../shared/signed-note.js';
import { ready } from '../../shared/sodium.js';
import { formatAddCheckpoint } from '../../server/witness/protocol.js';
import { requestCosignatures } from '../../server/witness/log-client.js';
import { readState } from '../../server/witness/state.js';
import { addCheckpoint, removeTempDirs, startWitness, tempDir, TestLog, witnessKey, type RunningWitness } from './witness.fixtures.js';

beforeAll(ready);
afterAll(removeTempDirs);

const running: RunningWitness[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.close()));
});

async function setUp(now?: () => number) {
  const log = new TestLog();
  const { key, vkey } = witnessKey();
  const statePath = join(tempDir(), 'witness-state.json');
  const w = await startWitness({ key, logs: [log.vkey], statePath, init: true, ...(now ? { now } : {}) });
  running.push(w);
  const endpoint = { url: w.url, vkey };
  const submit = (checkpoint: string, sizes = new Map<string, number>()) =>
    requestCosignatures({ checkpoint, witnesses: [endpoint], consistencyProof: log.proof, sizes, timeoutMs: 5_000 });
  const restart = async () => {
    await w.close();
    running.splice(running.indexOf(w), 1);
    const again = await startWitness({ key, logs: [log.vkey], statePath });
    running.push(again);
    return again;
  };
  return { log, key, vkey, statePath, w, endpoint, submit, restart };
}

/** Opens a cosigned checkpoint with the pinned LogKey and witness key: its size and cosignature times. */
function opened(note: string, log: TestLog, vkey: string) {
  const { checkpoint, cosignatures } = openCheckpoint(note, { origin: log.origin, log: noteVerifierFromKey(log.vkey), witnesses: [cosignatureVerifierFromKey(vkey)] });
  return { size: checkpoint.size, times: cosignatures.map((c) => c.timestamp) };
}

describe('the witness cosigns a growing log', () => {
  it('cosigns each checkpoint that extends the last, and the cosignature verifies with the pinned witness key', async () => {
    const now = 1_760_000_000;
    const { log, vkey, statePath, submit } = await setUp(() => now);
    const sizes = new Map<string, number>();
    for (const grow of [1, 4, 12, 83, 0, 1]) {
      log.grow(grow);
      const result = await submit(log.checkpoint(), sizes);
      expect(result.outcomes.map((o) => o.ok)).toEqual([true]);
      expect(opened(result.note, log, vkey)).toEqual({ size: log.tree.size, times: [now] });
      // Persisted before the answer: the file on disk already holds the new checkpoint.
      expect(readState(statePath).logs[log.origin]).toMatchObject({ size: log.tree.size, checkpoint: log.checkpoint(), cosignedAt: now });
    }
    expect(sizes.get(vkey)).toBe(101);
  });

  it('answers a log that lost track with 409 and its size, and the log client proves from there', async () => {
    const { log, vkey, w, submit } = await setUp();
    await submit(log.grow(10).checkpoint());
    const stale = await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 0, proof: [], note: log.grow(5).checkpoint() }));
    expect(stale).toEqual({ status: 409, type: 'text/x.tlog.size', text: '10\n' });
    // A fresh client (the log restarted) learns the size from the 409 and sends a proof from 10.
    const sizes = new Map<string, number>();
    const result = await submit(log.checkpoint(), sizes);
    expect(result.outcomes[0]).toMatchObject({ ok: true });
    expect(opened(result.note, log, vkey).size).toBe(15);
    expect(sizes.get(vkey)).toBe(15);
  });

  it('cosigns the same checkpoint again, and an empty log (not one with a wrong root)', async () => {
    const { log, vkey, w, statePath, submit } = await setUp();
    const bogus = signCheckpoint({ origin: log.origin, size: 0, rootHash: new Uint8Array(32).fill(7), extensions: [] }, ed25519NoteSigner(log.origin, log.seed));
    const refused = await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 0, proof: [], note: bogus }));
    expect([refused.status, JSON.parse(refused.text).error.code]).toEqual([409, ErrorCode.LOG_CONSISTENCY_INVALID]);
    expect(readState(statePath)).toMatchObject({ logs: {}, forks: [] });
    expect((await submit(log.checkpoint(0))).outcomes[0]!.ok).toBe(true);
    log.grow(3);
    const sizes = new Map<string, number>();
    await submit(log.checkpoint(), sizes);
    const again = await submit(log.checkpoint(), sizes);
    expect(opened(again.note, log, vkey).size).toBe(3);
  });

  it('answers one of two racing requests from the same size and refuses the other, never rolling back', async () => {
    const { log, w, statePath, submit } = await setUp();
    await submit(log.grow(20).checkpoint());
    const [a, b] = [log.grow(5).checkpoint(), log.grow(5).checkpoint()];
    const answers = await Promise.all([
      addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 20, proof: log.proof(20, 25), note: a })),
      addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 20, proof: log.proof(20, 30), note: b })),
    ]);
    expect(answers.map((x) => x.status).sort()).toEqual([200, 409]);
    const won = answers[0]!.status === 200 ? 25 : 30;
    expect(readState(statePath).logs[log.origin]!.size).toBe(won);
  });
});

describe('the witness refuses rollbacks and forks', () => {
  it('refuses an older checkpoint: 400 when the old size is above it, 409 with its size otherwise', async () => {
    const { log, vkey, w, submit } = await setUp();
    const sizes = new Map<string, number>();
    await submit(log.grow(100).checkpoint(), sizes);
    const older = log.checkpoint(60);
    const above = await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 100, proof: [], note: older }));
    expect(above.status).toBe(400);
    expect(JSON.parse(above.text).error.code).toBe(ErrorCode.BAD_REQUEST);
    expect(await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 50, proof: log.proof(50, 60), note: older }))).toMatchObject({ status: 409, text: '100\n' });
    // The log client reports the witness's larger tree, and cosigns nothing.
    const result = await submit(older, new Map());
    expect(result.outcomes[0]).toMatchObject({ ok: false, error: { code: ErrorCode.CONFLICT, details: { witnessSize: 100 } } });
    expect(result.note).toBe(older);
    expect(sizes.get(vkey)).toBe(100);
  });

  it('refuses a second root at the same size (409, kept as evidence) and an inconsistent proof (422), also after a restart', async () => {
    const { log, w, statePath, submit, restart } = await setUp();
    const sizes = new Map<string, number>();
    await submit(log.grow(100).checkpoint(), sizes);
    const cosigned = log.checkpoint();
    const forked = log.fork(99).grow(1, 'rogue');
    const sameSize = await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 100, proof: [], note: forked.checkpoint() }));
    expect(sameSize.status).toBe(409);
    expect(sameSize.type).toContain('application/json');
    expect(JSON.parse(sameSize.text).error.code).toBe(ErrorCode.LOG_CONSISTENCY_INVALID);
    expect(readState(statePath).forks).toEqual([expect.objectContaining({ origin: log.origin, size: 100, cosigned, conflicting: forked.checkpoint() })]);
    expect(w.logs.some((line) => line.includes('"level":"error"') && line.includes('FORK'))).toBe(true);

    // A longer fork: its own consistency proof from 100 does not hold for the root the witness cosigned.
    forked.grow(30, 'rogue');
    const inconsistent = formatAddCheckpoint({ oldSize: 100, proof: forked.proof(100, 130), note: forked.checkpoint() });
    const refused = await addCheckpoint(w.url, inconsistent);
    expect(refused.status).toBe(422);
    expect(JSON.parse(refused.text).error.code).toBe(ErrorCode.LOG_CONSISTENCY_INVALID);

    const again = await restart();
    expect(again.logs.some((line) => line.includes('FORK on record'))).toBe(true);
    expect((await addCheckpoint(again.url, inconsistent)).status).toBe(422);
    expect((await addCheckpoint(again.url, formatAddCheckpoint({ oldSize: 100, proof: [], note: forked.checkpoint(100) }))).status).toBe(409);
    // Only the refusals were written: the witness still holds, and extends, what it cosigned.
    expect(readState(statePath).logs[log.origin]!.checkpoint).toBe(cosigned);
    const honest = await requestCosignatures({ checkpoint: log.grow(30).checkpoint(), witnesses: [{ url: again.url, vkey: readState(statePath).witness }], consistencyProof: log.proof, sizes });
    expect(honest.outcomes[0]!.ok).toBe(true);
    expect(readState(statePath).forks).toHaveLength(1);
  });
});

describe('the witness refuses what a trusted log did not sign', () => {
  it('404 for an unknown origin, 403 for another key or a signature that does not verify', async () => {
    const { log, w, statePath } = await setUp();
    const body = (note: string) => formatAddCheckpoint({ oldSize: 0, proof: [], note });
    const stranger = new TestLog('other.example.com/log').grow(3);
    const unknown = await addCheckpoint(w.url, body(stranger.checkpoint()));
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text).error.code).toBe(ErrorCode.CHECKPOINT_ORIGIN_MISMATCH);

    const impostor = new TestLog(log.origin).grow(3); // same origin, its own key
    const other = await addCheckpoint(w.url, body(impostor.checkpoint()));
    expect(other.status).toBe(403);
    expect(JSON.parse(other.text).error.code).toBe(ErrorCode.NOTE_UNVERIFIED);

    const note = log.grow(3).checkpoint();
    const tampered = note.replace(/ (\S+)\n$/, (_, b64: string) => {
      const bytes = fromBase64(b64)!;
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1; // the signature, after the key ID
      return ` ${toBase64(bytes)}\n`;
    });
    const rewritten = note.replace(/^(.*)\n3\n/, '$1\n4\n'); // another size under the log's signature
    for (const bad of [tampered, rewritten]) {
      const answer = await addCheckpoint(w.url, body(bad));
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.text).error.code).toBe(ErrorCode.NOTE_SIGNATURE_INVALID);
    }
    expect(readState(statePath).logs).toEqual({});
    expect((await addCheckpoint(w.url, body(note))).status).toBe(200);
  });
});
