/**
 * `npm run bench` (full, a few minutes) or `npm run bench -- --quick` (under a minute): the cost
 * of encryption, decryption, history and the card service, each beside its floor measured in the
 * same run on the same machine. Prints a table and writes bench/results.json.
 *
 * Options: --quick, --out <file> (default bench/results.json).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nodeCryptoBackend } from '../server/crypto-backend.js';
import { maxRecipientsForBody } from '../shared/envelope.js';
import { ready, setBackend, type CryptoBackend } from '../shared/sodium.js';
import { bundleClient } from '../test/support/client-bundle.js';
import { makeApp, makeDevice, type DeviceFixture } from '../test/support/crypto.js';
import { benchAttachments, renderAttachments } from './attachment.js';
import { benchBrowser } from './browser.js';
import { startBenchServer, type BenchServer } from './child.js';
import { benchDecrypt, benchEncrypt, benchPrimitives, MESSAGE_BYTES, RECIPIENT_COUNTS, type Plan } from './crypto.js';
import { benchHistoryPage, benchHistoryRewrap, seedHistory } from './history.js';
import type { LoadResult } from './load.js';
import { evaluateTargets, renderTables, type ClientResults, type Results } from './report.js';
import { benchCeiling, benchLookup, benchRegistration, HISTORY_CONNECTIONS, LOOKUP_CONNECTIONS, REGISTRATION_CONNECTIONS, WITHOUT_LOG, type ServerPlan } from './server.js';
import { median, round } from './stats.js';
import { benchStore } from './storage.js';

const HISTORY_MESSAGES = 1000;

/** How each figure is measured, kept with the figures. */
const METHOD = {
  timing: 'process.hrtime; warm-up runs first; the median of the timed runs (IQR alongside); a figure and its floor timed alternately in the same process',
  encryptFloor: 'sign + body AEAD (XChaCha20-Poly1305) + N x (X25519 + wrap AEAD (ChaCha20-Poly1305)), through shared/sodium.ts with the same backend',
  decryptFloor: 'X25519 + unwrap AEAD + body AEAD + Ed25519 verify, through shared/sodium.ts with the same backend',
  encrypt: '1 KiB message; 500 devices never fit one Twilio body (32 KB): sealEnvelope refuses it by default, so that row is sealed with maxTextChars lifted (fitsTwilioBody: false), and the largest count that fits is measured too',
  decrypt: 'one device (the last slot) of a 100-device envelope, opened from its text form: parse, unwrap, commitment, decrypt, verify',
  historyPage: '1000 messages of 1 KiB read by a device that joined later: client/message-crypto.ts MessageCrypto.open for each, rewraps fetched by HistoryRewraps.prefetch (fetchMs) and cached',
  server: 'autocannon on 127.0.0.1 against the real app (buildApp, SQLite in a temporary directory, demo configuration, rate limits off, LOG_LEVEL=info) in its own process; the ceiling is a bare Fastify route in that process doing one Ed25519 verify + one sign',
  registrationWithoutLog: 'the same app in a second process whose card store appends no transparency log event (BENCH_SERVER_LOG=off, bench only), registration runs alternated with the logged one',
  lookup: 'GET /v1/cards for 5 identities with 3 cards each; p99 over 50 connections as fast as the server answers (closed loop), and over one connection',
  latency: 'autocannon records latency in whole milliseconds: 0 means under 1 ms',
  store: 'SQLite registerCard alone, on disk in the temporary directory (WAL, synchronous=FULL) and in memory, alternating batches of 100',
  historyRewrap: 'GET /v1/history pages of 500 for a reader whose card needs a rewrap of every message; rewraps/s = pages/s x 500',
  clientBundle: 'twilio-e2ee/client (client/index.ts) bundled by esbuild for browsers: ESM, minified, nothing external, code splitting; gzip (zlib, level 6) of each file a page loads up front; libsodium = the difference with libsodium-wrappers left out (test/support/client-bundle.ts)',
  browser: "Debian's Chromium (headless, playwright-core) loading the client library bundled by Vite (test/browser/page); performance.now in the page (0.1 ms resolution: opens timed 10 at a time, primitives 100 at a time); libsodium and WebCrypto runs interleaved; 100 recipient devices, 1 KiB message",
} as const;

function parseArgs(argv: string[]): { quick: boolean; out: string } {
  let quick = false;
  let out = fileURLToPath(new URL('./results.json', import.meta.url));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--out') out = argv[++i] ?? out;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench [-- --quick] [-- --out file.json]');
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (try --help)`);
  }
  return { quick, out };
}

const load3 = () => loadavg().map((l) => round(l));
const t0 = Date.now();
const step = (text: string) => process.stderr.write(`bench [${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${text}\n`);

function packageVersion(name: string): string {
  try {
    const path = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function clientSide(backend: CryptoBackend | null, sender: DeviceFixture, devices: DeviceFixture[], plan: Plan): Promise<Omit<ClientResults, 'historyPage'>> {
  setBackend(backend);
  const name = backend?.name ?? 'libsodium';
  step(`${name}: primitives`);
  const primitivesUs = benchPrimitives(sender, devices[0]!, plan);
  step(`${name}: encrypt for ${RECIPIENT_COUNTS.join(', ')} devices and the most a Twilio body holds`);
  const encrypt = benchEncrypt(sender, devices, plan).rows;
  step(`${name}: decrypt`);
  const decrypt = benchDecrypt(sender, devices, plan);
  return { backend: name, encrypt, decrypt, primitivesUs };
}

async function main(): Promise<void> {
  const { quick, out } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const loadAtStart = load3();
  // The 1-minute load average through the run: other work on the machine skews every figure.
  let loadMax = loadAtStart[0]!;
  const loadWatch = setInterval(() => (loadMax = Math.max(loadMax, round(loadavg()[0]!))), 5000).unref();
  await ready();
  const plan: Plan = { quick };
  const serverPlan: ServerPlan = quick ? { seconds: 3, warmupSeconds: 1 } : { seconds: 10, warmupSeconds: 2 };
  step(`${quick ? 'quick' : 'full'} run; load average ${loadAtStart.join(' / ')} on ${availableParallelism()} cores`);

  // Fixtures (with the faster backend: setup is not measured).
  setBackend(nodeCryptoBackend);
  const app = makeApp();
  const sender = makeDevice(app, 'bench-sender', { deviceId: 'laptop' });
  const devices = Array.from({ length: 501 }, (_, i) => makeDevice(app, `bench-user-${Math.floor(i / 5)}`, { deviceId: `device-${i % 5}` }));

  const sodium = await clientSide(null, sender, devices, plan);
  const node = await clientSide(nodeCryptoBackend, sender, devices, plan);
  step('client bundle for browsers (esbuild)');
  const clientBundle = await bundleClient();
  step('Chromium: seal for 100 devices and open one, WebCrypto device keys beside libsodium');
  const browser = await benchBrowser(quick);

  let server: BenchServer | undefined;
  let unlogged: BenchServer | undefined;
  try {
    setBackend(nodeCryptoBackend);
    step('starting the server processes (with the log, and without it for comparison)');
    server = await startBenchServer();
    unlogged = await startBenchServer(WITHOUT_LOG);
    const rounds = quick ? 1 : 2;
    const ceiling: LoadResult[] = [];
    const registration: LoadResult[] = [];
    const registrationWithoutLog: LoadResult[] = [];
    step('store: one card registration on disk and in memory');
    const storeCost = await benchStore(quick);
    for (let r = 0; r < rounds; r++) {
      step(`ceiling route, ${serverPlan.seconds} s (round ${r + 1} of ${rounds})`);
      ceiling.push(await benchCeiling(server, serverPlan, REGISTRATION_CONNECTIONS));
      step(`card registration, fresh cards for ${serverPlan.seconds} s (round ${r + 1} of ${rounds})`);
      registration.push(await benchRegistration(server, serverPlan, REGISTRATION_CONNECTIONS));
      step(`card registration without the log's append, ${serverPlan.seconds} s (round ${r + 1} of ${rounds})`);
      registrationWithoutLog.push(await benchRegistration(unlogged, serverPlan, REGISTRATION_CONNECTIONS));
    }
    await unlogged.stop();
    step(`card lookups: ${LOOKUP_CONNECTIONS} connections, then one (${serverPlan.seconds} s each)`);
    const lookup = await benchLookup(server, serverPlan, LOOKUP_CONNECTIONS);
    step(`history: ${HISTORY_MESSAGES} messages through POST /v1/history`);
    const fixture = await seedHistory(server, HISTORY_MESSAGES, 1024);
    step(`history seeded: ${fixture.seedMs.sealAndAppend} ms sealing and appending, ${fixture.seedMs.backups} ms of backups`);
    step(`history reads, ${serverPlan.seconds} s`);
    const history = await benchHistoryRewrap(server, fixture, serverPlan, HISTORY_CONNECTIONS);
    const pageRuns = quick ? 3 : 7;
    step('history page on the client (libsodium)');
    setBackend(null);
    const sodiumPage = await benchHistoryPage(server, fixture, pageRuns);
    step('history page on the client (node:crypto)');
    setBackend(nodeCryptoBackend);
    const nodePage = await benchHistoryPage(server, fixture, pageRuns);
    setBackend(null);

    const ceilingPerSec = round(median(ceiling.map((c) => c.perSec)));
    const cardRegistrationPerSec = round(median(registration.map((c) => c.perSec)));
    const cardRegistrationWithoutLogPerSec = round(median(registrationWithoutLog.map((c) => c.perSec)));
    const machine = {
      node: process.versions.node,
      v8: process.versions.v8,
      openssl: process.versions.openssl,
      libsodiumWrappers: packageVersion('libsodium-wrappers'),
      autocannon: packageVersion('autocannon'),
      platform: `${process.platform} ${process.arch}`,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      memoryGiB: round(totalmem() / 2 ** 30),
      load: { start: loadAtStart, end: load3(), max1min: loadMax },
      mode: quick ? 'quick' : 'full',
      date: new Date().toISOString(),
      seconds: round((Date.now() - started) / 1000),
    };
    const partial: Omit<Results, 'targets'> = {
      machine,
      method: METHOD,
      encrypt: sodium.encrypt,
      maxRecipientsFor1KiB: maxRecipientsForBody(MESSAGE_BYTES),
      decrypt: sodium.decrypt,
      historyPage: sodiumPage,
      server: {
        cardRegistrationPerSec,
        ceilingPerSec,
        ratio: round(cardRegistrationPerSec / ceilingPerSec),
        cardRegistrationWithoutLogPerSec,
        logRatio: round(cardRegistrationPerSec / cardRegistrationWithoutLogPerSec),
        lookupP99Ms: lookup.saturated.latencyMs.p99,
        lookupPerSec: lookup.saturated.perSec,
        lookupSingleP99Ms: lookup.single.latencyMs.p99,
        historyRewrapPerSec: history.rewrapsPerSec,
        storeRegistrationUs: storeCost,
        backend: server.backend,
        logLevel: server.env.LOG_LEVEL!,
        details: { registration, registrationWithoutLog, ceiling, lookup, history },
      },
      nodeCrypto: { encrypt: node.encrypt, decrypt: node.decrypt, historyPage: nodePage },
      primitivesUs: { libsodium: sodium.primitivesUs, 'node:crypto': node.primitivesUs },
      browser,
      clientBundle,
    };
    const results: Results = { ...partial, targets: evaluateTargets(partial) };
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(renderTables(results));
    console.log(`\n${renderAttachments(await benchAttachments(quick))}`);
    console.log(`\nwrote ${out} in ${machine.seconds} s`);
  } finally {
    clearInterval(loadWatch);
    await Promise.all([server?.stop(), unlogged?.stop()]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
