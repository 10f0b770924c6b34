/**
 * Attachments (docs/PROTOCOL.md section 16): encrypt and decrypt throughput for 1 MB and 100 MB
 * files on libsodium and on node:crypto, each beside its floor timed alternately in the same run:
 *
 *   AEAD floor   = ChaCha20-Poly1305 seal (or open) of the same chunks, through shared/sodium.ts
 *   +hash floor  = the same AEAD calls and BLAKE2b-256 over the same bytes (the digest the
 *                  format requires; the part of the gap to the AEAD floor no code can close)
 *
 * Peak memory (RSS growth) while encrypting and then decrypting a 100 MB file, streamed from a
 * generator and never held whole, is measured in a child process of its own; and the size
 * overhead, computed. `npx tsx bench/attachment.ts [--quick]` runs it alone; bench/run.ts prints it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nodeChachaBackend } from '../server/crypto-backend-aead.js';
import { nodeCryptoBackend } from '../server/crypto-backend.js';
import { attachmentBlobSize, decryptAttachment, encryptAttachment, paddedAttachmentSize, type AttachmentMetadata } from '../shared/attachment.js';
import { encryptAttachmentWith } from '../shared/attachment-seal.js';
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
  /** RSS growth over the child's baseline while a 100 MB file streams through, MB. */
  peakRssGrowthMB: { encrypt: number; decrypt: number };
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

/** In the child: encrypt 100 MB (blob discarded), then encrypt it again straight into decrypt; peak RSS over the baseline. */
async function rssChild(): Promise<void> {
  await ready();
  setBackend({ ...nodeCryptoBackend, ...nodeChachaBackend });
  const size = 100 * MB;
  const block = randomBytes(MB);
  const key = randomBytes(32);
  const fileId = randomBytes(16);
  const seal = () => encryptAttachmentWith(content(size, block), { ...OPTIONS, size }, key, fileId);
  // Warm-up on a small file, so code and WebAssembly memory are in the baseline.
  const warm = encryptAttachment(randomBytes(MB), OPTIONS);
  const warmParts: Uint8Array[] = [];
  await drain(warm.chunks, (p) => warmParts.push(p));
  await drain(decryptAttachment(warmParts, await warm.metadata));
  globalThis.gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
  const first = seal();
  await drain(first.chunks, sample);
  const metadata: AttachmentMetadata = await first.metadata;
  const encryptPeak = peak - baseline;
  peak = baseline;
  await drain(decryptAttachment(seal().chunks, metadata), sample);
  process.stdout.write(JSON.stringify({ encrypt: encryptPeak / MB, decrypt: (peak - baseline) / MB }));
}

function peakRss(): { encrypt: number; decrypt: number } {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, '--rss-child'], { encoding: 'utf8', timeout: 300_000 });
  if (child.status !== 0) throw new Error(`attachment RSS child failed: ${child.stderr}`);
  const out = JSON.parse(child.stdout) as { encrypt: number; decrypt: number };
  return { encrypt: round(out.encrypt), decrypt: round(out.decrypt) };
}

export async function benchAttachments(quick: boolean): Promise<AttachmentResults> {
  await ready();
  const overheadPercent: Record<string, number> = {};
  for (const size of [1 * MB, 10 * MB, 100 * MB, 145 * MB]) {
    overheadPercent[`${size / MB} MB`] = round(((attachmentBlobSize(paddedAttachmentSize(size)) - size) / size) * 100);
  }
  return { throughput: await throughput(quick), peakRssGrowthMB: peakRss(), overheadPercent };
}

export function renderAttachments(r: AttachmentResults): string {
  const lines = [
    'Attachments (64 KiB chunks; floors timed alternately in the same run)',
    'backend      size    op       MB/s   AEAD floor  ratio   AEAD+BLAKE2b floor  ratio',
    ...r.throughput.map(
      (t) =>
        `${t.backend.padEnd(12)} ${`${t.sizeMB} MB`.padEnd(7)} ${t.operation.padEnd(8)} ${String(t.mbPerSec).padStart(5)}   ${String(t.aeadFloorMBPerSec).padStart(9)}  ${`${t.ratioToAead}x`.padStart(5)}   ${String(t.aeadHashFloorMBPerSec).padStart(17)}  ${`${t.ratioToAeadHash}x`.padStart(5)}`,
    ),
    `peak RSS growth, 100 MB (node:crypto): encrypt ${r.peakRssGrowthMB.encrypt} MB, decrypt ${r.peakRssGrowthMB.decrypt} MB`,
    `size overhead: ${Object.entries(r.overheadPercent).map(([k, v]) => `${k} ${v}%`).join(', ')}`,
  ];
  return lines.join('\n');
}

if (process.argv.includes('--rss-child')) {
  await rssChild();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(renderAttachments(await benchAttachments(process.argv.includes('--quick'))));
}
