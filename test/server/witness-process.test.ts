/**
 * The witness as a process (`twilio-e2ee witness`, and `npm run witness`): keygen prints a key and its verifier key, init creates the state once, configuration
 * errors stop it with a message naming the setting (never the key), it cosigns what the log's
 * client submits, keeps its state across a restart, keeps a second process off its state file,
 * and exits 0 on SIGTERM.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import { openCheckpoint } from '../../shared/log-checkpoint.js';
import { cosignatureVerifierFromKey } from '../../shared/log-cosignature.js';
import { noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import { ready } from '../../shared/sodium.js';
import { requestCosignatures } from '../../server/witness/log-client.js';
import { formatAddCheckpoint } from '../../server/witness/protocol.js';
import { witnessVerifierKey } from '../../server/witness/witness.js';
import { waitFor } from '../support/concurrency.js';
import { freePort, spawnServer, type SpawnedServer } from '../support/server-process.js';
import { addCheckpoint, removeTempDirs, secretOf, tempDir, TestLog } from './witness.fixtures.js';

const CLI = fileURLToPath(new URL('../../server/cli.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

beforeAll(ready);
afterAll(removeTempDirs);

// Each test starts real processes: generous timeouts for loaded CI machines.
const PROCESS_TEST = { timeout: 120_000 };


/** `twilio-e2ee witness <args>`: spawnServer runs a script without arguments, so a wrapper adds them and loads the command. */
function witnessProcess(args: string[], env: Record<string, string>): SpawnedServer {
  const entry = join(tempDir(), 'run.mjs');
  writeFileSync(entry, `process.argv.splice(2, 0, 'witness', ...${JSON.stringify(args)});\nawait import(${JSON.stringify(pathToFileURL(CLI).href)});\n`);
  return spawnServer({ entry, env });
}

async function run(args: string[], env: Record<string, string>) {
  const child = witnessProcess(args, env);
  return { code: await child.exited, output: child.output() };
}

describe('twilio-e2ee witness', PROCESS_TEST, () => {
  let key = '';
  let vkey = '';

  it('keygen (npm run witness -- keygen) prints a witness key and its verifier key; a bad name is refused', async () => {
    const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'witness', '--', 'keygen', 'witness.example.org/w1'], { cwd: REPO, env: { PATH: process.env.PATH ?? '' } });
    key = /^WITNESS_KEY=(PRIVATE\+KEY\+witness\.example\.org\/w1\+[0-9a-f]{8}\+\S+)$/m.exec(stdout)![1]!;
    vkey = /^# (witness\.example\.org\/w1\+[0-9a-f]{8}\+\S+)$/m.exec(stdout)![1]!;
    expect(witnessVerifierKey(key)).toBe(vkey);
    expect(cosignatureVerifierFromKey(vkey).name).toBe('witness.example.org/w1');
    const bad = await run(['keygen', 'two words'], {});
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('without spaces');
  });

  it('stops with the settings at fault, never echoing the key', async () => {
    const none = await run([], {});
    expect(none.code).toBe(1);
    expect(none.output).toMatch(/WITNESS_KEY \(or WITNESS_KEY_FILE\) is required/);
    expect(none.output).toMatch(/WITNESS_LOGS is required/);
    const log = new TestLog();
    const wrong = await run(['--logs', 'not-a-key', '--port', '70000'], { WITNESS_KEY: `${key}x` });
    expect(wrong.code).toBe(1);
    expect(wrong.output).toMatch(/WITNESS_KEY is invalid/);
    expect(wrong.output).toMatch(/WITNESS_LOGS is invalid/);
    expect(wrong.output).toMatch(/WITNESS_PORT must be an integer/);
    expect(wrong.output).not.toContain(secretOf(key));
    const missing = await run([], { WITNESS_KEY: key, WITNESS_LOGS: log.vkey, WITNESS_STATE: join(tempDir(), 'state.json') });
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/does not exist \(`witness init` creates it/);
    const usage = await run(['keygen', 'a', 'b'], {});
    expect([usage.code, usage.output]).toEqual([2, expect.stringContaining('Usage: witness')]);
    const flag = await run(['--bogus'], {});
    expect([flag.code, flag.output]).toEqual([1, expect.stringContaining("Unknown option '--bogus'")]);
  });

  it('init creates the state once; serve cosigns, survives a restart, keeps a second process off, exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    const keyFile = join(dir, 'witness.key');
    writeFileSync(keyFile, `# a comment\nWITNESS_KEY=${key}\n`, { mode: 0o600 });
    const log = new TestLog().grow(10);
    const port = await freePort();
    const env = { WITNESS_KEY_FILE: keyFile, WITNESS_LOGS: log.vkey, WITNESS_STATE: join(dir, 'state.json'), WITNESS_PORT: String(port) };
    expect((await run(['init'], env)).code).toBe(0);
    expect(statSync(env.WITNESS_STATE).mode & 0o777).toBe(0o600);
    const twice = await run(['init'], env);
    expect([twice.code, twice.output]).toEqual([1, expect.stringContaining('exists already')]);

    const start = async () => {
      const child = witnessProcess([], env);
      await waitFor(() => /witness listening on http:\/\//.test(child.output()) || child.child.exitCode !== null, 'the witness to listen', 60_000);
      expect(child.output()).toContain('witness listening on');
      return child;
    };
    const url = `http://127.0.0.1:${port}`;
    const sizes = new Map<string, number>();
    let child = await start();
    const first = await requestCosignatures({ checkpoint: log.checkpoint(), witnesses: [{ url, vkey }], consistencyProof: log.proof, sizes });
    expect(first.outcomes[0]!.ok).toBe(true);
    const second = await run([], env);
    expect([second.code, second.output]).toEqual([1, expect.stringContaining('in use by another witness process')]);
    expect(await child.stop('SIGTERM')).toBe(0);
    expect(existsSync(`${env.WITNESS_STATE}.lock`)).toBe(false);

    child = await start();
    expect(child.output()).toContain(`${log.origin}: last cosigned size 10`);
    expect(await addCheckpoint(url, formatAddCheckpoint({ oldSize: 0, proof: [], note: log.grow(5).checkpoint() }))).toMatchObject({ status: 409, text: '10\n' });
    const next = await requestCosignatures({ checkpoint: log.checkpoint(), witnesses: [{ url, vkey }], consistencyProof: log.proof, sizes });
    const { cosignatures } = openCheckpoint(next.note, { origin: log.origin, log: noteVerifierFromKey(log.vkey), witnesses: [cosignatureVerifierFromKey(vkey)] });
    expect(cosignatures).toHaveLength(1);
    const rollback = await addCheckpoint(url, formatAddCheckpoint({ oldSize: 15, proof: [], note: log.checkpoint(12) }));
    expect(JSON.parse(rollback.text).error.code).toBe(ErrorCode.BAD_REQUEST);
    expect(await child.stop('SIGTERM')).toBe(0);
    // One JSON line per event, and no key in any of them.
    const lines = child.output().trim().split('\n');
    expect(lines.every((line) => typeof JSON.parse(line).msg === 'string')).toBe(true);
    expect(child.output()).not.toContain(secretOf(key));
  });
});
