/** The results file's shape, the targets of issue #7, and the table printed after a run. */
import { round } from './stats.js';
import type { ClientBundle } from '../test/support/client-bundle.js';
import type { BrowserOutcome } from './browser.js';
import type { DecryptResult, EncryptResult, PrimitiveTimes } from './crypto.js';
import type { HistoryPageResult, HistoryRewrapResult } from './history.js';
import type { LoadResult } from './load.js';
import { REGISTRATION_CONNECTIONS, type LookupResult } from './server.js';
import type { StoreCost } from './storage.js';

/** Bytes as KB (1000 bytes), one decimal. */
const kb = (bytes: number) => (bytes / 1000).toFixed(1);

export interface ClientResults {
  backend: string;
  encrypt: EncryptResult['rows'];
  decrypt: DecryptResult;
  historyPage: HistoryPageResult;
  primitivesUs: PrimitiveTimes;
}

export interface Results {
  machine: Record<string, unknown>;
  method: Record<string, string>;
  /** Figures of the default backend (libsodium): what every client, browsers included, runs. */
  encrypt: EncryptResult['rows'];
  maxRecipientsFor1KiB: number;
  decrypt: DecryptResult;
  historyPage: HistoryPageResult;
  server: {
    cardRegistrationPerSec: number;
    ceilingPerSec: number;
    ratio: number;
    /** The same app without the transparency log's append (BENCH_SERVER_LOG=off), and registration's rate with it over that. */
    cardRegistrationWithoutLogPerSec: number;
    logRatio: number;
    /** p99 over 50 connections, closed loop (autocannon -c 50): mostly queueing, 50 / lookupPerSec on average. */
    lookupP99Ms: number;
    /** The capacity: lookups per second over 50 connections. */
    lookupPerSec: number;
    /** p99 over one connection: the server's own time per lookup (1 ms resolution). */
    lookupSingleP99Ms: number;
    historyRewrapPerSec: number;
    /** The store's own cost of one registration: on disk (fsync per commit) and in memory. */
    storeRegistrationUs: StoreCost;
    backend: Record<string, string>;
    logLevel: string;
    details: { registration: LoadResult[]; registrationWithoutLog: LoadResult[]; ceiling: LoadResult[]; lookup: LookupResult; history: HistoryRewrapResult };
  };
  /** The same client-side figures with the node:crypto backend the server uses (Node clients may install it too). */
  nodeCrypto: Omit<ClientResults, 'backend' | 'primitivesUs'>;
  primitivesUs: Record<string, PrimitiveTimes>;
  /** In Chromium: device keys as non-extractable WebCrypto keys beside raw keys on libsodium. */
  browser: BrowserOutcome;
  /** twilio-e2ee/client bundled for browsers: sizes up front and on demand, libsodium's share. */
  clientBundle: ClientBundle;
  targets: Target[];
}

export interface Target {
  name: string;
  target: string;
  value: string;
  met: boolean | null;
}

function atCount(rows: EncryptResult['rows'], n: number) {
  return rows.find((r) => r.recipients === n);
}

export function evaluateTargets(r: Omit<Results, 'targets'>): Target[] {
  const out: Target[] = [];
  for (const [label, rows] of [
    ['libsodium', r.encrypt],
    ['node:crypto', r.nodeCrypto.encrypt],
  ] as const) {
    const at100 = atCount(rows, 100)!;
    out.push({ name: `encrypt 100 devices (${label})`, target: 'ratio <= 1.3', value: `${at100.ratioToFloor} (${at100.msPerMessage} ms, floor ${at100.floorMs} ms)`, met: at100.ratioToFloor <= 1.3 });
    const at500 = atCount(rows, 500)!;
    out.push({
      name: `encrypt 500 devices (${label})`,
      target: 'ratio <= 1.3',
      value: `${at500.ratioToFloor} (${at500.msPerMessage} ms, floor ${at500.floorMs} ms; ${at500.envelopeTextChars} chars: beyond a Twilio body, sealed with the limit lifted)`,
      met: at500.ratioToFloor <= 1.3,
    });
  }
  const bpr = r.encrypt[0]!.bytesPerRecipient;
  out.push({ name: 'bytes per recipient (binary)', target: '56', value: `${bpr} (text ${atCount(r.encrypt, 100)!.textCharsPerRecipient} chars)`, met: bpr === 56 });
  out.push({ name: 'devices a 1 KiB message reaches in 32 KB', target: '>= 400', value: `${r.maxRecipientsFor1KiB}`, met: r.maxRecipientsFor1KiB >= 400 });
  for (const [label, d] of [
    ['libsodium', r.decrypt],
    ['node:crypto', r.nodeCrypto.decrypt],
  ] as const) {
    out.push({ name: `decrypt (${label})`, target: 'ratio <= 1.5', value: `${d.ratioToFloor} (${d.msPerMessage} ms, floor ${d.floorMs} ms)`, met: d.ratioToFloor <= 1.5 });
  }
  const s = r.server;
  out.push({ name: 'card registration vs ceiling', target: 'ratio >= 0.8', value: `${s.ratio} (${s.cardRegistrationPerSec}/s vs ${s.ceilingPerSec}/s)`, met: s.ratio >= 0.8 });
  out.push({
    name: 'card registration with the log vs without',
    target: 'ratio >= 0.8',
    value: `${s.logRatio} (${s.cardRegistrationPerSec}/s vs ${s.cardRegistrationWithoutLogPerSec}/s)`,
    met: s.logRatio >= 0.8,
  });
  out.push({
    name: 'lookup p99, 50 connections',
    target: '< 5 ms',
    value:
      `${s.lookupP99Ms} ms (${s.lookupPerSec} lookups/s, so ${round(50_000 / s.lookupPerSec)} ms of queueing on average); ` +
      `${s.lookupSingleP99Ms === 0 ? 'under 1' : s.lookupSingleP99Ms} ms over one connection`,
    met: s.lookupP99Ms < 5,
  });
  out.push({ name: 'history rewraps (server)', target: '>= 5000/s', value: `${s.historyRewrapPerSec}/s`, met: s.historyRewrapPerSec >= 5000 });
  const bundle = r.clientBundle;
  out.push({
    name: 'client bundle for browsers, up front (gzip)',
    target: '< 200 KB',
    value: `${kb(bundle.initialGzipBytes)} KB (libsodium ${kb(bundle.libsodiumGzipBytes)} KB)${bundle.nodeOnly.length ? `; Node-only imports: ${bundle.nodeOnly.join(', ')}` : ''}`,
    met: bundle.initialGzipBytes < 200_000 && bundle.nodeOnly.length === 0,
  });
  return out;
}

/** The Chromium figures: WebCrypto device keys beside libsodium (median ms, interquartile range). */
export function browserTable(b: BrowserOutcome): string[] {
  if ('skipped' in b) return [`Chromium: not measured (${b.skipped})`];
  const cell = (f: { ms: number; iqr: [number, number] }) => `${f.ms} (${f.iqr[0]}..${f.iqr[1]})`;
  const p = b.primitives100;
  return [
    `In Chromium ${b.chromium} (median ms, IQR): device keys as non-extractable WebCrypto keys beside raw keys on libsodium`,
    table(
      ['operation', 'libsodium', 'WebCrypto', 'WebCrypto, 100 at once'],
      [
        ['seal 1 KiB for 100 devices (WebCrypto: the signature)', cell(b.seal100.libsodium), cell(b.seal100.webCryptoKeys), null],
        ['open one device of a 100-device envelope (WebCrypto: the X25519)', cell(b.open100.libsodium), cell(b.open100.webCryptoKeys), null],
        ['100 x X25519 (WebCrypto: import the public key + deriveBits)', cell(p.x25519.libsodium), cell(p.x25519.webCrypto), cell(p.x25519.webCryptoParallel)],
        ['100 x Ed25519 sign', cell(p.sign.libsodium), cell(p.sign.webCrypto), null],
      ],
    ),
    'Sealing wraps for the recipients with an ephemeral key on libsodium in both columns; only the sender signature uses the device key.',
  ];
}

/** twilio-e2ee/client in a browser bundle: what loads up front, libsodium's part of it, what loads on demand. */
export function clientBundleTable(b: ClientBundle): string[] {
  const sum = (list: ClientBundle['initial'], key: 'bytes' | 'gzipBytes') => list.reduce((total, f) => total + f[key], 0);
  const sdk = b.lazy.filter((f) => f.packages.includes('@twilio/conversations'));
  const ours = b.lazy.filter((f) => !sdk.includes(f)); // client/on-demand.ts
  return [
    'twilio-e2ee/client bundled for browsers (esbuild, ESM, minified, nothing external; KB = 1000 bytes)',
    table(
      ['part', 'files', 'minified KB', 'gzip KB'],
      [
        ['up front', b.initial.length, kb(sum(b.initial, 'bytes')), kb(b.initialGzipBytes)],
        ['  libsodium (its WebAssembly inlined as base64, its wrappers)', null, null, kb(b.libsodiumGzipBytes)],
        ['  the rest (wrapper, crypto core, relay client, key stores)', null, null, kb(b.initialGzipBytes - b.libsodiumGzipBytes)],
        ['on demand: the Twilio SDK, for connect() in Twilio mode', sdk.length, kb(sum(sdk, 'bytes')), kb(sum(sdk, 'gzipBytes'))],
        ['on demand: the recipient audit, files, checkpoint parsers', ours.length, kb(sum(ours, 'bytes')), kb(sum(ours, 'gzipBytes'))],
      ],
    ),
    b.nodeOnly.length ? `Node-only imports in the bundle: ${b.nodeOnly.join(', ')}` : 'No Node built-in or Node-only package in the bundle.',
  ];
}

function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((row) => row.map((c) => (c === null ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** The tables, as printed and as pasted into the README's Performance section. */
export function renderTables(r: Results): string {
  const m = r.machine as { cpu: string; cores: number; node: string; load: { start: number[]; end: number[]; max1min: number }; mode: string };
  const out: string[] = [];
  out.push(
    `Machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}; load average (1/5/15 min) ${m.load.start.join(' / ')} at start, ` +
      `${m.load.end.join(' / ')} at end, 1-min peak ${m.load.max1min} (${m.mode} run)`,
  );
  out.push('');
  out.push('Encrypt a 1 KiB message (median ms; floor = sign + body AEAD + N x (X25519 + wrap AEAD), same backend, same run)');
  const encryptRows = (backend: string, rows: EncryptResult['rows']) =>
    rows.map((row) => [backend, row.fitsTwilioBody ? row.recipients : `${row.recipients}*`, row.msPerMessage, row.floorMs, row.ratioToFloor, row.envelopeBytes, row.bytesPerRecipient, row.envelopeTextChars, row.textCharsPerRecipient]);
  out.push(
    table(
      ['backend', 'devices', 'ms/msg', 'floor ms', 'ratio', 'bytes', 'B/device', 'text chars', 'chars/device'],
      [...encryptRows('libsodium', r.encrypt), ...encryptRows('node:crypto', r.nodeCrypto.encrypt)],
    ),
  );
  out.push(`A 1 KiB message fits ${r.maxRecipientsFor1KiB} recipient devices in Twilio's 32 KB body. * beyond it: sealEnvelope refuses (ENVELOPE_TOO_LARGE) unless given a larger maxTextChars; timed with the limit lifted.`);
  out.push('');
  out.push('Decrypt (one device of a 100-device envelope, from its text form; floor = X25519 + unwrap AEAD + body AEAD + verify) and history (1000 messages via rewraps)');
  out.push(
    table(
      ['backend', 'decrypt ms', 'floor ms', 'ratio', 'history page ms', 'ms/msg', 'rewrap fetch ms'],
      [
        ['libsodium', r.decrypt.msPerMessage, r.decrypt.floorMs, r.decrypt.ratioToFloor, r.historyPage.ms, r.historyPage.msPerMessage, r.historyPage.fetchMs],
        ['node:crypto', r.nodeCrypto.decrypt.msPerMessage, r.nodeCrypto.decrypt.floorMs, r.nodeCrypto.decrypt.ratioToFloor, r.nodeCrypto.historyPage.ms, r.nodeCrypto.historyPage.msPerMessage, r.nodeCrypto.historyPage.fetchMs],
      ],
    ),
  );
  out.push('');
  out.push(...browserTable(r.browser));
  out.push('');
  out.push(...clientBundleTable(r.clientBundle));
  out.push('');
  const s = r.server;
  const d = s.details;
  out.push(`Server (autocannon on 127.0.0.1, server in its own process, SQLite on disk, LOG_LEVEL=${s.logLevel}; sign/X25519 on ${s.backend.sign}, verify on ${s.backend.verify})`);
  const last = (list: LoadResult[]) => list[list.length - 1]!;
  const busy = (r: LoadResult) => (r.server ? `${r.server.loopBusyPercent}` : null);
  const cpu = (r: LoadResult) => (r.server ? `${r.server.cpuPercent}` : null);
  const cpuPer = (r: LoadResult) => (r.server ? `${r.server.cpuUsPerRequest}` : null);
  const ms = (value: number) => (value === 0 ? '<1' : value); // autocannon's latencies are whole milliseconds
  const row = (name: string, connections: number, r: LoadResult, perSec: number, result: string) => [name, connections, perSec, ms(r.latencyMs.p50), ms(r.latencyMs.p99), busy(r), cpu(r), cpuPer(r), result];
  out.push(
    table(
      ['scenario', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'loop busy %', 'CPU %', 'CPU us/req', 'result'],
      [
        row('ceiling: verify + sign route', REGISTRATION_CONNECTIONS, last(d.ceiling), s.ceilingPerSec, ''),
        row('POST /v1/cards (fresh cards)', REGISTRATION_CONNECTIONS, last(d.registration), s.cardRegistrationPerSec, `${s.ratio} x ceiling`),
        row('  same, no log append', REGISTRATION_CONNECTIONS, last(d.registrationWithoutLog), s.cardRegistrationWithoutLogPerSec, `log: ${s.logRatio} x`),
        row(`GET /v1/cards (${d.lookup.identitiesPerRequest} identities)`, d.lookup.connections, d.lookup.saturated, d.lookup.saturated.perSec, 'capacity'),
        row('  same, one connection', 1, d.lookup.single, d.lookup.single.perSec, 'no queueing'),
        row(`GET /v1/history (pages of ${d.history.messagesPerPage})`, d.history.connections, d.history, d.history.perSec, `${s.historyRewrapPerSec} rewraps/s`),
      ],
    ),
  );
  const perRequest = (rate: number) => round(1e6 / rate);
  out.push(
    `Per request: ceiling ${perRequest(s.ceilingPerSec)} us, registration ${perRequest(s.cardRegistrationPerSec)} us; ` +
      `the store alone: ${s.storeRegistrationUs.diskUs} us per registration on disk, ${s.storeRegistrationUs.memoryUs} us in memory ` +
      `(the commit's fsync: ${s.storeRegistrationUs.commitUs} us).`,
  );
  out.push('');
  out.push('Targets');
  out.push(table(['target', 'wanted', 'met', 'measured'], r.targets.map((t) => [t.name, t.target, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO', t.value])));
  return out.join('\n');
}
