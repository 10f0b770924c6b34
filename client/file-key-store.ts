/**
 * A Node key store: one JSON file (mode 0600) holding the devices and state, rewritten
 * atomically (write to a temporary file, then rename) so a crash never leaves half a file.
 * Exported by the Node entry only (client/node.ts): browser bundles never see node:fs.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DeviceRecord, KeyStore, SerializedDevice } from './key-store.js';
import { deserializeDevice, serializeDevice } from './key-store.js';

interface FileContents {
  version: 1;
  devices: Record<string, SerializedDevice>;
  state: Record<string, string>;
}

export class FileKeyStore implements KeyStore {
  private writing: Promise<void> = Promise.resolve();

  /** @param path the JSON file; its directory is created when missing. */
  constructor(readonly path: string) {}

  private async read(): Promise<FileContents> {
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as FileContents;
      return { version: 1, devices: parsed.devices ?? {}, state: parsed.state ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, devices: {}, state: {} };
      throw err;
    }
  }

  /** Read-modify-write, serialized so concurrent calls never lose each other's changes. */
  private update(change: (contents: FileContents) => void): Promise<void> {
    const next = this.writing.then(async () => {
      const contents = await this.read();
      change(contents);
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(contents), { mode: 0o600 });
      await rename(tmp, this.path);
    });
    this.writing = next.catch(() => undefined);
    return next;
  }

  async loadDevice(identity: string): Promise<DeviceRecord | null> {
    await this.writing;
    const stored = (await this.read()).devices[identity];
    return stored ? deserializeDevice(stored) : null;
  }
  saveDevice(record: DeviceRecord): Promise<void> {
    return this.update((c) => {
      c.devices[record.identity] = serializeDevice(record);
    });
  }
  deleteDevice(identity: string): Promise<void> {
    return this.update((c) => {
      delete c.devices[identity];
    });
  }
  async getState(key: string): Promise<string | null> {
    await this.writing;
    return (await this.read()).state[key] ?? null;
  }
  setState(key: string, value: string | null): Promise<void> {
    return this.update((c) => {
      if (value === null) delete c.state[key];
      else c.state[key] = value;
    });
  }
}
