/**
 * Key stores: the device keys survive a reload (a new store object on the same backing); the
 * IndexedDB store keeps new devices as non-extractable WebCrypto keys where the platform has
 * Ed25519 and X25519 (Node 20 does, like current browsers), falls back to raw secrets under
 * AES-GCM where it does not, upgrades rows of the older scheme, and binds sealed rows to
 * identity and device. Browsers are tested for real in test/browser/device-keys.test.ts.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileKeyStore, IndexedDbKeyStore, MemoryKeyStore, type DeviceRecord, type KeyStore } from '../../client/node.js';
import type { StoredDevice } from '../../client/key-store.js';
import { deviceKeysOf, newDeviceKeys } from '../../client/webcrypto-device-keys.js';
import {
  countersignCard,
  createCardRequestAsync,
  createRewrap,
  ErrorCode,
  generateDeviceKeys,
  openEnvelope,
  openEnvelopeAsync,
  parseCardRequest,
  parseEnvelope,
  ready,
  sealEnvelope,
  sealEnvelopeAsync,
  toB64u,
  verifyCard,
  type AsyncDeviceKeys,
  type VerifiedCard,
} from '../../shared/index.js';
import { sign, verify, x25519, x25519Base } from '../../shared/sodium.js';
import { CONVERSATION, lowOrderPoints, makeApp, makeDevice, type AppKeyFixture, type DeviceFixture } from '../support/crypto.js';

beforeAll(async () => {
  await ready();
});

function sampleDevice(identity: string): DeviceRecord {
  const keys = generateDeviceKeys();
  return { identity, deviceId: `dev-${identity}`, deviceName: 'laptop', signSeed: keys.signSeed, boxSecretKey: keys.boxSecretKey, card: null };
}

/** A new device as E2EEClient makes it for this store: WebCrypto keys where the store makes them, else raw. */
async function newDevice(store: KeyStore, identity: string): Promise<StoredDevice> {
  return { identity, deviceId: `dev-${identity}`, deviceName: 'laptop', ...(await newDeviceKeys(store)), card: null };
}

/**
 * The same device: the same fields and public keys, and private keys that sign the same bytes
 * (Ed25519 is deterministic) and agree on the same X25519 secret, whichever form each keeps.
 */
async function expectSameDevice(loaded: StoredDevice | null, saved: StoredDevice): Promise<void> {
  expect(loaded).not.toBeNull();
  const fields = (d: StoredDevice) => ({ identity: d.identity, deviceId: d.deviceId, deviceName: d.deviceName, card: d.card });
  expect(fields(loaded!)).toEqual(fields(saved));
  const [a, b] = [deviceKeysOf(loaded!), deviceKeysOf(saved)];
  expect(a.signPublicKey).toEqual(b.signPublicKey);
  expect(a.boxPublicKey).toEqual(b.boxPublicKey);
  const probe = new Uint8Array([7, 7, 7]);
  expect(await a.sign(probe)).toEqual(await b.sign(probe));
  const peer = x25519Base(generateDeviceKeys().boxSecretKey);
  expect(await a.agree(peer)).toEqual(await b.agree(peer));
}

/** Makes WebCrypto Ed25519 and X25519 unavailable, as in a browser without them (until afterEach). */
function hideWebCryptoCurves(): void {
  const curve = (algorithm: unknown) => {
    const name = typeof algorithm === 'string' ? algorithm : (algorithm as { name?: string } | null)?.name;
    return name === 'Ed25519' || name === 'X25519';
  };
  const subtle = globalThis.crypto.subtle;
  const generateKey = subtle.generateKey.bind(subtle);
  const importKey = subtle.importKey.bind(subtle);
  const refuse = () => Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
  vi.spyOn(subtle, 'generateKey').mockImplementation(((algorithm: AlgorithmIdentifier, ...rest: unknown[]) =>
    curve(algorithm) ? refuse() : (generateKey as (...a: unknown[]) => Promise<unknown>)(algorithm, ...rest)) as typeof subtle.generateKey);
  vi.spyOn(subtle, 'importKey').mockImplementation(((format: string, data: unknown, algorithm: AlgorithmIdentifier, ...rest: unknown[]) =>
    curve(algorithm) ? refuse() : (importKey as (...a: unknown[]) => Promise<unknown>)(format, data, algorithm, ...rest)) as typeof subtle.importKey);
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** The behaviour every key store shares, with the devices E2EEClient would make for it. */
function keyStoreContract(name: string, open: () => KeyStore, reopen: () => KeyStore, before?: () => void) {
  describe(name, () => {
    if (before) beforeEach(before);

    it('round-trips a device and finds it again after a reload', async () => {
      const store = open();
      const device = await newDevice(store, 'alice');
      await store.saveDevice(device);
      await expectSameDevice(await store.loadDevice('alice'), device);
      await expectSameDevice(await reopen().loadDevice('alice'), device);
      expect(await store.loadDevice('nobody')).toBeNull();
    });

    it('keeps devices of several identities apart and deletes one', async () => {
      const store = open();
      const [a, b] = [await newDevice(store, 'a'), await newDevice(store, 'b')];
      await store.saveDevice(a);
      await store.saveDevice(b);
      await store.deleteDevice('a');
      expect(await store.loadDevice('a')).toBeNull();
      await expectSameDevice(await store.loadDevice('b'), b);
    });

    it('stores and deletes state', async () => {
      const store = open();
      await store.setState('k', 'v1');
      await store.setState('k', 'v2');
      expect(await reopen().getState('k')).toBe('v2');
      await store.setState('k', null);
      expect(await store.getState('k')).toBeNull();
    });

    it('loses no write under concurrent updates', async () => {
      const store = open();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.setState(`key-${i}`, String(i))));
      const again = reopen();
      for (let i = 0; i < 20; i++) expect(await again.getState(`key-${i}`)).toBe(String(i));
    });
  });
}

let memory = new MemoryKeyStore();
keyStoreContract('MemoryKeyStore', () => (memory = new MemoryKeyStore()), () => memory);

const dir = mkdtempSync(join(tmpdir(), 'e2ee-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
let filePath = '';
keyStoreContract('FileKeyStore', () => new FileKeyStore((filePath = join(dir, `keys-${fileCount++}.json`))), () => new FileKeyStore(filePath));

let factory = new IDBFactory();
const openIdb = () => new IndexedDbKeyStore({ indexedDB: (factory = new IDBFactory()) });
const reopenIdb = () => new IndexedDbKeyStore({ indexedDB: factory });
keyStoreContract('IndexedDbKeyStore (WebCrypto keys)', openIdb, reopenIdb);
keyStoreContract('IndexedDbKeyStore (no WebCrypto Ed25519/X25519: raw secrets under AES-GCM)', openIdb, reopenIdb, hideWebCryptoCurves);

describe('FileKeyStore on disk', () => {
  it('writes the file readable by its owner only', async () => {
    const path = join(dir, 'mode.json');
    await new FileKeyStore(path).saveDevice(sampleDevice('alice'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

/** Every row of the store's object stores, read as same-origin script could. */
async function rawRows(idb: IDBFactory): Promise<{ devices: Array<Record<string, unknown>>; keys: unknown[] }> {
  const db = await openDb(idb);
  const all = (store: string) =>
    new Promise<unknown[]>((resolve) => {
      const r = db.transaction(store).objectStore(store).getAll();
      r.onsuccess = () => resolve(r.result);
    });
  const rows = { devices: (await all('devices')) as Array<Record<string, unknown>>, keys: await all('keys') };
  db.close();
  return rows;
}

function openDb(idb: IDBFactory): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = idb.open('twilio-e2ee');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function putRow(idb: IDBFactory, key: string, row: Record<string, unknown>): Promise<void> {
  const db = await openDb(idb);
  await new Promise<void>((resolve) => {
    const tx = db.transaction('devices', 'readwrite');
    tx.objectStore('devices').put(row, key);
    tx.oncomplete = () => resolve();
  });
  db.close();
}

/** Every byte array inside a value (CryptoKeys are opaque objects, not bytes). */
function byteArrays(value: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (value instanceof Uint8Array) out.push(value);
  else if (value instanceof ArrayBuffer) out.push(new Uint8Array(value));
  else if (value && typeof value === 'object' && !(value instanceof CryptoKey)) for (const v of Object.values(value)) byteArrays(v, out);
  return out;
}

/** A row exactly as the store wrote it before rows recorded their scheme: sealed secrets, no `scheme`. */
async function legacyRow(idb: IDBFactory, device: DeviceRecord): Promise<void> {
  hideWebCryptoCurves();
  await new IndexedDbKeyStore({ indexedDB: idb }).saveDevice(device);
  vi.restoreAllMocks();
  const [row] = (await rawRows(idb)).devices;
  expect(row!.scheme).toBe('aes-gcm');
  const { scheme: _scheme, ...old } = row!;
  expect(Object.keys(old).sort()).toEqual(['card', 'deviceId', 'deviceName', 'identity', 'iv', 'sealed']);
  await putRow(idb, device.identity, old);
}

describe('IndexedDbKeyStore at rest', () => {
  it('keeps a new device as non-extractable CryptoKeys: no export, no secret bytes in the row (scheme "webcrypto")', async () => {
    const idb = new IDBFactory();
    const store = new IndexedDbKeyStore({ indexedDB: idb });
    const device = await newDevice(store, 'alice');
    expect('webCryptoKeys' in device).toBe(true);
    await store.saveDevice(device);
    const [row] = (await rawRows(idb)).devices;
    expect(row!.scheme).toBe('webcrypto');
    expect(row!.sealed).toBeUndefined();
    for (const name of ['signPrivateKey', 'boxPrivateKey'] as const) {
      const key = row![name] as CryptoKey;
      expect(key).toBeInstanceOf(CryptoKey);
      expect(key.extractable).toBe(false);
      for (const format of ['pkcs8', 'jwk', 'raw'] as const) await expect(crypto.subtle.exportKey(format, key)).rejects.toThrow();
    }
    // The only bytes in the row are the two public keys.
    const keys = deviceKeysOf(device);
    expect(byteArrays(row).map((b) => toB64u(b)).sort()).toEqual([toB64u(keys.signPublicKey), toB64u(keys.boxPublicKey)].sort());
    // And the stored keys are the device's: a signature verifies under its public key.
    const loaded = deviceKeysOf((await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('alice'))!);
    expect(verify(await loaded.sign(new Uint8Array([1])), new Uint8Array([1]), keys.signPublicKey)).toBe(true);
  });

  it('without WebCrypto Ed25519/X25519 makes raw keys and holds only their AES-GCM ciphertext (scheme "aes-gcm")', async () => {
    hideWebCryptoCurves();
    const idb = new IDBFactory();
    const store = new IndexedDbKeyStore({ indexedDB: idb });
    expect(await store.generateWebCryptoKeys()).toBeNull();
    const device = (await newDevice(store, 'alice')) as DeviceRecord;
    expect(device.signSeed).toHaveLength(32);
    await store.saveDevice(device);
    const { devices, keys } = await rawRows(idb);
    expect(devices[0]!.scheme).toBe('aes-gcm');
    const stored = Buffer.from(new Uint8Array(devices[0]!.sealed as ArrayBuffer));
    expect(stored.includes(Buffer.from(device.signSeed))).toBe(false);
    expect(stored.includes(Buffer.from(device.boxSecretKey))).toBe(false);
    expect(JSON.stringify(devices)).not.toContain(toB64u(device.signSeed));
    const wrappingKey = keys[0] as CryptoKey;
    expect(wrappingKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('raw', wrappingKey)).rejects.toThrow();
    expect(await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('alice')).toEqual(device);
  });

  it('upgrades a row of the older scheme to non-extractable keys on load: the same keys, so the same card', async () => {
    const idb = new IDBFactory();
    const device = sampleDevice('alice');
    await legacyRow(idb, device);
    const loaded = await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('alice');
    expect('webCryptoKeys' in loaded!).toBe(true);
    await expectSameDevice(loaded, device);
    const [row] = (await rawRows(idb)).devices;
    expect(row!.scheme).toBe('webcrypto');
    expect(row!.sealed).toBeUndefined();
    expect((row!.signPrivateKey as CryptoKey).extractable).toBe(false);
    await expectSameDevice(await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('alice'), device);
  });

  it('keeps loading a row of the older scheme where WebCrypto lacks Ed25519/X25519, unchanged', async () => {
    const idb = new IDBFactory();
    const device = sampleDevice('alice');
    await legacyRow(idb, device);
    hideWebCryptoCurves();
    expect(await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('alice')).toEqual(device);
    const [row] = (await rawRows(idb)).devices;
    expect(row!.scheme).toBeUndefined();
    expect(row!.sealed).toBeInstanceOf(ArrayBuffer);
  });

  it('refuses a sealed record moved to another identity (additional data binds it)', async () => {
    const idb = new IDBFactory();
    const store = new IndexedDbKeyStore({ indexedDB: idb });
    await store.saveDevice(sampleDevice('alice'));
    // Copy alice's sealed row under mallory's name, as an attacker with database access could.
    const [row] = (await rawRows(idb)).devices;
    await putRow(idb, 'mallory', { ...row!, identity: 'mallory' });
    await expect(store.loadDevice('mallory')).rejects.toThrow(/do not decrypt/);
  });
});

describe('new devices by key store', () => {
  it('the IndexedDB store makes WebCrypto keys; the Node stores make raw keys', async () => {
    expect('webCryptoKeys' in (await newDeviceKeys(new IndexedDbKeyStore({ indexedDB: new IDBFactory() })))).toBe(true);
    expect('signSeed' in (await newDeviceKeys(new MemoryKeyStore()))).toBe(true);
    expect('signSeed' in (await newDeviceKeys(new FileKeyStore(join(dir, 'new.json'))))).toBe(true);
  });
});

describe('WebCrypto device keys in the protocol', () => {
  let app: AppKeyFixture;
  let libsodiumPeer: DeviceFixture;
  beforeAll(() => {
    app = makeApp();
    libsodiumPeer = makeDevice(app, 'bob');
  });

  /** A device with WebCrypto keys whose card request was made and self-signed through them. */
  async function webCryptoDevice(identity: string): Promise<{ keys: AsyncDeviceKeys; cardId: string; card: VerifiedCard }> {
    const keys = deviceKeysOf(await newDevice(new IndexedDbKeyStore({ indexedDB: new IDBFactory() }), identity));
    const self = parseCardRequest(await createCardRequestAsync(keys, { identity, deviceId: 'browser' }));
    const card = verifyCard(countersignCard(self, app.key), { trustedAppKeys: app.trusted, identity });
    return { keys, cardId: card.id, card };
  }

  it('registers (self-signed card), seals for and opens from a libsodium device, both ways', async () => {
    const alice = await webCryptoDevice('alice');
    const sealed = await sealEnvelopeAsync({ sender: { cardId: alice.cardId, keys: alice.keys }, recipients: [alice.card, libsodiumPeer.card], conversationSid: CONVERSATION, body: 'hi bob' });
    const byBob = openEnvelope(sealed.text, { recipient: libsodiumPeer.opener, senderCard: alice.card, conversationSid: CONVERSATION, author: 'alice' });
    expect(byBob.payload.body).toBe('hi bob');
    const own = await openEnvelopeAsync(sealed.text, { recipient: { cardId: alice.cardId, keys: alice.keys }, senderCard: alice.card, conversationSid: CONVERSATION });
    expect(own.payload.body).toBe('hi bob');

    const reply = sealEnvelope({ sender: libsodiumPeer.sender, recipients: [alice.card], conversationSid: CONVERSATION, body: 'hi alice' });
    const byAlice = await openEnvelopeAsync(reply.text, { recipient: { cardId: alice.cardId, keys: alice.keys }, senderCard: libsodiumPeer.card, conversationSid: CONVERSATION, author: 'bob' });
    expect(byAlice.payload.body).toBe('hi alice');
    // Not addressed to a device: the same typed error as the libsodium path.
    await expect(openEnvelopeAsync(reply.text, { recipient: { cardId: libsodiumPeer.card.id.replace(/^../, 'ff'), keys: alice.keys }, senderCard: libsodiumPeer.card, conversationSid: CONVERSATION })).rejects.toMatchObject({
      code: ErrorCode.ENVELOPE_NOT_FOR_ME,
    });
  });

  it('opens through a rewrap (history), and refuses one for another key like libsodium does', async () => {
    const alice = await webCryptoDevice('alice');
    const sealed = sealEnvelope({ sender: libsodiumPeer.sender, recipients: [libsodiumPeer.card], conversationSid: CONVERSATION, body: 'before you joined' });
    const parsed = parseEnvelope(sealed.text);
    const options = { senderCard: libsodiumPeer.card, conversationSid: CONVERSATION };
    const opened = await openEnvelopeAsync(parsed, { ...options, recipient: { cardId: alice.cardId, keys: alice.keys }, rewrap: createRewrap(sealed.cek, parsed, alice.keys.boxPublicKey) });
    expect(opened.payload.body).toBe('before you joined');
    const forOther = createRewrap(sealed.cek, parsed, libsodiumPeer.keys.boxPublicKey);
    await expect(openEnvelopeAsync(parsed, { ...options, recipient: { cardId: alice.cardId, keys: alice.keys }, rewrap: forOther })).rejects.toMatchObject({ code: ErrorCode.ENVELOPE_DECRYPT_FAILED });
  });

  it('agrees on X25519 like libsodium, and answers null for every low-order key and a wrong length', async () => {
    const raw = generateDeviceKeys();
    const imported = deviceKeysOf(await (async () => {
      const idb = new IDBFactory();
      await legacyRow(idb, { identity: 'carol', deviceId: 'd', deviceName: '', signSeed: raw.signSeed, boxSecretKey: raw.boxSecretKey, card: null });
      return (await new IndexedDbKeyStore({ indexedDB: idb }).loadDevice('carol'))!;
    })());
    const peer = x25519Base(generateDeviceKeys().boxSecretKey);
    expect(await imported.agree(peer)).toEqual(x25519(raw.boxSecretKey, peer));
    expect(await imported.sign(peer)).toEqual(sign(peer, raw.signSecretKey));
    for (const point of lowOrderPoints()) expect(await imported.agree(point)).toBeNull();
    expect(await imported.agree(new Uint8Array(31))).toBeNull();
  });
});
