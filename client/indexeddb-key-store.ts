/**
 * The browser key store. Each device row records its scheme:
 *
 * - "webcrypto" (wherever the browser has Ed25519 and X25519 in WebCrypto): the private keys are
 *   non-extractable CryptoKeys, stored as such. Script on the page can use them while it runs,
 *   but no script can read their bytes: exportKey refuses, and the rows hold no secret bytes.
 * - "aes-gcm" (the fallback, and rows written before the scheme was recorded, which have none):
 *   the raw secrets encrypted with AES-GCM under a non-extractable WebCrypto key kept in the same
 *   database. Same-origin script can decrypt them with that key and so read the raw secrets. The
 *   additional data binds each row to its identity and device id.
 *
 * An "aes-gcm" row is upgraded to "webcrypto" when it is loaded where the browser supports it:
 * its secrets are imported as non-extractable keys (the same keys, so the same card) and the row
 * is rewritten without them.
 */
import type { CardWire } from '../shared/card.js';
import { concatBytes, utf8 } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { DeviceRecord, KeyStore, StoredDevice, WebCryptoDeviceRecord } from './key-store.js';
import { generateWebCryptoDeviceKeys, hasWebCryptoKeys, importWebCryptoDeviceKeys, type WebCryptoDeviceKeys } from './webcrypto-device-keys.js';

const DB_VERSION = 1;
const WRAPPING_KEY_ID = 'wrapping-key';

interface RowBase {
  identity: string;
  deviceId: string;
  deviceName: string;
  card: CardWire | null;
}

/** The private keys as non-extractable CryptoKeys (IndexedDB keeps them by structured clone). */
interface WebCryptoRow extends RowBase, WebCryptoDeviceKeys {
  scheme: 'webcrypto';
}

/** The raw secrets (sign seed || box secret) under the AES-GCM wrapping key; rows without a scheme predate it. */
interface SealedRow extends RowBase {
  scheme?: 'aes-gcm';
  iv: Uint8Array;
  sealed: ArrayBuffer;
}

type DeviceRow = WebCryptoRow | SealedRow;

function promisify<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function additionalData(identity: string, deviceId: string): BufferSource {
  return utf8(`twilio-e2ee/v1/keystore\n${identity}\n${deviceId}`) as BufferSource;
}

function toWebCryptoRow(record: WebCryptoDeviceRecord): WebCryptoRow {
  return { scheme: 'webcrypto', identity: record.identity, deviceId: record.deviceId, deviceName: record.deviceName, ...record.webCryptoKeys, card: record.card };
}

function sameBuffer(a: ArrayBuffer, b: ArrayBuffer): boolean {
  const [x, y] = [new Uint8Array(a), new Uint8Array(b)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export interface IndexedDbKeyStoreOptions {
  /** Database name; default "twilio-e2ee". */
  name?: string;
  /** The IndexedDB factory; default globalThis.indexedDB. */
  indexedDB?: IDBFactory;
}

export class IndexedDbKeyStore implements KeyStore {
  private readonly name: string;
  private readonly factory: IDBFactory;
  private dbPromise?: Promise<IDBDatabase>;
  private keyPromise?: Promise<CryptoKey>;
  /** Whether the browser granted persistent storage (null until asked, or where unsupported). */
  persisted: boolean | null = null;

  constructor(options: IndexedDbKeyStoreOptions = {}) {
    this.name = options.name ?? 'twilio-e2ee';
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'IndexedDB is not available here: pass another keyStore');
    this.factory = factory;
  }

  private db(): Promise<IDBDatabase> {
    this.dbPromise ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, DB_VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        for (const store of ['keys', 'devices', 'state']) if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return this.dbPromise;
  }

  private async run<T>(store: string, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.db();
    return promisify(op(db.transaction(store, mode).objectStore(store)));
  }

  /** The wrapping key, made on first use; non-extractable, so its bytes never leave WebCrypto. */
  private wrappingKey(): Promise<CryptoKey> {
    this.keyPromise ??= (async () => {
      const existing = await this.run<CryptoKey | undefined>('keys', 'readonly', (s) => s.get(WRAPPING_KEY_ID));
      if (existing) return existing;
      const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      // add() fails if another tab stored one first; then use that one.
      try {
        await this.run('keys', 'readwrite', (s) => s.add(key, WRAPPING_KEY_ID));
        await this.requestPersistence();
        return key;
      } catch {
        return (await this.run<CryptoKey | undefined>('keys', 'readonly', (s) => s.get(WRAPPING_KEY_ID)))!;
      }
    })();
    return this.keyPromise;
  }

  /** Asks the browser not to evict this origin's storage (losing it would lose the device keys). */
  private async requestPersistence(): Promise<void> {
    try {
      const storage = (globalThis.navigator as Navigator | undefined)?.storage;
      if (storage?.persist) this.persisted = await storage.persist();
    } catch {
      this.persisted = false;
    }
  }

  /** Non-extractable WebCrypto keys for a new device, or null where the browser lacks WebCrypto Ed25519/X25519. */
  generateWebCryptoKeys(): Promise<WebCryptoDeviceKeys | null> {
    return generateWebCryptoDeviceKeys();
  }

  async loadDevice(identity: string): Promise<StoredDevice | null> {
    const row = await this.run<DeviceRow | undefined>('devices', 'readonly', (s) => s.get(identity));
    if (!row) return null;
    if (row.scheme === 'webcrypto') {
      const { signPrivateKey, boxPrivateKey, signPublicKey, boxPublicKey } = row;
      if (row.identity !== identity) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the stored keys of "${identity}" belong to "${row.identity}"`);
      return { identity, deviceId: row.deviceId, deviceName: row.deviceName, webCryptoKeys: { signPrivateKey, boxPrivateKey, signPublicKey, boxPublicKey }, card: row.card };
    }
    const record = await this.unseal(identity, row);
    const webCryptoKeys = await importWebCryptoDeviceKeys(record.signSeed, record.boxSecretKey);
    if (!webCryptoKeys) return record;
    const upgraded: WebCryptoDeviceRecord = { identity, deviceId: record.deviceId, deviceName: record.deviceName, webCryptoKeys, card: record.card };
    record.signSeed.fill(0);
    record.boxSecretKey.fill(0);
    // Only if the row is still the one read: another tab may have saved a newer device meanwhile.
    await this.replaceRow(identity, row, toWebCryptoRow(upgraded));
    return upgraded;
  }

  private async unseal(identity: string, row: SealedRow): Promise<DeviceRecord> {
    let secrets: Uint8Array;
    try {
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: row.iv as BufferSource, additionalData: additionalData(identity, row.deviceId) },
        await this.wrappingKey(),
        row.sealed,
      );
      secrets = new Uint8Array(plain);
    } catch {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the stored keys of "${identity}" do not decrypt (corrupt or moved between records)`);
    }
    const record = { identity, deviceId: row.deviceId, deviceName: row.deviceName, signSeed: secrets.slice(0, 32), boxSecretKey: secrets.slice(32, 64), card: row.card };
    secrets.fill(0);
    return record;
  }

  /** Writes `next` in place of `current`, in one transaction, unless the row changed since it was read. */
  private async replaceRow(identity: string, current: SealedRow, next: DeviceRow): Promise<void> {
    const db = await this.db();
    const store = db.transaction('devices', 'readwrite').objectStore('devices');
    const now = await promisify<DeviceRow | undefined>(store.get(identity));
    if (now && 'sealed' in now && sameBuffer(now.sealed, current.sealed)) await promisify(store.put(next, identity));
  }

  async saveDevice(record: StoredDevice): Promise<void> {
    if (hasWebCryptoKeys(record)) {
      await this.run('devices', 'readwrite', (s) => s.put(toWebCryptoRow(record), record.identity));
      return;
    }
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: additionalData(record.identity, record.deviceId) },
      await this.wrappingKey(),
      concatBytes(record.signSeed, record.boxSecretKey) as BufferSource,
    );
    const row: SealedRow = { scheme: 'aes-gcm', identity: record.identity, deviceId: record.deviceId, deviceName: record.deviceName, iv, sealed, card: record.card };
    await this.run('devices', 'readwrite', (s) => s.put(row, record.identity));
  }

  async deleteDevice(identity: string): Promise<void> {
    await this.run('devices', 'readwrite', (s) => s.delete(identity));
  }

  async getState(key: string): Promise<string | null> {
    return (await this.run<string | undefined>('state', 'readonly', (s) => s.get(key))) ?? null;
  }

  async setState(key: string, value: string | null): Promise<void> {
    if (value === null) await this.run('state', 'readwrite', (s) => s.delete(key));
    else await this.run('state', 'readwrite', (s) => s.put(value, key));
  }
}
