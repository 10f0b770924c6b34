/**
 * Encrypted attachments end to end through the local relay (issue 15): files sent with the SDK's
 * own calls arrive byte for byte, verified; a tampered or swapped blob stops the stream with its
 * code and hands on nothing unverified; refusals upload nothing; an agent added later opens the
 * files from history; and the relay's storage holds no plaintext byte of any file.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentReadable, e2eeClientOf, e2eeInfo, unwrap, type AttachmentProgress, type E2EEAttachment, type E2EEClient } from '../../client/node.js';
import { conversationWrapperOf } from '../../client/wrapper.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceChat: Client;
let bobChat: Client;
let conversation: Conversation;
let bobConversation: Conversation;
/** Every file sent in this file: none of its bytes may reach the relay's storage. */
const files: Buffer[] = [];

/** `size` random bytes (remembered as a secret). */
function file(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  files.push(bytes);
  return bytes;
}

async function bytesOf(attachment: E2EEAttachment): Promise<Buffer> {
  return Buffer.from(await (await attachment.blob()).arrayBuffer());
}

/** Byte-for-byte equality (toEqual walks a large Buffer element by element, slowly). */
function expectSame(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected), 'the bytes differ').toBe(true);
}

/** What the stream hands on before it ends or fails, and how it failed. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<{ bytes: number; error: unknown }> {
  let bytes = 0;
  try {
    for await (const piece of stream as unknown as AsyncIterable<Uint8Array>) bytes += piece.length;
    return { bytes, error: null };
  } catch (error) {
    return { bytes, error };
  }
}

/** Sends with `send` and resolves with the message as bob receives it. */
async function toBob(send: () => Promise<unknown>): Promise<Message> {
  const atBob = nextEvents<Message>(bobChat, 'messageAdded', 1, 20_000);
  await send();
  return (await atBob)[0]!;
}

/** The relay's stored files that hold the blob of `attachment` (it starts with the magic, then its file id). */
function storedBlobs(attachment: E2EEAttachment): string[] {
  const fileId = Buffer.from(attachment.media!.filename!.slice(0, 32), 'hex');
  const prefix = Buffer.concat([Buffer.from('e2eeatt\x01', 'latin1'), fileId]);
  return storedFiles().filter((path) => readFileSync(path).subarray(0, prefix.length).equals(prefix));
}

function storedFiles(): string[] {
  return readdirSync(server.dataDir, { recursive: true, withFileTypes: true })
    .filter((f) => f.isFile())
    .map((f) => join(f.parentPath, f.name));
}

beforeAll(async () => {
  server = await startLoopbackServer();
  alice = await device(server, 'alice', { cardCacheTtlMs: 0 });
  bob = await device(server, 'bob', { cardCacheTtlMs: 0 });
  [aliceChat, bobChat] = await Promise.all([alice.connect(), bob.connect()]);
  conversation = await aliceChat.createConversation({ friendlyName: 'files' });
  await conversation.join();
  const bobAdded = nextEvents<Conversation>(bobChat, 'conversationAdded');
  await conversation.add('bob');
  [bobConversation] = (await bobAdded) as [Conversation];
});

afterAll(async () => {
  for (const chat of [aliceChat, bobChat]) await chat?.shutdown();
  await server?.close();
});

describe('sending and receiving', () => {
  let photo: Buffer;
  let report: Buffer;
  let received: Message;

  it('carries text and two files built with addMedia, byte for byte, with progress on both sides', async () => {
    photo = file(300_000);
    report = file(1_000_000);
    const progress: AttachmentProgress[] = [];
    (await e2eeClientOf(aliceChat)).on('attachmentProgress', (p) => progress.push(p));
    const photoBlob = new Blob([photo as BlobPart], { type: 'image/png' });
    received = await toBob(() =>
      conversation
        .prepareMessage()
        .setBody('the photo and the report')
        .addMedia({ contentType: 'image/png', filename: 'photo.png', media: photoBlob })
        .addMedia({ contentType: 'application/pdf', filename: 'report.pdf', media: Buffer.from(report) })
        .build()
        .send(),
    );
    expect(received.body).toBe('the photo and the report');
    const info = e2eeInfo(received);
    expect(info.status).toBe('verified');
    expect(info.attachments.map(({ filename, contentType, size }) => ({ filename, contentType, size }))).toEqual([
      { filename: 'photo.png', contentType: 'image/png', size: 300_000 },
      { filename: 'report.pdf', contentType: 'application/pdf', size: 1_000_000 },
    ]);
    expect(received.e2ee!.attachments).toBe(info.attachments); // one object per version
    const [a, b] = info.attachments as [E2EEAttachment, E2EEAttachment];
    expectSame(await bytesOf(a), photo);
    const loaded: number[] = [];
    const blob = await b.blob({ onProgress: (n, total) => (expect(total).toBe(1_000_000), loaded.push(n)) });
    expect(blob.type).toBe('application/pdf');
    expectSame(Buffer.from(await blob.arrayBuffer()), report);
    expect(loaded.at(-1)).toBe(1_000_000);

    // Twilio (the relay) holds opaque blobs under neutral names; the real ones are only in the envelope.
    for (const media of received.attachedMedia!) {
      expect(media.contentType).toBe('application/octet-stream');
      expect(media.filename).toMatch(/^[0-9a-f]{32}\.bin$/);
    }
    expect(received.attachedMedia!.map((m) => m.sid).sort()).toEqual([a.media!.sid, b.media!.sid].sort());

    const phases = (name: string) => [...new Set(progress.filter((p) => p.filename === name).map((p) => p.phase))];
    expect(phases('photo.png')).toEqual(['encrypting', 'uploading', 'sent']);
    expect(phases('report.pdf')).toEqual(['encrypting', 'uploading', 'sent']);
    expect(progress.find((p) => p.filename === 'photo.png')!.media).toBe(photoBlob);
    expect(progress.every((p) => p.conversationSid === conversation.sid && p.loaded <= p.total)).toBe(true);
  });

  it('carries a zero-byte file and a file of exactly one chunk, from a Node stream, read as a Node Readable', async () => {
    const oneChunk = file(65_536);
    const empty = await toBob(() => conversation.sendMessage({ contentType: 'text/plain', filename: 'empty.txt', media: Buffer.alloc(0) }));
    const chunk = await toBob(() =>
      conversation.sendMessage({ contentType: 'application/octet-stream', filename: 'chunk.bin', media: Readable.from([oneChunk.subarray(0, 1000), oneChunk.subarray(1000)]) as never }),
    );
    expect(empty.body).toBe('');
    const [zero] = e2eeInfo(empty).attachments;
    expect(zero).toMatchObject({ filename: 'empty.txt', size: 0 });
    expect((await bytesOf(zero!)).length).toBe(0);
    const [one] = e2eeInfo(chunk).attachments;
    expect(one).toMatchObject({ filename: 'chunk.bin', size: 65_536 });
    const pieces: Buffer[] = [];
    for await (const piece of attachmentReadable(one!)) pieces.push(piece as Buffer);
    expectSame(Buffer.concat(pieces), oneChunk);
  });

  it('keeps the files through an edit of the message', async () => {
    const index = received.index;
    const own = (await conversation.getMessages(30)).items.find((m) => m.index === index)!;
    const updated = nextEvents<{ message: Message }>(bobChat, 'messageUpdated', 1, 10_000);
    await own.updateBody('the photo and the report, edited');
    const [{ message }] = (await updated) as [{ message: Message }];
    expect(message.body).toBe('the photo and the report, edited');
    const attachments = e2eeInfo(message).attachments;
    expect(attachments.map((a) => a.filename)).toEqual(['photo.png', 'report.pdf']);
    expectSame(await bytesOf(attachments[0]!), photo);
  });

  it('shows no attachments on an unencrypted or failed message', async () => {
    const plain = await toBob(() => unwrap(conversation).sendMessage('plain text'));
    expect(e2eeInfo(plain)).toMatchObject({ status: 'unencrypted', attachments: [] });
    const forged = await toBob(() => unwrap(conversation).sendMessage('e2ee1.AAAA'));
    expect(e2eeInfo(forged)).toMatchObject({ status: 'failed', attachments: [] });
  });
});

describe('a blob that is not what the sender signed', () => {
  it('stops the stream at a tampered chunk with ATTACHMENT_CHUNK_TAMPERED, handing on no byte', async () => {
    const content = file(200_000);
    const message = await toBob(() => conversation.sendMessage({ contentType: 'image/jpeg', filename: 'tampered.jpg', media: new Blob([content as BlobPart]) }));
    const [attachment] = e2eeInfo(message).attachments;
    const [path] = storedBlobs(attachment!);
    expect(path, 'the relay stores the blob in its data directory').toBeDefined();
    const stored = readFileSync(path!);
    stored[8 + 16 + 100]! ^= 1; // a byte of chunk 0's ciphertext
    writeFileSync(path!, stored);
    const { bytes, error } = await drain(attachment!.stream());
    expect(bytes).toBe(0);
    expect(error).toMatchObject({ code: 'ATTACHMENT_CHUNK_TAMPERED' });
    await expect(attachment!.blob()).rejects.toMatchObject({ code: 'ATTACHMENT_CHUNK_TAMPERED' });
  });

  it("refuses another message's blob put in its place (ATTACHMENT_CHUNK_FOREIGN)", async () => {
    const [first, second] = [file(100_000), file(100_000)];
    const one = await toBob(() => conversation.sendMessage({ contentType: 'text/plain', filename: 'one.txt', media: first }));
    const two = await toBob(() => conversation.sendMessage({ contentType: 'text/plain', filename: 'two.txt', media: second }));
    const [a] = e2eeInfo(one).attachments;
    const [b] = e2eeInfo(two).attachments;
    writeFileSync(storedBlobs(b!)[0]!, readFileSync(storedBlobs(a!)[0]!)); // same length: same size bucket
    const { bytes, error } = await drain(b!.stream());
    expect(bytes).toBe(0);
    expect(['ATTACHMENT_CHUNK_FOREIGN', 'ATTACHMENT_DIGEST_MISMATCH']).toContain((error as { code?: string }).code);
    expectSame(await bytesOf(a!), first); // the original still opens
  });

  it('reports a signed file without its blob as ATTACHMENT_MEDIA_MISMATCH on that file alone', async () => {
    const sent = file(1000);
    const withBlob = await toBob(() => conversation.sendMessage({ contentType: 'text/plain', filename: 'real.txt', media: sent }));
    const real = e2eeInfo(withBlob).attachments[0]!;
    // A correctly signed envelope naming a second file Twilio never got.
    const sealed = await conversationWrapperOf(conversation).seal('see the files', {
      attachments: [
        { file: (await conversationWrapperOf(bobConversation).open(unwrap(withBlob))).attachments[0]!.file },
      ],
    });
    const message = await toBob(() => unwrap(conversation).sendMessage(sealed.text));
    expect(message.body).toBe('see the files');
    const [missing] = e2eeInfo(message).attachments;
    expect(missing).toMatchObject({ filename: 'real.txt', media: null });
    expect((await drain(missing!.stream())).error).toMatchObject({ code: 'ATTACHMENT_MEDIA_MISMATCH' });
    expectSame(await bytesOf(real), sent);
  });
});

describe('refusals', () => {
  it('refuse a file over the limit, a size-faking source and too many files, uploading nothing', async () => {
    const before = storedFiles().length;
    const messagesBefore = await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 });
    const claimsHuge = { size: 150_000_001, type: 'video/mp4', stream: () => new Blob([new Uint8Array(10)]).stream() };
    await expect(conversation.sendMessage({ contentType: 'video/mp4', filename: 'huge.mp4', media: claimsHuge as unknown as Blob })).rejects.toMatchObject({ code: 'ATTACHMENT_TOO_LARGE' });
    const claimsSmall = { size: 10, type: 'text/plain', stream: () => new Blob([new Uint8Array(100_000)]).stream() };
    await expect(conversation.sendMessage({ contentType: 'text/plain', filename: 'liar.txt', media: claimsSmall as unknown as Blob })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const builder = conversation.prepareMessage().setBody('eleven files');
    for (let i = 0; i < 11; i++) builder.addMedia({ contentType: 'text/plain', filename: `f${i}.txt`, media: `file ${i}` });
    await expect(builder.build().send()).rejects.toMatchObject({ code: 'TOO_MANY_ATTACHMENTS' });
    await expect(conversation.sendMessage({ contentType: 'text/plain', filename: '../escape.txt', media: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(conversation.sendMessage({ contentType: 'text/plain', filename: 'x.txt', media: 42 as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(storedFiles().length).toBe(before);
    expect(await server.store.messages(conversation.sid, { direction: 'backwards', limit: 1 })).toEqual(messagesBefore);
  });
});

describe('history and removal', () => {
  it('lets an agent added later open both files from history, verified against the sender', async () => {
    const [pdf, png] = [file(150_000), file(120_000)];
    const index = await conversation
      .prepareMessage()
      .addMedia({ contentType: 'application/pdf', filename: 'before.pdf', media: pdf })
      .addMedia({ contentType: 'image/png', filename: 'before.png', media: png })
      .build()
      .send();
    await waitFor(async () => (await alice.pendingBackups()) === 0, 'the backup');
    const agent = await device(server, 'support-agent');
    const agentChat = await agent.connect();
    try {
      const added = nextEvents(agentChat, 'conversationAdded');
      await conversation.add('support-agent');
      await added;
      const page = await (await agentChat.getConversationBySid(conversation.sid)).getMessages(50);
      const message = page.items.find((m) => m.index === index)!;
      expect(e2eeInfo(message)).toMatchObject({ status: 'verified', via: 'history', senderCardId: alice.card!.id });
      const [a, b] = e2eeInfo(message).attachments;
      expectSame(await bytesOf(a!), pdf);
      expectSame(await bytesOf(b!), png);
    } finally {
      await agentChat.shutdown();
    }
  });

  it("removes the relay's blobs with the message", async () => {
    const message = await toBob(() => conversation.sendMessage({ contentType: 'text/plain', filename: 'gone.txt', media: file(5000) }));
    const [attachment] = e2eeInfo(message).attachments;
    expect(storedBlobs(attachment!)).toHaveLength(1);
    const own = (await conversation.getMessages(5)).items.find((m) => m.index === message.index)!;
    await own.remove();
    await waitFor(() => storedBlobs(attachment!).length === 0, "the relay's blob to go");
    expect((await drain(attachment!.stream())).error).toMatchObject({ code: expect.stringMatching(/^ATTACHMENT_UNAVAILABLE$/) });
  });
});

describe("the relay's storage", () => {
  it('holds no plaintext of any file sent in this file', async () => {
    const stored = storedFiles().map((path) => [path, readFileSync(path)] as const);
    expect(files.length).toBeGreaterThan(8);
    for (const content of files) {
      if (content.length < 64) continue;
      // Three 32-byte samples of each file: random content never appears by chance.
      for (const at of [0, Math.floor(content.length / 2), content.length - 32]) {
        const sample = Buffer.from(content.subarray(at, at + 32));
        for (const [path, bytes] of stored) expect(bytes.includes(sample), `${path} holds plaintext`).toBe(false);
      }
    }
  });
});
