/**
 * Key stores: the device keys survive a reload (a new store object on the same backing), the
 * IndexedDB store never holds raw secrets, and its records are bound to identity and device.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKeyStore, IndexedDbKeyStore, MemoryKeyStore, type DeviceRecord, type KeyStore } from '../../client/index.js';
import { generateDeviceKeys, ready, toB64u } from '../../shared/index.js';

beforeAll(async () => {
  await ready();
});

function sampleDevice(identity: string): DeviceRecord {
  const keys = generateDeviceKeys();
  return { identity, deviceId: `dev-${identity}`, deviceName: 'laptop', signSeed: keys.signSeed, boxSecretKey: keys.boxSecretKey, card: null };
}

/** The behaviour every key store shares. */
function keyStoreContract(name: string, open: () => KeyStore, reopen: () => KeyStore) {
  describe(name, () => {
    it('round-trips a device and finds it again after a reload', async () => {
      const store = open();
      const device = sampleDevice('alice');
      await store.saveDevice(device);
      expect(await store.loadDevice('alice')).toEqual(device);
      expect(await reopen().loadDevice('alice')).toEqual(device);
      expect(await store.loadDevice('nobody')).toBeNull();
    });

    it('keeps devices of several identities apart and deletes one', async () => {
      const store = open();
      const [a, b] = [sampleDevice('a'), sampleDevice('b')];
      await store.saveDevice(a);
      await store.saveDevice(b);
      await store.deleteDevice('a');
      expect(await store.loadDevice('a')).toBeNull();
      expect(await store.loadDevice('b')).toEqual(b);
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
keyStoreContract('IndexedDbKeyStore', () => new IndexedDbKeyStore({ indexedDB: (factory = new IDBFactory()) }), () => new IndexedDbKeyStore({ indexedDB: factory }));

describe('FileKeyStore on disk', () => {
  it('writes the file readable by its owner only', async () => {
    const path = join(dir, 'mode.json');
    await new FileKeyStore(path).saveDevice(sampleDevice('alice'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('IndexedDbKeyStore at rest', () => {
  async function rawRows(idb: IDBFactory): Promise<{ devices: unknown[]; keys: unknown[] }> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = idb.open('twilio-e2ee');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = (store: string) =>
      new Promise<unknown[]>((resolve) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => resolve(r.result);
      });
    const rows = { devices: await all('devices'), keys: await all('keys') };
    db.close();
    return rows;
  }

  it('holds only AES-GCM ciphertext of the secrets, under a non-extractable key', async () => {
    const idb = new IDBFactory();
    const device = sampleDevice('alice');
    await new IndexedDbKeyStore({ indexedDB: idb }).saveDevice(device);
    const { devices, keys } = await rawRows(idb);
    const row = devices[0] as { sealed: ArrayBuffer };
    const stored = Buffer.from(new Uint8Array(row.sealed));
    expect(stored.includes(Buffer.from(device.signSeed))).toBe(false);
    expect(stored.includes(Buffer.from(device.boxSecretKey))).toBe(false);
    expect(JSON.stringify(devices)).not.toContain(toB64u(device.signSeed));
    const wrappingKey = keys[0] as CryptoKey;
    expect(wrappingKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('raw', wrappingKey)).rejects.toThrow();
  });

  it('refuses a record moved to another identity (additional data binds it)', async () => {
    const idb = new IDBFactory();
    const store = new IndexedDbKeyStore({ indexedDB: idb });
    await store.saveDevice(sampleDevice('alice'));
    // Copy alice's sealed row under mallory's name, as an attacker with database access could.
    const db = await new Promise<IDBDatabase>((resolve) => {
      const r = idb.open('twilio-e2ee');
      r.onsuccess = () => resolve(r.result);
    });
    const row = await new Promise<Record<string, unknown>>((resolve) => {
      const r = db.transaction('devices').objectStore('devices').get('alice');
      r.onsuccess = () => resolve(r.result as Record<string, unknown>);
    });
    await new Promise<void>((resolve) => {
      const tx = db.transaction('devices', 'readwrite');
      tx.objectStore('devices').put({ ...row, identity: 'mallory' }, 'mallory');
      tx.oncomplete = () => resolve();
    });
    db.close();
    await expect(store.loadDevice('mallory')).rejects.toThrow(/do not decrypt/);
  });
});
