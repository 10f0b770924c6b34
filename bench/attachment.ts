/**
 * Attachments (docs/PROTOCOL.md section 16): encrypt and decrypt throughput for 1 MB and 100 MB
 * files on libsodium and on node:crypto, each beside its floor timed alternately in the same run:
 *
 *   AEAD floor   = ChaCha20-Poly1305 seal (or open) of the same chunks, through shared/sodium.ts
 *   +hash floor  = the same AEAD calls and BLAKE2b-256 over the same bytes (the digest the
 *                  format requires; the part of the gap to the AEAD floor no code can close)
 *
 * Peak memory (RSS growth) while a 100 MB file streams through, never held whole, each in
 * children of their own: encrypting from a generator, decrypting from a file read into one array
 * (so neither source makes garbage of its own), and, as their floor, handing out a fresh copy of
 * every 64 KiB piece and nothing else. And the size overhead, computed.
 * `npx tsx bench/attachment.ts [--quick]` runs it alone; bench/run.ts prints it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeChachaBackend } from '../server/crypto-backend-aead.js';
import { nodeCryptoBackend } from '../server/crypto-backend.js';
import { attachmentBlobSize, decryptAttachment, encryptAttachment, paddedAttachmentSize, type AttachmentMetadata } from '../shared/attachment.js';
import { chunkAd, chunkNonce } from '../shared/attachment-format.js';
import { ATTACHMENT_CHUNK_BYTES } from '../shared/constants.js';
import { blake2b256Stream, chachaOpen, chachaSeal, randomBytes, ready, setBackend, type CryptoBackend } from '../shared/sodium.js';
import { round, summarize, timeMs, timeMsAsync } from './stats.js';

const MB = 1_000_000;
const SIZES = [1 * MB, 100 * MB];
const OPTIONS = { contentType: 'application/octet-stream', filename: 'bench.bin' };
const BACKENDS: { name: string; backend: CryptoBackend | null }[] = [
  { name: 'libsodium', backend: null },
  { name: 'node:crypto', backend: { ...nodeCryptoBackend, ...nodeChachaBackend } },
];

export interface ThroughputRow {
  backend: string;
  sizeMB: number;
  operation: 'encrypt' | 'decrypt';
  mbPerSec: number;
  aeadFloorMBPerSec: number;
  /** Time over the AEAD floor's time. */
  ratioToAead: number;
  aeadHashFloorMBPerSec: number;
  ratioToAeadHash: number;
  runs: number;
}

export interface AttachmentResults {
  throughput: ThroughputRow[];
  /** Peak RSS growth over the child's baseline while 100 MB stream through, MB: "libsodium encrypt" and so on, and "copy", fresh copies alone (the floor). */
  peakRssGrowthMB: Record<string, number>;
  /** Blob bytes over content bytes, percent. */
  overheadPercent: Record<string, number>;
}

/** The content: the same 1 MB of random bytes, repeated, in 64 KiB pieces (as a file reader gives them). */
function* content(size: number, block: Uint8Array): Generator<Uint8Array> {
  for (let o = 0; o < size; ) {
    const start = o % block.length;
    const piece = block.subarray(start, Math.min(start + ATTACHMENT_CHUNK_BYTES, start + size - o, block.length));
    o += piece.length;
    yield piece;
  }
}

async function* copies(size: number, block: Uint8Array): AsyncGenerator<Uint8Array> {
  for (const piece of content(size, block)) yield piece.slice();
}

async function drain(pieces: AsyncIterable<Uint8Array>, each?: (piece: Uint8Array) => void): Promise<number> {
  let n = 0;
  for await (const piece of pieces) {
    n += piece.length;
    each?.(piece);
  }
  return n;
}

/** Both floors over `chunks` padded chunks of 64 KiB: seal (or open) each, and optionally hash. */
function floor(op: 'encrypt' | 'decrypt', chunks: number, withHash: boolean): () => void {
  const key = randomBytes(32);
  const ad = chunkAd(randomBytes(16));
  const plaintext = randomBytes(ATTACHMENT_CHUNK_BYTES);
  const sealed = chachaSeal(key, chunkNonce(0, false), plaintext, ad);
  return () => {
    const hash = withHash ? blake2b256Stream() : null;
    for (let i = 0; i < chunks; i++) {
      const out = op === 'encrypt' ? chachaSeal(key, chunkNonce(0, false), plaintext, ad) : chachaOpen(key, chunkNonce(0, false), sealed, ad);
      hash?.update(op === 'encrypt' ? out! : sealed);
    }
    hash?.digest();
  };
}

async function throughput(quick: boolean): Promise<ThroughputRow[]> {
  const block = randomBytes(MB);
  const rows: ThroughputRow[] = [];
  for (const { name, backend } of BACKENDS) {
    setBackend(backend);
    for (const size of SIZES) {
      const chunks = Math.ceil(paddedAttachmentSize(size) / ATTACHMENT_CHUNK_BYTES);
      const sealed = encryptAttachment(content(size, block), { ...OPTIONS, size });
      const parts: Uint8Array[] = [];
      await drain(sealed.chunks, (p) => parts.push(p));
      const metadata = await sealed.metadata;
      const subjects = {
        encrypt: () => drain(encryptAttachment(content(size, block), { ...OPTIONS, size }).chunks),
        decrypt: () => drain(decryptAttachment(parts, metadata)),
      };
      const runs = size > MB ? (quick ? 2 : 5) : quick ? 10 : 40;
      for (const op of ['encrypt', 'decrypt'] as const) {
        const aead = floor(op, chunks, false);
        const aeadHash = floor(op, chunks, true);
        const samples = { subject: [] as number[], aead: [] as number[], aeadHash: [] as number[] };
        await subjects[op]();
        aead();
        aeadHash();
        for (let r = 0; r < runs; r++) {
          // Alternated, so load drift touches all three alike.
          samples.subject.push(await timeMsAsync(subjects[op]));
          samples.aead.push(timeMs(aead));
          samples.aeadHash.push(timeMs(aeadHash));
        }
        const ms = summarize(samples.subject).median;
        const aeadMs = summarize(samples.aead).median;
        const aeadHashMs = summarize(samples.aeadHash).median;
        const mbps = (t: number) => round(size / MB / (t / 1000));
        rows.push({
          backend: name,
          sizeMB: size / MB,
          operation: op,
          mbPerSec: mbps(ms),
          aeadFloorMBPerSec: mbps(aeadMs),
          ratioToAead: round(ms / aeadMs),
          aeadHashFloorMBPerSec: mbps(aeadHashMs),
          ratioToAeadHash: round(ms / aeadHashMs),
          runs,
        });
      }
    }
  }
  setBackend(null);
  return rows;
}

/** What a child streams 100 MB through: encrypting or decrypting on a backend, or (the floor) handing out copies. */
type RssRun = { op: 'encrypt' | 'decrypt'; backend: string } | { op: 'copy'; backend?: undefined };
const RSS_RUNS: RssRun[] = [{ op: 'copy' }, ...BACKENDS.flatMap(({ name }) => (['encrypt', 'decrypt'] as const).map((op) => ({ op, backend: name })))];

/** The blob file in 64 KiB reads into one array (decryptAttachment is done with a piece before it asks for the next): a source with no garbage of its own. */
function* fileReads(path: string): Generator<Uint8Array> {
  const fd = openSync(path, 'r');
  const buffer = new Uint8Array(ATTACHMENT_CHUNK_BYTES);
  try {
    for (let n; (n = readSync(fd, buffer)) > 0; ) yield buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * In a child of its own, after a 1 MB warm-up: streams 100 MB through `run` and prints the peak
 * RSS over the baseline. `copy` hands out a fresh copy of every 64 KiB piece and does nothing
 * else: what any stream that gives its reader new arrays costs, the floor for the others.
 */
async function rssChild(run: RssRun, blobPath: string, metadata: AttachmentMetadata): Promise<void> {
  await ready();
  setBackend(BACKENDS.find((b) => b.name === run.backend)?.backend ?? null);
  const size = metadata.size;
  const block = randomBytes(MB);
  // Warm-up on a small file, so code and WebAssembly memory are in the baseline.
  const warm = encryptAttachment(randomBytes(MB), OPTIONS);
  const warmParts: Uint8Array[] = [];
  await drain(warm.chunks, (p) => warmParts.push(p));
  await drain(decryptAttachment(warmParts, await warm.metadata));
  warmParts.length = 0;
  globalThis.gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
  if (run.op === 'copy') await drain(copies(size, block), sample);
  if (run.op === 'encrypt') await drain(encryptAttachment(content(size, block), { ...OPTIONS, size }).chunks, sample);
  if (run.op === 'decrypt') await drain(decryptAttachment(fileReads(blobPath), metadata), sample);
  process.stdout.write(JSON.stringify((peak - baseline) / MB));
}

/** Median over `runs` children each of the peak RSS growth for 100 MB, by run ("copy", "libsodium encrypt", ...). The blob to decrypt is written here, outside the children. */
async function peakRss(runs: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'attachment-bench-'));
  try {
    const blobPath = join(dir, 'blob');
    const size = 100 * MB;
    const sealed = encryptAttachment(content(size, randomBytes(MB)), { ...OPTIONS, size });
    const fd = openSync(blobPath, 'w');
    await drain(sealed.chunks, (p) => writeSync(fd, p));
    closeSync(fd);
    const metadata = JSON.stringify(await sealed.metadata);
    const self = fileURLToPath(import.meta.url);
    const out: Record<string, number> = {};
    for (const run of RSS_RUNS) {
      const samples: number[] = [];
      for (let r = 0; r < runs; r++) {
        const args = [...process.execArgv, '--expose-gc', self, '--rss-child', JSON.stringify(run), blobPath, metadata];
        const child = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
        if (child.status !== 0) throw new Error(`attachment RSS child (${JSON.stringify(run)}) failed: ${child.stderr}`);
        samples.push(JSON.parse(child.stdout) as number);
      }
      out[run.backend ? `${run.backend} ${run.op}` : run.op] = round(summarize(samples).median);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchAttachments(quick: boolean): Promise<AttachmentResults> {
  await ready();
  const overheadPercent: Record<string, number> = {};
  for (const size of [1 * MB, 10 * MB, 100 * MB, 145 * MB]) {
    overheadPercent[`${size / MB} MB`] = round(((attachmentBlobSize(paddedAttachmentSize(size)) - size) / size) * 100);
  }
  return { throughput: await throughput(quick), peakRssGrowthMB: await peakRss(quick ? 1 : 3), overheadPercent };
}

export function renderAttachments(r: AttachmentResults): string {
  const lines = [
    'Attachments (64 KiB chunks; floors timed alternately in the same run)',
    'backend      size    op       MB/s   AEAD floor  ratio   AEAD+BLAKE2b floor  ratio',
    ...r.throughput.map(
      (t) =>
        `${t.backend.padEnd(12)} ${`${t.sizeMB} MB`.padEnd(7)} ${t.operation.padEnd(8)} ${String(t.mbPerSec).padStart(5)}   ${String(t.aeadFloorMBPerSec).padStart(9)}  ${`${t.ratioToAead}x`.padStart(5)}   ${String(t.aeadHashFloorMBPerSec).padStart(17)}  ${`${t.ratioToAeadHash}x`.padStart(5)}`,
    ),
    `peak RSS growth, 100 MB, median of children: ${Object.entries(r.peakRssGrowthMB)
      .map(([k, v]) => `${k === 'copy' ? 'fresh 64 KiB copies alone (floor)' : k} ${v} MB`)
      .join(', ')}`,
    `size overhead: ${Object.entries(r.overheadPercent).map(([k, v]) => `${k} ${v}%`).join(', ')}`,
  ];
  return lines.join('\n');
}

if (process.argv[2] === '--rss-child') {
  await rssChild(JSON.parse(process.argv[3]!) as RssRun, process.argv[4]!, JSON.parse(process.argv[5]!) as AttachmentMetadata);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(renderAttachments(await benchAttachments(process.argv.includes('--quick'))));
}
