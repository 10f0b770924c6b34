/**
 * The browser side, in Chromium (Debian's /usr/bin/chromium or CHROMIUM_PATH, driven by
 * playwright-core; never a downloaded browser): sealing a 1 KiB message for 100 devices and
 * opening one, with the device keys as non-extractable WebCrypto keys (sign and X25519 in native
 * code, async) beside raw keys on libsodium's WebAssembly; and the primitives behind the
 * difference, 100 x X25519 and 100 x Ed25519 signing, in each.
 *
 * Runs inside `npm run bench`, or alone: `npx tsx bench/browser.ts` (prints JSON).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { buildTestPage } from '../test/support/test-page.js';
import { round, summarize, type Summary } from './stats.js';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Median and interquartile range of one figure, ms. */
export interface BrowserFigure {
  ms: number;
  iqr: [number, number];
  runs: number;
}

export interface BrowserResults {
  chromium: string;
  /** 1 KiB message, 100 recipient devices, sealEnvelope (raw keys) vs sealEnvelopeAsync (WebCrypto sign key). */
  seal100: { libsodium: BrowserFigure; webCryptoKeys: BrowserFigure };
  /** One device of a 100-device envelope, from its text form: openEnvelope vs openEnvelopeAsync (WebCrypto X25519); timed 10 at a time. */
  open100: { libsodium: BrowserFigure; webCryptoKeys: BrowserFigure };
  /** Per batch of 100 operations. WebCrypto X25519 includes importing each raw public key; "parallel" awaits all 100 at once. */
  primitives100: {
    x25519: { libsodium: BrowserFigure; webCrypto: BrowserFigure; webCryptoParallel: BrowserFigure };
    sign: { libsodium: BrowserFigure; webCrypto: BrowserFigure };
  };
}

export type BrowserOutcome = BrowserResults | { skipped: string };

const OPENS_PER_SAMPLE = 10;
const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

/** Serves the built page's files on a loopback port (the page needs no API to measure). */
function serveStatic(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const file = join(root, path === '/' ? 'index.html' : path);
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

/** `per`: operations per sample (the page's clock has 0.1 ms resolution, so short operations are timed in batches). */
function figure(samples: number[], per = 1): BrowserFigure {
  const s: Summary = summarize(samples.map((ms) => ms / per));
  return { ms: round(s.median), iqr: [round(s.p25), round(s.p75)], runs: s.runs };
}

/** The samples (ms) of each measurement, taken in the page. Runs are interleaved pairwise. */
type PageSamples = Record<'sealSodium' | 'sealWeb' | 'openSodium' | 'openWeb' | 'x25519Sodium' | 'x25519Web' | 'x25519WebParallel' | 'signSodium' | 'signWeb', number[]>;

/** Runs in the page (serialized by playwright): only the page's globals are in scope. */
async function measureInPage(plan: { sealRuns: number; openRuns: number; primitiveRuns: number; warmup: number; opensPerSample: number }): Promise<PageSamples> {
  const OPENS_PER_SAMPLE = plan.opensPerSample;
  const { shared, sodium, deviceKeys } = (globalThis as unknown as { e2eeTest: Record<string, any> }).e2eeTest as {
    shared: typeof import('../shared/index.js');
    sodium: typeof import('../shared/sodium.js');
    deviceKeys: typeof import('../client/webcrypto-device-keys.js');
  };
  await shared.ready();
  const cardId = () => shared.toHex(sodium.randomBytes(32));
  const raw = shared.generateDeviceKeys();
  const rawId = cardId();
  const web = await deviceKeys.generateWebCryptoDeviceKeys();
  if (!web) throw new Error('this Chromium lacks WebCrypto Ed25519/X25519');
  const webKeys = deviceKeys.webCryptoAsyncKeys(web);
  const webId = cardId();
  // 98 other devices plus the two measured ones: 100 recipient devices.
  const recipients = Array.from({ length: 98 }, () => ({ id: cardId(), boxPublicKey: sodium.x25519Base(sodium.randomBytes(32)) }));
  recipients.push({ id: rawId, boxPublicKey: raw.boxPublicKey }, { id: webId, boxPublicKey: web.boxPublicKey });
  const conversationSid = `CH${'0123456789abcdef'.repeat(2)}`;
  const body = 'x'.repeat(1024);
  const envelope = shared.sealEnvelope({ sender: { cardId: rawId, signSecretKey: raw.signSecretKey }, recipients, conversationSid, body }).text;
  const senderCard = { id: rawId, identity: 'bench', signPublicKey: raw.signPublicKey, revokedAt: null };
  const ephemeral = sodium.randomBytes(32);
  const webEphemeral = ((await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair).privateKey;
  const webX25519 = async (publicKey: Uint8Array) => {
    const peer = await crypto.subtle.importKey('raw', publicKey as BufferSource, { name: 'X25519' }, true, []);
    return crypto.subtle.deriveBits({ name: 'X25519', public: peer }, webEphemeral, 256);
  };
  const probe = new Uint8Array(200);

  const subjects = {
    sealSodium: () => shared.sealEnvelope({ sender: { cardId: rawId, signSecretKey: raw.signSecretKey }, recipients, conversationSid, body }),
    sealWeb: () => shared.sealEnvelopeAsync({ sender: { cardId: webId, keys: webKeys }, recipients, conversationSid, body }),
    openSodium: () => {
      for (let i = 0; i < OPENS_PER_SAMPLE; i++) shared.openEnvelope(envelope, { recipient: { cardId: rawId, boxSecretKey: raw.boxSecretKey, boxPublicKey: raw.boxPublicKey }, senderCard, conversationSid });
    },
    openWeb: async () => {
      for (let i = 0; i < OPENS_PER_SAMPLE; i++) await shared.openEnvelopeAsync(envelope, { recipient: { cardId: webId, keys: webKeys }, senderCard, conversationSid });
    },
    x25519Sodium: () => recipients.forEach((r) => sodium.x25519(ephemeral, r.boxPublicKey)),
    x25519Web: async () => {
      for (const r of recipients) await webX25519(r.boxPublicKey);
    },
    x25519WebParallel: () => Promise.all(recipients.map((r) => webX25519(r.boxPublicKey))),
    signSodium: () => {
      for (let i = 0; i < 100; i++) sodium.sign(probe, raw.signSecretKey);
    },
    signWeb: async () => {
      for (let i = 0; i < 100; i++) await webKeys.sign(probe);
    },
  };
  const samples = Object.fromEntries(Object.keys(subjects).map((k) => [k, [] as number[]])) as PageSamples;
  const pairs: Array<[keyof PageSamples, keyof PageSamples, number]> = [
    ['sealSodium', 'sealWeb', plan.sealRuns],
    ['openSodium', 'openWeb', plan.openRuns],
    ['x25519Sodium', 'x25519Web', plan.primitiveRuns],
    ['x25519Sodium', 'x25519WebParallel', plan.primitiveRuns],
    ['signSodium', 'signWeb', plan.primitiveRuns],
  ];
  for (const [a, b, runs] of pairs) {
    const fresh = (name: keyof PageSamples) => samples[name].length === 0;
    const record = { a: fresh(a), b: fresh(b) };
    for (let i = 0; i < plan.warmup; i++) {
      await subjects[a]();
      await subjects[b]();
    }
    for (let i = 0; i < runs; i++) {
      // Alternate, and alternate the order, so drift affects both alike.
      for (const name of i % 2 === 0 ? [a, b] : [b, a]) {
        const start = performance.now();
        await subjects[name]();
        const ms = performance.now() - start;
        if (name === a ? record.a : record.b) samples[name].push(ms);
      }
    }
  }
  return samples;
}

/** Measures in Chromium; { skipped } when it is not installed. */
export async function benchBrowser(quick: boolean): Promise<BrowserOutcome> {
  if (!existsSync(CHROMIUM_PATH)) return { skipped: `Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)` };
  const pageDir = await buildTestPage();
  const { server, url } = await serveStatic(pageDir);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: LAUNCH_ARGS });
  try {
    const page = await browser.newPage();
    // tsx compiles measureInPage with esbuild's keepNames, whose __name helper the page lacks.
    await page.addInitScript('globalThis.__name = (fn) => fn;');
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready === 'true');
    const plan = { ...(quick ? { sealRuns: 15, openRuns: 15, primitiveRuns: 10, warmup: 3 } : { sealRuns: 60, openRuns: 60, primitiveRuns: 40, warmup: 10 }), opensPerSample: OPENS_PER_SAMPLE };
    const s = await page.evaluate(measureInPage, plan);
    return {
      chromium: browser.version(),
      seal100: { libsodium: figure(s.sealSodium), webCryptoKeys: figure(s.sealWeb) },
      open100: { libsodium: figure(s.openSodium, OPENS_PER_SAMPLE), webCryptoKeys: figure(s.openWeb, OPENS_PER_SAMPLE) },
      primitives100: {
        x25519: { libsodium: figure(s.x25519Sodium), webCrypto: figure(s.x25519Web), webCryptoParallel: figure(s.x25519WebParallel) },
        sign: { libsodium: figure(s.signSodium), webCrypto: figure(s.signWeb) },
      },
    };
  } finally {
    await browser.close();
    server.close();
    rmSync(pageDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchBrowser(process.argv.includes('--quick'))
    .then((results) => console.log(JSON.stringify(results, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
