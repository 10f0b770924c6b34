/**
 * Encrypted attachments (shared/attachment*.ts, docs/PROTOCOL.md section 16): round trips at the
 * chunk edges, every attack on the chunk stream with its own code, the metadata's checks, the
 * size limit, the padding overhead, and the fixed vector in test/fixtures/attachment-vector.json.
 */
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  attachmentBlobSize,
  decryptAttachment,
  decryptAttachmentStream,
  encryptAttachment,
  encryptAttachmentStream,
  MAX_ATTACHMENT_BYTES,
  MAX_ATTACHMENT_BLOB_BYTES,
  paddedAttachmentSize,
  parseAttachmentMetadata,
  randomBytes,
  ready,
  type AttachmentMetadata,
} from '../../shared/index.js';
import { encryptAttachmentWith } from '../../shared/attachment-seal.js';
import { setBackend } from '../../shared/sodium.js';
import { nodeCryptoBackend } from '../../server/crypto-backend.js';
import { nodeChachaBackend } from '../../server/crypto-backend-aead.js';
import { generateAttachmentVector, type AttachmentVector } from '../fixtures/generate-attachment-vector.js';

const CHUNK = 65536;
const FRAME = CHUNK + 32;
const HEADER = 8;
const OPTIONS = { contentType: 'application/octet-stream', filename: 'report.pdf' };

beforeAll(() => ready());
afterEach(() => setBackend(null));

async function collect(pieces: AsyncIterable<Uint8Array>, into?: Uint8Array[]): Promise<Uint8Array> {
  const parts = into ?? [];
  for await (const piece of pieces) parts.push(piece.slice());
  return new Uint8Array(Buffer.concat(parts));
}

async function encrypt(content: Uint8Array): Promise<{ blob: Uint8Array; metadata: AttachmentMetadata }> {
  const sealed = encryptAttachment(content, OPTIONS);
  const blob = await collect(sealed.chunks);
  return { blob, metadata: await sealed.metadata };
}

async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'no error';
}

const decryptCode = (blob: Uint8Array, metadata: unknown) => codeOf(() => collect(decryptAttachment(blob, metadata)));

/** The blob's frames: [header, frame 0, frame 1, ...]. */
function frames(blob: Uint8Array): Uint8Array[] {
  const out = [blob.subarray(0, HEADER)];
  for (let o = HEADER; o < blob.length; o += FRAME) out.push(blob.subarray(o, Math.min(blob.length, o + FRAME)));
  return out;
}
const join = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** Pieces of uneven sizes, as a network would deliver them. */
async function* uneven(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  const sizes = [1, 7, 1000, 65535, 65537, 200_000];
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield bytes.subarray(o, o + n);
    o += n;
  }
}

describe('round trips', () => {
  it.each([0, 1, 255, 256, 257, CHUNK - 32, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 123])('%i bytes, in one piece and in uneven pieces', async (size) => {
    const content = randomBytes(size);
    const { blob, metadata } = await encrypt(content);
    expect(metadata.size).toBe(size);
    expect(metadata.paddedSize).toBe(paddedAttachmentSize(size));
    expect(blob.length).toBe(attachmentBlobSize(metadata.paddedSize));
    expect(Buffer.from(await collect(decryptAttachment(blob, metadata))).equals(Buffer.from(content))).toBe(true);
    expect(Buffer.from(await collect(decryptAttachment(uneven(blob), metadata))).equals(Buffer.from(content))).toBe(true);

    const streamed = encryptAttachment(uneven(content), { ...OPTIONS, size });
    expect(streamed.blobSize).toBe(blob.length);
    const again = await collect(streamed.chunks);
    expect(again.length).toBe(blob.length);
    expect(Buffer.from(await collect(decryptAttachment(again, await streamed.metadata))).equals(Buffer.from(content))).toBe(true);
  });

  it('the largest one-chunk file is one frame; one byte more makes two', async () => {
    let largest = 0;
    while (paddedAttachmentSize(largest + 1) <= CHUNK) largest++;
    expect(largest).toBeGreaterThan(CHUNK * 0.95);
    expect(frames((await encrypt(randomBytes(largest))).blob).length).toBe(2);
    expect(frames((await encrypt(randomBytes(largest + 1))).blob).length).toBe(3);
  });

  it('gives every file a fresh key and file id', async () => {
    const content = randomBytes(100);
    const [a, b] = await Promise.all([encrypt(content), encrypt(content)]);
    expect(a.metadata.key).not.toBe(b.metadata.key);
    expect(a.metadata.fileId).not.toBe(b.metadata.fileId);
    expect(a.metadata.digest).not.toBe(b.metadata.digest);
  });

  it('Web Streams in and out', async () => {
    const content = randomBytes(200_000);
    const sealed = encryptAttachmentStream(new Blob([Buffer.from(content)]).stream(), { ...OPTIONS, size: content.length });
    const blob = new Uint8Array(await new Response(sealed.stream).arrayBuffer());
    const opened = new Uint8Array(await new Response(decryptAttachmentStream(new Blob([Buffer.from(blob)]).stream(), await sealed.metadata)).arrayBuffer());
    expect(Buffer.from(opened).equals(Buffer.from(content))).toBe(true);
  });

  it('node:crypto ChaCha20-Poly1305 makes the same blob as libsodium, and opens it', async () => {
    const content = randomBytes(150_000);
    const key = randomBytes(32);
    const fileId = randomBytes(16);
    const sodiumBlob = await collect(encryptAttachmentWith(content, OPTIONS, key, fileId).chunks);
    setBackend({ ...nodeCryptoBackend, ...nodeChachaBackend });
    const sealed = encryptAttachmentWith(content, OPTIONS, key, fileId);
    const nodeBlob = await collect(sealed.chunks);
    expect(Buffer.from(nodeBlob).equals(Buffer.from(sodiumBlob))).toBe(true);
    expect(Buffer.from(await collect(decryptAttachment(nodeBlob, await sealed.metadata))).equals(Buffer.from(content))).toBe(true);
    const tampered = nodeBlob.slice();
    tampered[HEADER + 100]! ^= 1;
    expect(await decryptCode(tampered, await sealed.metadata)).toBe('ATTACHMENT_CHUNK_TAMPERED');
  });
});

describe('attacks on the chunk stream, each with its own code', () => {
  // Six chunks: 5 full ones and a short last one.
  let blob: Uint8Array;
  let metadata: AttachmentMetadata;
  let f: Uint8Array[];
  beforeAll(async () => {
    ({ blob, metadata } = await encrypt(randomBytes(5 * CHUNK + 1000)));
    f = frames(blob);
    expect(f.length).toBe(7);
  });

  it('a flipped bit in a chunk: ATTACHMENT_CHUNK_TAMPERED, and nothing of that chunk is handed on', async () => {
    const tampered = blob.slice();
    tampered[HEADER + FRAME + 500]! ^= 0x01; // chunk 1's ciphertext
    const received: Uint8Array[] = [];
    expect(await codeOf(() => collect(decryptAttachment(tampered, metadata), received))).toBe('ATTACHMENT_CHUNK_TAMPERED');
    expect(received.reduce((n, p) => n + p.length, 0)).toBe(CHUNK); // chunk 0 only
  });

  it('two chunks swapped: ATTACHMENT_CHUNK_REORDERED', async () => {
    expect(await decryptCode(join([f[0]!, f[1]!, f[3]!, f[2]!, f[4]!, f[5]!, f[6]!]), metadata)).toBe('ATTACHMENT_CHUNK_REORDERED');
  });

  it('an earlier chunk repeated: ATTACHMENT_CHUNK_REORDERED', async () => {
    expect(await decryptCode(join([f[0]!, f[1]!, f[2]!, f[1]!, f[4]!, f[5]!, f[6]!]), metadata)).toBe('ATTACHMENT_CHUNK_REORDERED');
  });

  it('a chunk dropped: ATTACHMENT_CHUNK_MISSING', async () => {
    expect(await decryptCode(join([f[0]!, f[1]!, f[3]!, f[4]!, f[5]!, f[6]!]), metadata)).toBe('ATTACHMENT_CHUNK_MISSING');
  });

  it('the last chunk dropped, or the blob cut inside a chunk or the header: ATTACHMENT_TRUNCATED', async () => {
    expect(await decryptCode(join(f.slice(0, 6)), metadata)).toBe('ATTACHMENT_TRUNCATED');
    expect(await decryptCode(blob.subarray(0, blob.length - 1), metadata)).toBe('ATTACHMENT_TRUNCATED');
    expect(await decryptCode(blob.subarray(0, HEADER + 3 * FRAME + 10), metadata)).toBe('ATTACHMENT_TRUNCATED');
    expect(await decryptCode(blob.subarray(0, 5), metadata)).toBe('ATTACHMENT_TRUNCATED');
  });

  it('bytes appended, or a chunk appended: ATTACHMENT_EXTENDED, and the last piece is withheld', async () => {
    expect(await decryptCode(join([blob, new Uint8Array(1)]), metadata)).toBe('ATTACHMENT_EXTENDED');
    const received: Uint8Array[] = [];
    expect(await codeOf(() => collect(decryptAttachment(join([blob, f[2]!]), metadata), received))).toBe('ATTACHMENT_EXTENDED');
    expect(received.length).toBe(5);
  });

  it("a chunk of another file spliced in: ATTACHMENT_CHUNK_FOREIGN; with this file's id written over it: ATTACHMENT_CHUNK_TAMPERED", async () => {
    const other = frames((await encrypt(randomBytes(5 * CHUNK + 1000))).blob);
    expect(await decryptCode(join([f[0]!, f[1]!, other[2]!, f[3]!, f[4]!, f[5]!, f[6]!]), metadata)).toBe('ATTACHMENT_CHUNK_FOREIGN');
    const relabelled = join([f[1]!.subarray(0, 16), other[2]!.subarray(16)]);
    expect(await decryptCode(join([f[0]!, f[1]!, relabelled, f[3]!, f[4]!, f[5]!, f[6]!]), metadata)).toBe('ATTACHMENT_CHUNK_TAMPERED');
  });

  it('the wrong key fails the first chunk: ATTACHMENT_CHUNK_TAMPERED at chunk 0', async () => {
    const wrong = { ...metadata, key: Buffer.from(randomBytes(32)).toString('base64url') };
    const err = await decryptAttachment(blob, wrong)[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ATTACHMENT_CHUNK_TAMPERED', details: { chunk: 0 } });
  });

  it('another digest: ATTACHMENT_DIGEST_MISMATCH after every chunk opened, the last piece withheld', async () => {
    const other = { ...metadata, digest: Buffer.from(randomBytes(32)).toString('base64url') };
    const received: Uint8Array[] = [];
    expect(await codeOf(() => collect(decryptAttachment(blob, other), received))).toBe('ATTACHMENT_DIGEST_MISMATCH');
    expect(received.length).toBe(5);
  });

  it('another magic: ATTACHMENT_MALFORMED', async () => {
    const bad = blob.slice();
    bad[7] = 2; // version
    expect(await decryptCode(bad, metadata)).toBe('ATTACHMENT_MALFORMED');
  });

  it('padding that is not zero: ATTACHMENT_PADDING_INVALID', async () => {
    // A sender encrypts 305 bytes but claims 296: the same bucket, so the last 9 "padding" bytes are content.
    const content = randomBytes(305).fill(7, 296);
    const { blob: b, metadata: m } = await encrypt(content);
    expect(paddedAttachmentSize(296)).toBe(m.paddedSize);
    expect(await decryptCode(b, { ...m, size: 296 })).toBe('ATTACHMENT_PADDING_INVALID');
  });
});

describe('metadata', () => {
  let metadata: AttachmentMetadata;
  beforeAll(async () => ({ metadata } = await encrypt(randomBytes(1000))));

  it('parses what encryptAttachment made, as JSON too', () => {
    expect(parseAttachmentMetadata(JSON.parse(JSON.stringify(metadata))).metadata).toEqual(metadata);
    expect(metadata).toMatchObject({ v: 1, size: 1000, paddedSize: paddedAttachmentSize(1000), chunkSize: CHUNK, ...OPTIONS });
  });

  it.each<[string, Record<string, unknown>]>([
    ['an unknown member', { extra: 1 }],
    ['another version', { v: 2 }],
    ['another chunk size', { chunkSize: 1024 }],
    ['a paddedSize not of its size', { paddedSize: 2048 }],
    ['a negative size', { size: -1 }],
    ['a fractional size', { size: 1.5 }],
    ['a short key', { key: 'AAAA' }],
    ['a padded b64u digest', { digest: 'padded' }],
    ['a filename with a path', { filename: '../etc/passwd' }],
    ['a filename with a control character', { filename: 'a\nb' }],
    ['an empty filename', { filename: '' }],
    ['a content type without subtype', { contentType: 'image' }],
  ])('refuses %s: ATTACHMENT_METADATA_INVALID', async (_, change) => {
    const bad = { ...metadata, ...change };
    if ('digest' in change) bad.digest = `${metadata.digest}=`;
    expect(() => parseAttachmentMetadata(bad)).toThrow(expect.objectContaining({ code: 'ATTACHMENT_METADATA_INVALID' }));
    expect(await decryptCode(new Uint8Array(0), bad)).toBe('ATTACHMENT_METADATA_INVALID');
  });

  it('refuses bad options when encrypting: INVALID_ARGUMENT', () => {
    expect(() => encryptAttachment(new Uint8Array(1), { contentType: 'nope', filename: 'a' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => encryptAttachment(new Uint8Array(1), { ...OPTIONS, filename: 'a/b' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => encryptAttachment(new Uint8Array(1), { ...OPTIONS, size: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a stream longer or shorter than its stated size: INVALID_ARGUMENT, and no metadata', async () => {
    for (const size of [99, 101]) {
      const sealed = encryptAttachment(uneven(randomBytes(100)), { ...OPTIONS, size });
      expect(await codeOf(() => collect(sealed.chunks))).toBe('INVALID_ARGUMENT');
      expect(await codeOf(() => sealed.metadata)).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('the 150 MB limit', () => {
  it('is the largest size whose blob fits 150,000,000 bytes', () => {
    expect(attachmentBlobSize(paddedAttachmentSize(MAX_ATTACHMENT_BYTES))).toBeLessThanOrEqual(MAX_ATTACHMENT_BLOB_BYTES);
    expect(attachmentBlobSize(paddedAttachmentSize(MAX_ATTACHMENT_BYTES + 1))).toBeGreaterThan(MAX_ATTACHMENT_BLOB_BYTES);
    expect(MAX_ATTACHMENT_BLOB_BYTES).toBe(150_000_000);
  });

  it('a known size over it: ATTACHMENT_TOO_LARGE before any byte is read', () => {
    const untouched = {
      [Symbol.asyncIterator]() {
        throw new Error('read');
      },
    } as AsyncIterable<Uint8Array>;
    expect(() => encryptAttachment(untouched, { ...OPTIONS, size: MAX_ATTACHMENT_BYTES + 1 })).toThrow(expect.objectContaining({ code: 'ATTACHMENT_TOO_LARGE' }));
    expect(() => encryptAttachment(untouched, { ...OPTIONS, size: MAX_ATTACHMENT_BYTES })).not.toThrow();
  });

  it('a stream of unknown size: ATTACHMENT_TOO_LARGE as soon as the count passes it, before that piece is encrypted', async () => {
    async function* source(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(CHUNK * 2);
      yield new Uint8Array(MAX_ATTACHMENT_BYTES); // zero pages: never touched if refused first
      throw new Error('read past the limit');
    }
    const sealed = encryptAttachment(source(), OPTIONS);
    const received: Uint8Array[] = [];
    expect(await codeOf(() => collect(sealed.chunks, received))).toBe('ATTACHMENT_TOO_LARGE');
    expect(received.length).toBe(2); // the magic and chunk 0
    expect(await codeOf(() => sealed.metadata)).toBe('ATTACHMENT_TOO_LARGE');
  });

  it('metadata with a size over it: ATTACHMENT_TOO_LARGE', () => {
    const size = MAX_ATTACHMENT_BYTES + 1;
    const metadata = { v: 1, key: 'A'.repeat(43), fileId: 'A'.repeat(22), size, paddedSize: paddedAttachmentSize(size), digest: 'A'.repeat(43), chunkSize: CHUNK, ...OPTIONS };
    expect(() => parseAttachmentMetadata(metadata)).toThrow(expect.objectContaining({ code: 'ATTACHMENT_TOO_LARGE' }));
  });
});

describe('size overhead (padding, chunk ids and tags, header), computed', () => {
  const overhead = (size: number) => (attachmentBlobSize(paddedAttachmentSize(size)) - size) / size;

  it.each([
    [1_000_000, 0.0375],
    [10_000_000, 0.0278],
    [100_000_000, 0.0181],
    [145_000_000, 0.0345],
  ])('%i bytes: %f', (size, expected) => {
    expect(overhead(size)).toBeCloseTo(expected, 4);
  });

  it('is at most 6% for every size above 1 MB (the worst case: one byte over a bucket)', () => {
    let worst = 0;
    for (let bucket = paddedAttachmentSize(1_000_000); bucket < MAX_ATTACHMENT_BYTES; bucket = paddedAttachmentSize(bucket + 1)) {
      worst = Math.max(worst, overhead(bucket + 1));
    }
    expect(worst).toBeGreaterThan(0.04);
    expect(worst).toBeLessThanOrEqual(0.06);
  });
});

describe('the fixed vector (test/fixtures/attachment-vector.json)', () => {
  const file = readFileSync(new URL('../fixtures/attachment-vector.json', import.meta.url), 'utf8');
  const vector = JSON.parse(file) as AttachmentVector;

  it('is what the generator makes', async () => {
    expect(`${JSON.stringify(await generateAttachmentVector(), null, 2)}\n`).toBe(file);
  });

  it('opens to its content', async () => {
    const opened = await collect(decryptAttachment(Buffer.from(vector.blob, 'base64url'), vector.metadata));
    expect(Buffer.from(opened).toString('utf8')).toBe(vector.content);
  });

  it('is recomputed with libsodium directly from the layout in PROTOCOL.md', async () => {
    await sodium.ready;
    const key = Buffer.from(vector.metadata.key, 'base64url');
    const fileId = Buffer.from(vector.metadata.fileId, 'base64url');
    const padded = Buffer.alloc(vector.metadata.paddedSize);
    padded.write(vector.content, 'utf8');
    const nonce = Buffer.alloc(12);
    nonce[11] = 1; // chunk 0, the last
    const ad = Buffer.concat([Buffer.from('twilio-e2ee/v1/attachment'), fileId]);
    const sealed = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(padded, ad, null, nonce, key);
    const blob = Buffer.concat([Buffer.from('e2eeatt\x01', 'latin1'), fileId, sealed]);
    expect(blob.toString('base64url')).toBe(vector.blob);
    expect(Buffer.from(sodium.crypto_generichash(32, blob, null)).toString('base64url')).toBe(vector.metadata.digest);
  });
});
