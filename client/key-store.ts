/**
 * Where a device keeps its private keys and small state. The keys never leave the device: the
 * card service only ever sees the public card.
 */
import type { CardWire } from '../shared/card.js';
import { fromB64uExact, toB64u } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { WebCryptoDeviceKeys } from './webcrypto-device-keys.js';

/** One device of one identity, its private keys as raw bytes. */
export interface DeviceRecord {
  identity: string;
  deviceId: string;
  deviceName: string;
  /** 32-byte Ed25519 seed. */
  signSeed: Uint8Array;
  /** 32-byte X25519 secret. */
  boxSecretKey: Uint8Array;
  /** The countersigned card, once registered. */
  card: CardWire | null;
}

/** One device whose private keys are non-extractable WebCrypto keys (IndexedDbKeyStore, where the browser supports them). */
export interface WebCryptoDeviceRecord extends Omit<DeviceRecord, 'signSeed' | 'boxSecretKey'> {
  webCryptoKeys: WebCryptoDeviceKeys;
}

export type StoredDevice = DeviceRecord | WebCryptoDeviceRecord;

export interface KeyStore {
  loadDevice(identity: string): Promise<StoredDevice | null>;
  saveDevice(record: StoredDevice): Promise<void>;
  /**
   * Makes a new device's keys as non-extractable WebCrypto keys, when this store keeps them so
   * and the platform supports it (null otherwise). Stores without it get raw keys.
   */
  generateWebCryptoKeys?(): Promise<WebCryptoDeviceKeys | null>;
  deleteDevice(identity: string): Promise<void>;
  /** Small non-secret state (cards seen per identity, the history outbox), by key; null deletes. */
  getState(key: string): Promise<string | null>;
  setState(key: string, value: string | null): Promise<void>;
}

/** The JSON form of a device record, secrets as b64u (the file store's format). */
export interface SerializedDevice {
  identity: string;
  deviceId: string;
  deviceName: string;
  signSeed: string;
  boxSecretKey: string;
  card: CardWire | null;
}

export function serializeDevice(record: DeviceRecord): SerializedDevice {
  return { ...record, signSeed: toB64u(record.signSeed), boxSecretKey: toB64u(record.boxSecretKey) };
}

export function deserializeDevice(value: SerializedDevice): DeviceRecord {
  try {
    return {
      identity: value.identity,
      deviceId: value.deviceId,
      deviceName: value.deviceName,
      signSeed: fromB64uExact(value.signSeed, 32, 'signSeed'),
      boxSecretKey: fromB64uExact(value.boxSecretKey, 32, 'boxSecretKey'),
      card: value.card ?? null,
    };
  } catch (err) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `stored device keys are corrupt: ${(err as Error).message}`, { cause: err });
  }
}

/** Keeps everything in memory: for tests and short-lived processes (keys die with the process). */
export class MemoryKeyStore implements KeyStore {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly state = new Map<string, string>();

  async loadDevice(identity: string): Promise<DeviceRecord | null> {
    const record = this.devices.get(identity);
    return record ? { ...record, signSeed: record.signSeed.slice(), boxSecretKey: record.boxSecretKey.slice() } : null;
  }
  async saveDevice(record: DeviceRecord): Promise<void> {
    this.devices.set(record.identity, { ...record, signSeed: record.signSeed.slice(), boxSecretKey: record.boxSecretKey.slice() });
  }
  async deleteDevice(identity: string): Promise<void> {
    this.devices.delete(identity);
  }
  async getState(key: string): Promise<string | null> {
    return this.state.get(key) ?? null;
  }
  async setState(key: string, value: string | null): Promise<void> {
    if (value === null) this.state.delete(key);
    else this.state.set(key, value);
  }
}
