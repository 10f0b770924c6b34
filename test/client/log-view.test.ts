/**
 * The client's log view against a real server: the pinned LogKey (and trust on first use),
 * required witness cosignatures, gossiped checkpoints, and directory alerts raised once and kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError, MemoryKeyStore, type DirectoryAlert, type E2EEClientOptions } from '../../client/index.js';
import type { FetchLike } from '../../client/api-client.js';
import { DirectoryAlerts } from '../../client/directory-alert.js';
import { loadConfig, type Config } from '../../server/config.js';
import { formatVerifierKey, NOTE_TYPE_COSIGNATURE_V1, NOTE_TYPE_ED25519, signNote, generateDeviceKeys } from '../../shared/index.js';
import { cosignatureSigner } from '../../shared/log-cosignature.js';
import { mergeNotes, parseNote } from '../../shared/signed-note.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let config: Config;
let n = 0;

beforeAll(async () => {
  server = await startLoopbackServer();
  config = await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' });
});

afterAll(async () => server?.close());

async function client(options: Partial<E2EEClientOptions> = {}) {
  const c = await device(server, `user-${++n}`, options);
  const alerts: DirectoryAlert[] = [];
  c.on('directoryAlert', (a) => alerts.push(a));
  return { c, alerts };
}

/** Answers /v1/log/checkpoint with `note(served)` instead of the service's note. */
const checkpointAs = (note: (served: string) => string): FetchLike => async (input, init) => {
  const res = await fetch(input, init);
  if (new URL(input).pathname !== '/v1/log/checkpoint') return res;
  return new Response(note(await res.text()), { status: 200, headers: { 'content-type': 'text/plain' } });
};

const witnessSeed = crypto.getRandomValues(new Uint8Array(32));
const witness = () => cosignatureSigner('witness.example/w1', witnessSeed);
const witnessKey = () => formatVerifierKey('witness.example/w1', NOTE_TYPE_COSIGNATURE_V1, witness().publicKey);

describe('the LogKey', () => {
  it('refuses checkpoints under another pinned key: no card is used', async () => {
    const other = formatVerifierKey(config.log.origin, NOTE_TYPE_ED25519, generateDeviceKeys().signPublicKey);
    const { c } = await client({ log: { key: other } });
    const err = await c.register().then(() => c.devices()).catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.NOTE_UNVERIFIED)).toBe(true);
  });

  it('is trusted on first use without the option, and kept in the key store', async () => {
    const keyStore = new MemoryKeyStore();
    const { c } = await client({ keyStore });
    await c.register();
    expect((await c.devices()).map((d) => d.id)).toEqual([c.card!.id]);
    const kept = JSON.parse((await keyStore.getState(`log:${c.identity}`))!) as { key: string; size: number };
    expect(kept.key).toBe(config.log.verifierKey);
    expect(kept.size).toBeGreaterThan(0);
  });

  it('refuses a malformed pin at create', async () => {
    const err = await device(server, 'x', { log: { key: 'not a key' } }).catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.NOTE_KEY_INVALID)).toBe(true);
    const witnesses = await device(server, 'x', { log: { key: config.log.verifierKey, witnesses: { keys: [witnessKey()], required: 2 } } }).catch((e: unknown) => e);
    expect(isE2EEError(witnesses, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});

describe('required witnesses', () => {
  const witnesses = () => ({ keys: [witnessKey()], required: 1 });

  it('refuses a checkpoint without the cosignature: witness-missing, once', async () => {
    const { c, alerts } = await client({ log: { key: config.log.verifierKey, witnesses: witnesses() } });
    for (let i = 0; i < 2; i++) expect(isE2EEError(await c.trust.view.refresh().catch((e: unknown) => e), ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alerts.map((a) => a.kind)).toEqual(['witness-missing']);
    expect(await c.trust.view.latest()).toBeUndefined();
  });

  it('takes a checkpoint the witness cosigned', async () => {
    const cosign = (note: string) => mergeNotes(note, signNote(parseNote(note).text, [witness()]));
    const { c, alerts } = await client({ log: { key: config.log.verifierKey, witnesses: witnesses() }, fetch: checkpointAs(cosign) });
    const head = await c.trust.view.refresh();
    expect(head.size).toBeGreaterThan(0);
    expect(alerts).toEqual([]);
  });
});

describe('gossip', () => {
  it('accepts a peer checkpoint consistent with its own; a different root is a fork that stops sends in that conversation only', async () => {
    const { c, alerts } = await client({ log: { key: config.log.verifierKey } });
    await c.register();
    const head = await c.trust.view.refresh();
    await c.trust.view.checkGossip(head.size, head.root, { conversationSid: 'CH1' });
    expect(alerts).toEqual([]);
    const err = await c.trust.view.checkGossip(head.size, new Uint8Array(32).fill(1), { conversationSid: 'CH1', messageSid: 'IM1', identity: 'mallory' }).catch((e: unknown) => e);
    expect(isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    expect(alerts).toEqual([expect.objectContaining({ kind: 'log-fork', conversationSid: 'CH1', messageSid: 'IM1', identity: 'mallory' })]);
    expect(isE2EEError(await c.trust.alerts.checkSend('CH1').catch((e: unknown) => e), ErrorCode.DIRECTORY_UNTRUSTED)).toBe(true);
    await c.trust.alerts.checkSend('CH2');
    await c.acceptDirectoryAlert(alerts[0]!);
    await c.trust.alerts.checkSend('CH1');
    expect(await c.directoryAlerts()).toEqual([]);
  });
});

describe('directory alerts', () => {
  it('are raised once per finding, also across a reload of the key store', async () => {
    const keyStore = new MemoryKeyStore();
    const raised: DirectoryAlert[] = [];
    const finding = { kind: 'rogue-device' as const, identity: 'bob', cardId: 'c1', message: 'm' };
    const first = new DirectoryAlerts(keyStore, 'bob', (a) => raised.push(a));
    await first.raise(finding);
    await first.raise(finding);
    await new DirectoryAlerts(keyStore, 'bob', (a) => raised.push(a)).raise(finding);
    expect(raised).toHaveLength(1);
    expect(await new DirectoryAlerts(keyStore, 'bob', () => undefined).open()).toEqual(raised);
  });
});
