/**
 * The witness under bad input and failing peers: malformed add-checkpoint bodies get 4xx answers
 * with a typed error and change nothing, HTTP it does not serve is refused, and the log's client
 * collects the cosignatures of the witnesses that answer while others are down, slow or lying.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import { openCheckpoint } from '../../shared/log-checkpoint.js';
import { cosignatureVerifierFromKey } from '../../shared/log-cosignature.js';
import { noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import { ready } from '../../shared/sodium.js';
import { requestCosignatures, parseWitnessList } from '../../server/witness/log-client.js';
import { formatAddCheckpoint, MAX_ADD_CHECKPOINT_BYTES } from '../../server/witness/protocol.js';
import { readState } from '../../server/witness/state.js';
import { rawRequest } from '../support/raw-http.js';
import { freePort } from '../support/server-process.js';
import { addCheckpoint, removeTempDirs, secretOf, startWitness, tempDir, TestLog, witnessKey, type RunningWitness } from './witness.fixtures.js';

beforeAll(ready);
afterAll(removeTempDirs);
const running: Array<RunningWitness | Server> = [];
afterEach(async () => {
  for (const item of running.splice(0)) {
    if ('witness' in item) await item.close();
    else await new Promise<void>((resolve) => { item.close(() => resolve()); item.closeAllConnections(); });
  }
});

async function witnessFor(log: TestLog, prefix?: string) {
  const { key, vkey } = witnessKey(`witness.example.org/${Math.random().toString(36).slice(2, 8)}`);
  const statePath = join(tempDir(), 'state.json');
  const w = await startWitness({ key, logs: [log.vkey], statePath, init: true, ...(prefix ? { prefix } : {}) });
  running.push(w);
  return { w, vkey, key, statePath };
}

describe('malformed add-checkpoint bodies', () => {
  it('are refused with a 4xx and a typed error, and the witness goes on cosigning', async () => {
    const log = new TestLog().grow(8);
    const { w, statePath, key } = await witnessFor(log);
    await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 0, proof: [], note: log.checkpoint(4) }));
    const note = log.checkpoint();
    const proof = log.proof(4, 8).map((h) => `${Buffer.from(h).toString('base64')}\n`).join('');
    const hash = `${Buffer.alloc(32).toString('base64')}\n`;
    const cases: Array<[string, string | Uint8Array, number, ErrorCode]> = [
      ['empty', '', 400, ErrorCode.BAD_REQUEST],
      ['no blank line', `old 4\n${proof}${note.replace('\n\n', '\n')}`, 400, ErrorCode.BAD_REQUEST],
      ['leading zero', `old 04\n${proof}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['negative', `old -4\n${proof}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['huge old size', `old 9007199254740993\n${proof}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['two spaces', `old  4\n${proof}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['short hash', `old 4\n${Buffer.alloc(31).toString('base64')}\n\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['unpadded hash', `old 4\n${hash.replace('=', '')}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['64 proof lines', `old 4\n${hash.repeat(64)}\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['not UTF-8', new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0x34, 0x0a, 0x0a, 0xff, 0xfe, 0x0a]), 400, ErrorCode.BAD_REQUEST],
      ['no note', `old 4\n${proof}\n`, 400, ErrorCode.NOTE_MALFORMED],
      ['unsigned', `old 4\n${proof}\n${note.slice(0, note.indexOf('\n\n') + 1)}`, 400, ErrorCode.NOTE_MALFORMED],
      ['control character', `old 4\n${proof}\n${note.replace('\n8\n', '\n8\u0000\n')}`, 400, ErrorCode.NOTE_MALFORMED],
      ['not a checkpoint', `old 4\n${proof}\n${note.replace(/\n8\n[^\n]+\n/, '\n8\nnot a hash\n')}`, 400, ErrorCode.CHECKPOINT_MALFORMED],
      ['proof from 0', `old 0\n${hash}\n${note}`, 409, ErrorCode.BAD_REQUEST], // 409 first: the witness holds size 4
      ['old size above the checkpoint', `old 9\n\n${note}`, 400, ErrorCode.BAD_REQUEST],
      ['proof of the wrong length', `old 4\n${proof}${hash}\n${note}`, 422, ErrorCode.LOG_CONSISTENCY_INVALID],
      ['a proof between equal sizes', `old 4\n${hash}\n${log.checkpoint(4)}`, 422, ErrorCode.LOG_CONSISTENCY_INVALID],
    ];
    for (const [what, body, status, code] of cases) {
      const answer = await addCheckpoint(w.url, body);
      expect(answer.status, what).toBe(status);
      if (answer.type.startsWith('application/json')) expect(JSON.parse(answer.text).error.code, what).toBe(code);
      else expect(answer).toMatchObject({ type: 'text/x.tlog.size', text: '4\n' });
    }
    expect(readState(statePath).logs[log.origin]!.size).toBe(4);
    expect((await addCheckpoint(w.url, `old 4\n${proof}\n${note}`)).status).toBe(200);
    // Nothing it logged holds its key.
    expect(w.logs.join('\n')).not.toContain(secretOf(key));
  });

  it('refuses oversized bodies, other methods and paths, and broken HTTP without failing', async () => {
    const log = new TestLog().grow(2);
    const { w } = await witnessFor(log, '/w');
    const big = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: 'x'.repeat(MAX_ADD_CHECKPOINT_BYTES + 1) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
    const get = await fetch(`${w.url}/add-checkpoint`);
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    expect((await fetch(`http://127.0.0.1:${w.port}/add-checkpoint`, { method: 'POST', body: 'old 0\n\n' })).status).toBe(404);
    const chunked = await rawRequest(w.port, `POST /w/add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n`);
    expect(chunked.statusCode).toBe(400);
    const declared = await rawRequest(w.port, `POST /w/add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_ADD_CHECKPOINT_BYTES + 1}\r\nConnection: close\r\n\r\n`);
    expect(declared.statusCode).toBe(413);
    const ok = await addCheckpoint(w.url, formatAddCheckpoint({ oldSize: 0, proof: [], note: log.checkpoint() }));
    expect(ok.status).toBe(200);
  });
});

describe('the log client', () => {
  it('collects the cosignatures of the witnesses that answer; one down, one silent, one lying do not hold it up', async () => {
    const log = new TestLog().grow(5);
    const good = await witnessFor(log);
    const other = await witnessFor(log);
    const silent = createServer(() => {}); // accepts, never answers
    // Its line names the other witness's key (name and key ID), with a signature that is not its.
    const forged = Buffer.alloc(76);
    forged.writeUInt32BE(cosignatureVerifierFromKey(other.vkey).keyId);
    const liar = createServer((_req, res) => res.end(`\u2014 ${other.vkey.split('+')[0]} ${forged.toString('base64')}\n`));
    for (const server of [silent, liar]) {
      running.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    const url = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const witnesses = [
      { url: good.w.url, vkey: good.vkey },
      { url: `http://127.0.0.1:${await freePort()}`, vkey: witnessKey('down.example/w').vkey },
      { url: url(silent), vkey: witnessKey('silent.example/w').vkey },
      { url: url(liar), vkey: other.vkey },
    ];
    const started = Date.now();
    const result = await requestCosignatures({ checkpoint: log.checkpoint(), witnesses, consistencyProof: log.proof, timeoutMs: 500 });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.outcomes.map((o) => (o.ok ? 'ok' : o.error.code))).toEqual(['ok', ErrorCode.NETWORK_ERROR, ErrorCode.NETWORK_ERROR, ErrorCode.NOTE_SIGNATURE_INVALID]);
    const trusted = [good.vkey, other.vkey].map(cosignatureVerifierFromKey);
    const { cosignatures } = openCheckpoint(result.note, { origin: log.origin, log: noteVerifierFromKey(log.vkey), witnesses: trusted });
    expect(cosignatures.map((c) => c.name)).toEqual([good.vkey.split('+')[0]]);
    expect(result.lines).toBe(result.note.slice(result.note.indexOf('\n\n') + 2).split('\n').slice(1).join('\n'));
  });

  it('reads the witness setting: "<url> <vkey>" entries, comma-separated, and names the entry at fault', () => {
    const { vkey } = witnessKey();
    expect(parseWitnessList(` https://w1.example.org/witness/ ${vkey}, http://10.0.0.2:8380 ${vkey}`)).toEqual([
      { url: 'https://w1.example.org/witness', vkey },
      { url: 'http://10.0.0.2:8380', vkey },
    ]);
    expect(parseWitnessList('')).toEqual([]);
    expect(() => parseWitnessList(`https://w1.example.org ${vkey}, ftp://x ${vkey}`)).toThrow(/witness 2/);
    expect(() => parseWitnessList(`https://w1.example.org ${new TestLog().vkey}`)).toThrow(expect.objectContaining({ code: ErrorCode.NOTE_KEY_INVALID }));
  });
});
