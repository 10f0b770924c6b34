/**
 * Witnessed checkpoints end to end: a real witness process (`twilio-e2ee witness`), a real service
 * handing it each checkpoint (LOG_WITNESSES) and two clients that require its cosignature. While
 * the witness runs, registration and a message work with no alert and the checkpoint the clients
 * hold is cosigned; once it stops, the service keeps registering and publishing, new checkpoints
 * carry no cosignature, and a client that needs one raises 'witness-missing'.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Client, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError, type DirectoryAlert, type E2EEClient } from '../../client/node.js';
import { buildApp } from '../../server/app.js';
import { loadConfig, type Config } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import { openCheckpoint } from '../../shared/log-checkpoint.js';
import { cosignatureVerifierFromKey } from '../../shared/log-cosignature.js';
import { noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import { equalBytes, ready, toB64u } from '../../shared/index.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { demoToken } from '../support/demo-session.js';
import { RATE_LIMITS_OFF } from '../support/env.js';
import { checkpointed, device, type LoopbackServer } from '../support/loopback-server.js';
import { freePort, spawnServer, stopServerProcess, type SpawnedServer } from '../support/server-process.js';
import { witnessKey } from '../server/witness.fixtures.js';

const CLI = fileURLToPath(new URL('../../server/cli.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'e2ee-witnessed-'));
await ready();
const { key, vkey } = witnessKey('witness.example.org/e2e');
const logLines: string[] = [];

let config: Config;
let server: LoopbackServer;
let close = async () => {};
let witness: SpawnedServer | undefined;
let witnessUrl = '';

/** `twilio-e2ee witness <args>` as a process (a wrapper adds the arguments, as in witness-process.test.ts). */
function witnessProcess(args: string[], env: Record<string, string>): SpawnedServer {
  const entry = join(dir, `run-${args.join('-') || 'serve'}.mjs`);
  writeFileSync(entry, `process.argv.splice(2, 0, 'witness', ...${JSON.stringify(args)});\nawait import(${JSON.stringify(pathToFileURL(CLI).href)});\n`);
  return spawnServer({ entry, env });
}

/** The service's log lines (JSON) with this message. */
const logged = (msg: string) => logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === msg);

beforeAll(async () => {
  const port = await freePort();
  witnessUrl = `http://127.0.0.1:${port}`;
  const dataDir = join(dir, 'data');
  config = await loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    LOG_CHECKPOINT_INTERVAL_MS: '100',
    LOG_WITNESSES: `${witnessUrl} ${vkey}`,
    LOG_WITNESS_TIMEOUT_MS: '2000',
    ...RATE_LIMITS_OFF,
  });
  const env = { WITNESS_KEY: key, WITNESS_LOGS: config.log.verifierKey, WITNESS_STATE: join(dir, 'witness.json'), WITNESS_PORT: String(port) };
  expect(await witnessProcess(['init'], env).exited).toBe(0);
  witness = witnessProcess([], env);
  await waitFor(() => /witness listening on http:\/\//.test(witness!.output()) || witness!.child.exitCode !== null, 'the witness to listen', 60_000);
  expect(witness.output()).toContain('witness listening on');

  const store = await openStore({ dataDir });
  const app = await buildApp({ config, store, logger: { stream: { write: (line: string) => logLines.push(line) } } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  close = async () => {
    await app.close();
    await store.close();
  };
  server = { url, port: 0, dataDir, store, appPublicKey: toB64u(config.appKey.publicKey), session: (identity) => demoToken({ url }, identity), close };
}, 120_000);

afterAll(async () => {
  await stopServerProcess(witness);
  await close();
  rmSync(dir, { recursive: true, force: true });
});

/** A client requiring the witness's cosignature, with the directory alerts it raised. */
async function witnessedClient(identity: string): Promise<{ c: E2EEClient; alerts: DirectoryAlert[] }> {
  const c = await device(server, identity, { log: { key: config.log.verifierKey, witnesses: { keys: [vkey], required: 1 } } });
  const alerts: DirectoryAlert[] = [];
  c.on('directoryAlert', (a) => alerts.push(a));
  return { c, alerts };
}

describe('witnessed checkpoints', { timeout: 120_000 }, () => {
  let alice: { c: E2EEClient; alerts: DirectoryAlert[] };
  let bob: { c: E2EEClient; alerts: DirectoryAlert[] };
  const chats: Client[] = [];

  afterAll(async () => {
    for (const chat of chats) await chat.shutdown();
  });

  it('registers two clients and carries a message between them, with no alert, on cosigned checkpoints', async () => {
    // The empty log's checkpoint (size 0) is never handed to witnesses: one card first, unwitnessed.
    await (await device(server, 'dave', { log: { key: config.log.verifierKey } })).register();
    await checkpointed(server);
    await waitFor(async () => (await server.store.logCosignatures((await server.store.latestCheckpoint())!.size)).length > 0, 'a cosigned checkpoint');
    [alice, bob] = [await witnessedClient('alice'), await witnessedClient('bob')];
    await alice.c.register();
    await bob.c.register();
    const [aliceChat, bobChat] = await Promise.all([alice.c.connect(), bob.c.connect()]);
    chats.push(aliceChat, bobChat);
    const conversation = await aliceChat.createConversation({ friendlyName: 'witnessed' });
    await conversation.join();
    const bobAdded = nextEvents(bobChat, 'conversationAdded');
    await conversation.add('bob');
    await bobAdded;
    const atBob = nextEvents<Message>(bobChat, 'messageAdded');
    await conversation.sendMessage('cosigned hello');
    const [[message]] = await Promise.all([atBob]);
    expect(message!.body).toBe('cosigned hello');
    expect(message!.e2ee).toMatchObject({ status: 'verified', senderCardId: alice.c.card!.id });
    expect(await bob.c.devices()).toHaveLength(1);
    expect([...alice.alerts, ...bob.alerts]).toEqual([]);

    // The checkpoint each client holds is the service's, cosigned by the pinned witness.
    const trust = { origin: config.log.origin, log: noteVerifierFromKey(config.log.verifierKey), witnesses: [cosignatureVerifierFromKey(vkey)] };
    for (const { c } of [alice, bob]) {
      const held = (await c.trust.view.latest())!;
      expect(held.size).toBeGreaterThan(0);
      const stored = (await server.store.logCheckpoint(held.size))!;
      const lines = (await server.store.logCosignatures(held.size)).map((s) => s.line).join('');
      const { checkpoint, cosignatures } = openCheckpoint(stored.note + lines, trust);
      expect(equalBytes(checkpoint.rootHash, held.root)).toBe(true);
      expect(cosignatures.map((s) => s.name)).toEqual(['witness.example.org/e2e']);
    }
    expect(logged('witness did not cosign')).toEqual([]);
  });

  it('once the witness stops: the service keeps registering and publishing, uncosigned; a client needing the newer checkpoint raises witness-missing', async () => {
    expect(await witness!.stop('SIGTERM')).toBe(0);
    const before = (await alice.c.trust.view.latest())!.size;

    // A client without witnesses still registers: the service works without its witness.
    const carol = await device(server, 'carol', { log: { key: config.log.verifierKey } });
    await carol.register();
    await checkpointed(server);
    const newest = (await server.store.latestCheckpoint())!;
    expect(newest.size).toBeGreaterThan(before);
    await waitFor(() => logged('witness did not cosign').some((line) => line.size === newest.size), `the witness's failure at size ${newest.size} logged`);
    expect(logged('witness did not cosign').at(-1)).toMatchObject({ level: 40, witness: witnessUrl, code: ErrorCode.NETWORK_ERROR });
    expect(await server.store.logCosignatures(newest.size)).toEqual([]);
    const served = await (await fetch(`${server.url}/v1/log/checkpoint`)).text();
    expect(openCheckpoint(served, { origin: config.log.origin, log: noteVerifierFromKey(config.log.verifierKey), witnesses: [cosignatureVerifierFromKey(vkey)] }).cosignatures).toEqual([]);

    const err = await alice.c.trust.view.refresh().catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alice.alerts.map((a) => a.kind)).toEqual(['witness-missing']);
    expect((await alice.c.trust.view.latest())!.size).toBe(before);
    expect(logLines.map((line) => JSON.parse(line) as { level: number }).filter((line) => line.level >= 50)).toEqual([]);
  });
});
