/**
 * Browser tests of the demo web client: a real server as `npm start` runs it (SQLite in a temp
 * data directory, local relay, demo login, the built demo served at "/") and Debian's Chromium
 * driven by playwright-core. Nothing is mocked.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type LaunchOptions, type Page } from 'playwright-core';
import { describe, it } from 'vitest';
import { E2EEClient, MemoryKeyStore } from '../../client/node.js';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { buildDemo, demoRoot } from '../../server/demo.js';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';
import { ApiPath } from '../../shared/api.js';
import { demoToken } from './demo-session.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = fileURLToPath(new URL('../browser/screenshots/', import.meta.url));

const LAUNCH: LaunchOptions = {
  executablePath: CHROMIUM_PATH,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/**
 * `describe` for tests that need Chromium: skipped with a message when it is missing, except in
 * CI (CI=true), where a missing browser is a failure, never a silent skip.
 */
export function describeWithChromium(name: string, body: () => void): void {
  if (existsSync(CHROMIUM_PATH)) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH; browser tests never skip in CI`);
      });
    });
  } else {
    console.warn(`\n[browser tests] SKIPPED: Chromium not found at ${CHROMIUM_PATH}. Install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH) to run them.\n`);
    describe.skip(name, body);
  }
}

export interface DemoServer {
  url: string;
  dataDir: string;
  store: Store;
  close(): Promise<void>;
}

/**
 * Builds the demo if it is missing or stale, then serves it with the API, like `npm start`; or
 * serves another built page (`distDir`, e.g. test/browser/page.ts) in its place.
 */
export async function startDemoServer(distDir?: string): Promise<DemoServer> {
  const root = demoRoot();
  if (!root) throw new Error('client/demo not found');
  if (!distDir) await buildDemo(root);
  const dataDir = mkdtempSync(join(tmpdir(), 'e2ee-browser-'));
  const config = await loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
  const store = await openStore({ dataDir });
  const app = await buildApp({ config, store, demo: { distDir: distDir ?? join(root, 'dist') } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    store,
    async close() {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch(LAUNCH);
}

/** A browser profile on disk: IndexedDB survives reloads and browser restarts. */
export async function launchProfile(userDataDir: string, viewport = { width: 1200, height: 760 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { ...LAUNCH, viewport });
}

export function tempProfileDir(): string {
  return mkdtempSync(join(tmpdir(), 'e2ee-profile-'));
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Collects uncaught page errors and console errors, so a test can assert there were none. */
export function watchErrors(page: Page, into: string[]): void {
  page.on('pageerror', (err) => into.push(`${page.url()} pageerror: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') into.push(`${page.url()} console: ${message.text()}`);
  });
}

/** A device of `identity` in Node (keys in memory), which no browser of the test has seen. */
export async function nodeDevice(server: DemoServer, identity: string, deviceName: string): Promise<E2EEClient> {
  const token = await demoToken(server, identity);
  const appKey = (await (await fetch(`${server.url}${ApiPath.appKey}`)).json()) as { publicKey: string };
  return E2EEClient.create({ serverUrl: server.url, getAuthToken: () => token, appPublicKeys: [appKey.publicKey], keyStore: new MemoryKeyStore(), deviceName });
}
