/**
 * A real server (SQLite store, local relay) on a loopback port, and clients that use only the
 * public client API against it. Nothing of ours is mocked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';
import { E2EEClient, MemoryKeyStore, type E2EEClientOptions } from '../../client/index.js';
import { toB64u } from '../../shared/index.js';

export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  store: Store;
  appPublicKey: string;
  /** A demo session token for `identity`. */
  session(identity: string): Promise<string>;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse a data directory (a restart); it is then left in place by close(). */
  dataDir?: string;
  /** Listen on this port (a restart on the same address); default any free port. */
  port?: number;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'e2ee-test-'));
  // Rate limits off: a test file may open more sessions per minute than a person would.
  const config = await loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_SESSION: '0', RATE_LIMIT_CARD_REGISTRATION: '0', RATE_LIMIT_LOOKUP: '0', ...options.env });
  const store = await openStore({ dataDir });
  const app = await buildApp({ config, store });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    port: address.port,
    dataDir,
    store,
    appPublicKey: toB64u(config.appKey.publicKey),
    async session(identity) {
      const response = await fetch(`${url}/v1/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ identity }),
      });
      if (!response.ok) throw new Error(`session for ${identity}: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { token: string }).token;
    },
    async close() {
      await app.close();
      await store.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An E2EEClient for `identity` on its own device (its own key store unless one is given). */
export async function device(server: TestServer, identity: string, options: Partial<E2EEClientOptions> = {}): Promise<E2EEClient> {
  const token = await server.session(identity);
  return E2EEClient.create({
    serverUrl: server.url,
    getAuthToken: () => token,
    appPublicKeys: [server.appPublicKey],
    keyStore: new MemoryKeyStore(),
    ...options,
  });
}

/** Resolves with the next `count` values an emitter passes to `event`. */
export function nextEvents<T>(emitter: { on(e: string, l: (v: T) => void): unknown; off(e: string, l: (v: T) => void): unknown }, event: string, count = 1, timeoutMs = 5000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out waiting for ${count} "${event}" events (got ${got.length})`));
    }, timeoutMs);
    const listener = (value: T) => {
      got.push(value);
      if (got.length === count) {
        clearTimeout(timer);
        emitter.off(event, listener);
        resolve(got);
      }
    };
    emitter.on(event, listener);
  });
}

/** Polls `predicate` until it holds, or fails after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
