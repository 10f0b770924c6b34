/**
 * Device keys in real Chromium (the client library bundled as an app would, test/browser/page):
 * a device made in the browser keeps non-extractable WebCrypto keys that same-origin script can
 * use but not copy out, and still chats both ways with a Node client; where the browser lacks
 * WebCrypto Ed25519/X25519 the store falls back to raw secrets under AES-GCM, and a row of that
 * older scheme keeps loading, and is upgraded (same card) once the curves are there. The last
 * test shows what a copy of the browser profile holds.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { E2EEClient, MemoryKeyStore } from '../../client/index.js';
import { fromB64u, parseSnapshot, ready, toB64u, utf8, type CardWire } from '../../shared/index.js';
import { signKeyPairFromSeed, verify } from '../../shared/sodium.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { describeWithChromium, launchBrowser, launchProfile, startDemoServer, tempProfileDir, watchErrors, type DemoServer } from '../support/browser.js';
import { buildTestPage } from '../support/test-page.js';

interface RowReport {
  identity: string;
  scheme: string | null;
  members: string[];
  cryptoKeys: Record<string, { type: string; algorithm: string; extractable: boolean; exported: string[] }>;
  bytes: string[];
}
interface DatabaseReport {
  rows: RowReport[];
  wrappingKeys: number;
}
interface PageReceived {
  conversationSid: string;
  author: string | null;
  body: string | null;
  status: string;
  senderCardId?: string;
}
type TestWindow = typeof globalThis & {
  e2eeTest: {
    start(identity: string, database: string): Promise<{ cardId: string; card: CardWire }>;
    send(conversationSid: string, body: string): Promise<void>;
    received: PageReceived[];
    inspectDatabase(database: string): Promise<DatabaseReport>;
    dropScheme(database: string, identity: string): Promise<void>;
    signWithStoredKey(database: string, identity: string, message: string): Promise<string>;
  };
};

/** The Ed25519 PKCS#8 prefix: how WebCrypto serializes an Ed25519 private key, seed after it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

describeWithChromium('device keys in Chromium', () => {
  let server: DemoServer;
  let pageDir: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let bob: E2EEClient;
  let bobChat: Client;

  beforeAll(async () => {
    await ready();
    pageDir = await buildTestPage();
    [server, browser] = await Promise.all([startDemoServer(pageDir), launchBrowser()]);
    bob = await nodeClient('bob');
    await bob.register();
    bobChat = await bob.connect();
  }, 120_000);

  afterAll(async () => {
    await bobChat?.shutdown();
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
    if (pageDir) rmSync(pageDir, { recursive: true, force: true });
    expect(pageErrors).toEqual([]);
  });

  async function nodeClient(identity: string): Promise<E2EEClient> {
    const session = await fetch(`${server.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity }) });
    const { token } = (await session.json()) as { token: string };
    const { publicKey } = (await (await fetch(`${server.url}/v1/app-key`)).json()) as { publicKey: string };
    return E2EEClient.create({ serverUrl: server.url, getAuthToken: () => token, appPublicKeys: [publicKey], keyStore: new MemoryKeyStore(), cardCacheTtlMs: 0 });
  }

  /** A browser context whose pages lack WebCrypto Ed25519 and X25519 when their URL has `?hide-curves`. */
  async function newContext(existing?: BrowserContext): Promise<BrowserContext> {
    const context = existing ?? (await browser.newContext());
    if (!existing) contexts.push(context);
    await context.addInitScript(() => {
      if (!location.search.includes('hide-curves')) return;
      const subtle = crypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      for (const [method, at] of [['generateKey', 0], ['importKey', 2]] as const) {
        const original = subtle[method]!.bind(crypto.subtle);
        subtle[method] = (...args: unknown[]) => {
          const algorithm = args[at] as string | { name?: string };
          const name = typeof algorithm === 'string' ? algorithm : algorithm?.name;
          if (name === 'Ed25519' || name === 'X25519') return Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
          return original(...args);
        };
      }
    });
    return context;
  }

  async function openPage(context: BrowserContext, query = ''): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    watchErrors(page, pageErrors);
    await page.goto(`${server.url}/${query}`);
    await page.waitForFunction(() => document.body.dataset.ready === 'true');
    return page;
  }

  const start = (page: Page, identity: string, database: string) =>
    page.evaluate(([i, d]) => (globalThis as TestWindow).e2eeTest.start(i!, d!), [identity, database]);
  const inspect = (page: Page, database: string) => page.evaluate((d) => (globalThis as TestWindow).e2eeTest.inspectDatabase(d), database);

  /** bob (Node, libsodium) and a browser identity chat both ways; both see the other verified. */
  async function roundTrip(page: Page, identity: string, cardId: string): Promise<void> {
    const conversation: Conversation = await bobChat.createConversation({ friendlyName: `with ${identity}` });
    await conversation.join();
    await conversation.add(identity);
    const fromBob = `hello ${identity}, from bob`;
    await conversation.sendMessage(fromBob);
    await page.waitForFunction(
      ([sid, body]) => (globalThis as TestWindow).e2eeTest.received.some((m) => m.conversationSid === sid && m.body === body),
      [conversation.sid, fromBob],
    );
    const atBrowser = await page.evaluate((sid) => (globalThis as TestWindow).e2eeTest.received.filter((m) => m.conversationSid === sid), conversation.sid);
    expect(atBrowser).toEqual([{ conversationSid: conversation.sid, author: 'bob', body: fromBob, status: 'verified', senderCardId: bob.card!.id }]);

    const atBob = nextEvents<Message>(bobChat, 'messageAdded', 1, 10_000);
    const fromBrowser = `hello bob, from ${identity}`;
    await page.evaluate(([sid, body]) => (globalThis as TestWindow).e2eeTest.send(sid!, body!), [conversation.sid, fromBrowser]);
    const [message] = await atBob;
    expect(message!.body).toBe(fromBrowser);
    expect(message!.author).toBe(identity);
    expect(message!.e2ee).toMatchObject({ status: 'verified', via: 'direct', senderCardId: cardId });
  }

  function publicKeysOf(card: CardWire): string[] {
    const fields = parseSnapshot(fromB64u(card.snapshot));
    return [fields.signKey, fields.boxKey].sort();
  }

  it('keeps a device made in Chromium as non-extractable CryptoKeys: same-origin script can use them but not export them, and finds no secret bytes', async () => {
    const page = await openPage(await newContext());
    const { card } = await start(page, 'alice', 'keys-alice');
    const report = await inspect(page, 'keys-alice');
    expect(report.rows).toHaveLength(1);
    const row = report.rows[0]!;
    expect(row.scheme).toBe('webcrypto');
    expect(row.members).not.toContain('sealed');
    expect(row.cryptoKeys).toEqual({
      signPrivateKey: { type: 'private', algorithm: 'Ed25519', extractable: false, exported: [] },
      boxPrivateKey: { type: 'private', algorithm: 'X25519', extractable: false, exported: [] },
    });
    // The only bytes in the row are the card's two public keys; no AES wrapping key was made.
    expect(row.bytes.sort()).toEqual(publicKeysOf(card));
    expect(report.wrappingKeys).toBe(0);
    // What script can still do while the page is open: sign as the device.
    const signature = await page.evaluate((m) => (globalThis as TestWindow).e2eeTest.signWithStoredKey('keys-alice', 'alice', m), 'made by injected script');
    expect(verify(fromB64u(signature), utf8('made by injected script'), fromB64u(parseSnapshot(fromB64u(card.snapshot)).signKey))).toBe(true);
  });

  it('registers that device and chats with a Node client both ways, verified', async () => {
    const page = await openPage(await newContext());
    const { cardId } = await start(page, 'erin', 'keys-erin');
    expect((await inspect(page, 'keys-erin')).rows[0]!.scheme).toBe('webcrypto');
    await roundTrip(page, 'erin', cardId);
  });

  it('falls back to raw secrets under AES-GCM without WebCrypto Ed25519/X25519; an older row keeps loading, and is upgraded (same card) once they are there', async () => {
    const context = await newContext();
    const hidden = await openPage(context, '?hide-curves');
    expect(await hidden.evaluate(() => crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign']).then(() => 'supported', () => 'refused'))).toBe('refused');
    const { cardId } = await start(hidden, 'carol', 'keys-carol');
    const fallback = (await inspect(hidden, 'keys-carol')).rows[0]!;
    expect(fallback.scheme).toBe('aes-gcm');
    expect(fallback.members).toContain('sealed');
    expect(fallback.cryptoKeys).toEqual({});
    await roundTrip(hidden, 'carol', cardId);
    await hidden.close();

    // A row exactly as the store wrote it before rows recorded their scheme, loaded without the curves.
    const old = await openPage(context, '?hide-curves');
    await old.evaluate(() => (globalThis as TestWindow).e2eeTest.dropScheme('keys-carol', 'carol'));
    expect((await inspect(old, 'keys-carol')).rows[0]!.scheme).toBeNull();
    expect((await start(old, 'carol', 'keys-carol')).cardId).toBe(cardId);
    await roundTrip(old, 'carol', cardId);
    await old.evaluate(() => (globalThis as TestWindow).e2eeTest.dropScheme('keys-carol', 'carol'));
    await old.close();

    // The same row where the browser has the curves: upgraded to non-extractable keys, same card.
    const upgraded = await openPage(context);
    expect((await start(upgraded, 'carol', 'keys-carol')).cardId).toBe(cardId);
    const row = (await inspect(upgraded, 'keys-carol')).rows[0]!;
    expect(row.scheme).toBe('webcrypto');
    expect(row.members).not.toContain('sealed');
    expect(Object.values(row.cryptoKeys).map((k) => [k.extractable, k.exported])).toEqual([[false, []], [false, []]]);
    await roundTrip(upgraded, 'carol', cardId);
  });

  it('a copy of the profile holds the key material: Chromium writes non-extractable keys to IndexedDB on disk unencrypted', async () => {
    const profile = tempProfileDir();
    try {
      const context = await newContext(await launchProfile(profile));
      const page = await openPage(context);
      const { card } = await start(page, 'dora', 'keys-dora');
      expect((await inspect(page, 'keys-dora')).rows[0]!.scheme).toBe('webcrypto');
      await context.close();
      // Read the closed profile's files as whoever copied them would: look for a PKCS#8 Ed25519 key.
      const signKey = parseSnapshot(fromB64u(card.snapshot)).signKey;
      const seeds = new Set<string>();
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir)) {
          const path = join(dir, entry);
          if (statSync(path).isDirectory()) walk(path);
          else {
            const bytes = readFileSync(path);
            for (let at = bytes.indexOf(ED25519_PKCS8_PREFIX); at >= 0; at = bytes.indexOf(ED25519_PKCS8_PREFIX, at + 1)) {
              const seed = bytes.subarray(at + ED25519_PKCS8_PREFIX.length, at + ED25519_PKCS8_PREFIX.length + 32);
              if (seed.length === 32) seeds.add(toB64u(new Uint8Array(seed)));
            }
          }
        }
      };
      walk(join(profile, 'Default', 'IndexedDB'));
      const recovered = [...seeds].filter((seed) => toB64u(signKeyPairFromSeed(fromB64u(seed)).publicKey) === signKey);
      expect(recovered).toHaveLength(1);
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
