/**
 * The browser key store. Private keys are encrypted with AES-GCM under a non-extractable
 * WebCrypto key that lives in the same database: script on the page can use the keys while it
 * runs, but the raw bytes cannot be read out of the database (or exported) by anything else.
 * The additional data binds each record to its identity and device id, so records cannot be
 * swapped between users.
 */
import type { CardWire } from '../shared/card.js';
import { concatBytes, utf8 } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { DeviceRecord, KeyStore } from './key-store.js';

const DB_VERSION = 1;
const WRAPPING_KEY_ID = 'wrapping-key';

interface StoredDeviceRow {
  identity: string;
  deviceId: string;
  deviceName: string;
  iv: Uint8Array;
  sealed: ArrayBuffer;
  card: CardWire | null;
}

function promisify<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function additionalData(identity: string, deviceId: string): BufferSource {
  return utf8(`twilio-e2ee/v1/keystore\n${identity}\n${deviceId}`) as BufferSource;
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

  async loadDevice(identity: string): Promise<DeviceRecord | null> {
    const row = await this.run<StoredDeviceRow | undefined>('devices', 'readonly', (s) => s.get(identity));
    if (!row) return null;
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
    return {
      identity,
      deviceId: row.deviceId,
      deviceName: row.deviceName,
      signSeed: secrets.slice(0, 32),
      boxSecretKey: secrets.slice(32, 64),
      card: row.card,
    };
  }

  async saveDevice(record: DeviceRecord): Promise<void> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: additionalData(record.identity, record.deviceId) },
      await this.wrappingKey(),
      concatBytes(record.signSeed, record.boxSecretKey) as BufferSource,
    );
    const row: StoredDeviceRow = { identity: record.identity, deviceId: record.deviceId, deviceName: record.deviceName, iv, sealed, card: record.card };
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
