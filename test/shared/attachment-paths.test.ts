/**
 * The attachment code's fast paths (shared/attachment-seal.ts, attachment-open.ts,
 * chachaSeal into a given array in shared/sodium.ts and server/crypto-backend-aead.ts): frames sealed in place on
 * both backends, whole chunks sealed where they lie in a piece, frames read across pieces, sources
 * that reuse one array. Each must give the same bytes as the plain path and the fixed vector.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decryptAttachment, randomBytes, ready, type AttachmentMetadata } from '../../shared/index.js';
import { encryptAttachmentWith } from '../../shared/attachment-seal.js';
import { chachaSeal, setBackend, type CryptoBackend } from '../../shared/sodium.js';
import { nodeCryptoBackend } from '../../server/crypto-backend.js';
import { nodeChachaBackend } from '../../server/crypto-backend-aead.js';
import { generateAttachmentVector } from '../fixtures/generate-attachment-vector.js';

const CHUNK = 65536;
const FRAME = CHUNK + 32;
const OPTIONS = { contentType: 'application/octet-stream', filename: 'report.pdf' };
const BACKENDS: { name: string; backend: CryptoBackend | null }[] = [
  { name: 'libsodium', backend: null },
  { name: 'node:crypto', backend: { ...nodeCryptoBackend, ...nodeChachaBackend } },
];

beforeAll(() => ready());
afterEach(() => setBackend(null));

/** The pieces as handed out, kept without copying: each must stay valid after the next is asked for. */
async function keep(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const piece of pieces) parts.push(piece);
  return new Uint8Array(Buffer.concat(parts));
}

/** `bytes` in pieces of `size`, every piece in the same array, scribbled over once read past. */
function* reusing(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  const buffer = new Uint8Array(size);
  for (let o = 0; o < bytes.length; o += size) {
    const n = Math.min(size, bytes.length - o);
    buffer.set(bytes.subarray(o, o + n));
    yield buffer.subarray(0, n);
    buffer.fill(0xa5);
  }
}

function* cut(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, o + size);
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe.each(BACKENDS)('$name', ({ backend }) => {
  const key = randomBytes(32);
  const fileId = randomBytes(16);
  const seal = async (source: Parameters<typeof encryptAttachmentWith>[0], size?: number) => {
    const sealed = encryptAttachmentWith(source, { ...OPTIONS, size }, key, fileId);
    return { blob: await keep(sealed.chunks), metadata: await sealed.metadata };
  };

  it('chachaSeal into a given array writes there exactly what it returns otherwise, and refuses an array of another length', () => {
    setBackend(backend);
    const ad = randomBytes(41);
    for (const length of [0, 1, 16, 1000, CHUNK]) {
      const plaintext = randomBytes(length);
      const nonce = randomBytes(12);
      for (const a of [null, ad]) {
        const out = new Uint8Array(length + 16).fill(0xee);
        expect(chachaSeal(key, nonce, plaintext, a, out)).toBe(out);
        expect(same(out, chachaSeal(key, nonce, plaintext, a)), `${length} bytes, ad ${a ? 'set' : 'null'}`).toBe(true);
      }
      expect(() => chachaSeal(key, nonce, plaintext, null, new Uint8Array(length + 15))).toThrow(RangeError);
    }
  });

  it('makes the fixed vector byte for byte', async () => {
    setBackend(backend);
    const file = readFileSync(new URL('../fixtures/attachment-vector.json', import.meta.url), 'utf8');
    expect(`${JSON.stringify(await generateAttachmentVector(), null, 2)}\n`).toBe(file);
  });

  // 3 chunks end on a chunk boundary (a padding-only last chunk follows); 5 and a bit end inside one.
  it.each([3 * CHUNK, 5 * CHUNK + 1000])('%i bytes: the same blob however the content is cut, the size given or not', async (size) => {
    const content = randomBytes(size);
    const reference = await seal(content);
    setBackend(backend);
    const cuts: [string, () => Promise<{ blob: Uint8Array; metadata: AttachmentMetadata }>][] = [
      ['one array', () => seal(content)],
      ['one piece, no size', () => seal([content])],
      ['64 KiB pieces', () => seal(cut(content, CHUNK), size)],
      ['64 KiB pieces, no size', () => seal(cut(content, CHUNK))],
      ['pieces of 2 chunks and a byte, no size', () => seal(cut(content, 2 * CHUNK + 1))],
      ['pieces of 1000, no size', () => seal(cut(content, 1000))],
      ['one reused array of 70,000, size given', () => seal(reusing(content, 70_000), size)],
      ['one reused array of 1000, no size', () => seal(reusing(content, 1000))],
    ];
    for (const [name, run] of cuts) {
      const { blob, metadata } = await run();
      expect(same(blob, reference.blob), name).toBe(true);
      expect(metadata, name).toEqual(reference.metadata);
    }
  });

  it('decrypts from pieces that cut frames anywhere, in one reused array, and hands out pieces that stay valid', async () => {
    setBackend(backend);
    const content = randomBytes(5 * CHUNK + 1000);
    const { blob, metadata } = await seal(content);
    for (const size of [1000, CHUNK, FRAME, FRAME + 1, 200_000]) {
      expect(same(await keep(decryptAttachment(reusing(blob, size), metadata)), content), `pieces of ${size}`).toBe(true);
    }
  });
});
