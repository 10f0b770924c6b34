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
import { E2EEClient, MemoryKeyStore, type E2EEClientOptions } from '../../client/node.js';
import { toB64u } from '../../shared/index.js';
import { waitFor } from './concurrency.js';
import { demoToken } from './demo-session.js';
import { RATE_LIMITS_OFF } from './env.js';

/** A real server in this process, listening on a loopback port. */
export interface LoopbackServer {
  url: string;
  port: number;
  dataDir: string;
  store: Store;
  appPublicKey: string;
  /** A demo session token for `identity`. */
  session(identity: string): Promise<string>;
  close(): Promise<void>;
}

export interface LoopbackOptions {
  env?: Record<string, string>;
  /** Reuse a data directory (a restart); it is then left in place by close(). */
  dataDir?: string;
  /** Listen on this port (a restart on the same address); default any free port. */
  port?: number;
}

/** Starts a server on the SQLite store in a fresh (or the given) data directory, every rate limit off. */
export async function startLoopbackServer(options: LoopbackOptions = {}): Promise<LoopbackServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'e2ee-test-'));
  // Checkpoints every 100 ms: a client waits for the one that proves a new card before using it.
  const config = await loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', LOG_CHECKPOINT_INTERVAL_MS: '100', ...RATE_LIMITS_OFF, ...options.env });
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
    session: (identity) => demoToken({ url }, identity),
    async close() {
      await app.close();
      await store.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until the server's newest checkpoint holds every event its log has now (the next one, at most 100 ms away). */
export async function checkpointed(server: LoopbackServer): Promise<void> {
  const size = await server.store.logSize();
  await waitFor(async () => ((await server.store.latestCheckpoint())?.size ?? 0) >= size, `a checkpoint of ${size} events`);
}

/** An E2EEClient for `identity` on its own device (its own key store unless one is given). */
export async function device(server: LoopbackServer, identity: string, options: Partial<E2EEClientOptions> = {}): Promise<E2EEClient> {
  const token = await server.session(identity);
  return E2EEClient.create({
    serverUrl: server.url,
    getAuthToken: () => token,
    appPublicKeys: [server.appPublicKey],
    keyStore: new MemoryKeyStore(),
    ...options,
  });
}
