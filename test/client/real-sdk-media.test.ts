/**
 * Encrypted attachments through the real @twilio/conversations 3 Client (issue 15). Each user's
 * client is the SDK's own, on the in-memory Twilio of test/support/conversations-cloud.ts, with
 * Twilio's Media Content Service as a local HTTP server (test/support/media-content-service.ts):
 * the SDK's own MCS client uploads each blob to it (in Node through the `xmlhttprequest` package
 * the SDK falls back to), attaches it to the message by sid, and gets its temporary URLs from it;
 * the wrapper downloads from those URLs. What Twilio stores is checked to be opaque.
 */
import { Media, type Client, type Conversation, type Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentReadable, e2eeInfo, unwrap, type E2EEAttachment, type E2EEClient } from '../../client/node.js';
import { ENVELOPE_PREFIX } from '../../shared/index.js';
import { nextEvents } from '../support/concurrency.js';
import { ConversationsCloud } from '../support/conversations-cloud.js';
import { realSdkPair } from '../support/real-sdk-pair.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';
import type { MediaContentService, StoredMedia } from '../support/media-content-service.js';

let server: LoopbackServer;
let cloud: ConversationsCloud;
let mcs: MediaContentService;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceChat: Client;
let bobChat: Client;
let atAlice: Conversation;
let atBob: Conversation;

/** `size` random bytes after `head`: a file's content, never to be seen by Twilio. */
function file(size: number, head = ''): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  bytes.write(head, 'latin1');
  return bytes;
}

/** Byte-for-byte equality (toEqual walks a large Buffer element by element, slowly). */
function expectSame(actual: Uint8Array, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(expected.equals(actual), 'the bytes differ').toBe(true);
}

/** No 16-byte run of `secret` (sampled every 4 KiB, and its last 16 bytes) appears in `stored`. */
function expectOpaque(stored: Buffer, secret: Buffer): void {
  const offsets = [...Array(Math.ceil(secret.length / 4096)).keys()].map((i) => i * 4096).concat(secret.length - 16);
  const found = offsets.filter((at) => stored.includes(secret.subarray(at, at + 16)));
  expect(found, 'plaintext runs found in what Twilio stores').toEqual([]);
}

async function bytesOf(attachment: E2EEAttachment): Promise<Buffer> {
  return Buffer.from(await (await attachment.blob()).arrayBuffer());
}

/** What Twilio's media service holds for a message's media, in the message's order. */
function storedFor(message: Message): StoredMedia[] {
  return message.attachedMedia!.map((m) => mcs.stored().find((s) => s.sid === m.sid)!);
}

/** Sends with `send`; resolves with the message as Bob's client and his conversation get it. */
async function toBob(send: () => Promise<unknown>): Promise<Message> {
  const onClient = nextEvents<Message>(bobChat, 'messageAdded', 1, 20_000);
  const onConversation = nextEvents<Message>(atBob, 'messageAdded', 1, 20_000);
  await send();
  const [[fromClient], [fromConversation]] = await Promise.all([onClient, onConversation]);
  expect(fromConversation).toBe(fromClient);
  return fromClient!;
}

beforeAll(async () => {
  server = await startLoopbackServer();
  [alice, bob] = await Promise.all([device(server, 'alice', { backup: 'off' }), device(server, 'bob', { backup: 'off' })]);
  await Promise.all([alice.register(), bob.register()]);
  cloud = new ConversationsCloud();
  mcs = await cloud.listenMedia();
  ({ aliceChat, bobChat, atAlice, atBob } = await realSdkPair(cloud, alice, bob, 'files'));
});

afterAll(async () => {
  for (const chat of [aliceChat, bobChat]) await chat?.shutdown();
  await cloud?.close();
  await server?.close();
});

describe("files through the SDK's Client and Twilio's media service", () => {
  it('text, an image and a PDF built with addMedia: bob gets them verified, byte for byte; Twilio holds only opaque blobs', async () => {
    const photo = file(200_000, '\x89PNG\r\n\x1a\n');
    const report = file(150_000, '%PDF-1.7\n');
    const received = await toBob(() =>
      atAlice
        .prepareMessage()
        .setBody('the photo and the report')
        .addMedia({ contentType: 'image/png', filename: 'photo.png', media: new Blob([photo as BlobPart], { type: 'image/png' }) })
        .addMedia({ contentType: 'application/pdf', filename: 'report.pdf', media: Buffer.from(report) })
        .build()
        .send(),
    );
    expect(received.body).toBe('the photo and the report');
    const info = e2eeInfo(received);
    expect(info.status).toBe('verified');
    expect(info.attachments.map(({ filename, contentType, size }) => ({ filename, contentType, size }))).toEqual([
      { filename: 'photo.png', contentType: 'image/png', size: photo.length },
      { filename: 'report.pdf', contentType: 'application/pdf', size: report.length },
    ]);

    // What Twilio holds: the envelope as the body, and two opaque blobs under neutral names.
    const raw = unwrap(received);
    expect(raw.body!.startsWith(ENVELOPE_PREFIX)).toBe(true);
    expect(raw.type).toBe('media');
    const media = received.attachedMedia!;
    expect(media).toHaveLength(2);
    const stored = storedFor(received);
    for (const [i, m] of media.entries()) {
      expect(m).toBeInstanceOf(Media);
      expect(m.contentType).toBe('application/octet-stream');
      expect(m.filename).toMatch(/^[0-9a-f]{32}\.bin$/);
      expect(m.category).toBe('media');
      expect(info.attachments[i]!.media).toBe(m);
      expect(stored[i]).toMatchObject({ author: 'alice', contentType: 'application/octet-stream', filename: m.filename, conversationSid: atBob.sid });
      expect(m.size).toBe(stored[i]!.bytes.length);
      expect(stored[i]!.bytes.length).toBeGreaterThan([photo, report][i]!.length);
    }
    for (const blob of stored) {
      expectOpaque(blob.bytes, photo);
      expectOpaque(blob.bytes, report);
      for (const name of ['photo.png', 'report.pdf', 'image/png', 'application/pdf']) expect(blob.bytes.includes(name)).toBe(false);
    }

    // Bob's app: the whole files, typed; a stream with progress; a Node Readable.
    const [image, pdf] = info.attachments as [E2EEAttachment, E2EEAttachment];
    const imageBlob = await image.blob();
    expect(imageBlob.type).toBe('image/png');
    expectSame(new Uint8Array(await imageBlob.arrayBuffer()), photo);
    const loaded: number[] = [];
    const pieces: Uint8Array[] = [];
    for await (const piece of pdf.stream({ onProgress: (n) => loaded.push(n) }) as unknown as AsyncIterable<Uint8Array>) pieces.push(piece);
    expectSame(Buffer.concat(pieces), report);
    expect(loaded.at(-1)).toBe(report.length);
    const fromNode: Buffer[] = [];
    for await (const piece of attachmentReadable(pdf)) fromNode.push(piece as Buffer);
    expectSame(Buffer.concat(fromNode), report);

    // Alice's own message opens too (her device is a recipient).
    const [atAlicesEnd] = (await atAlice.getMessages(1)).items;
    expectSame(await bytesOf(e2eeInfo(atAlicesEnd!).attachments[1]!), report);
  });

  it('sendMessage({contentType, filename, media}): one file, no text', async () => {
    const notes = file(100_000, 'notes: ');
    const received = await toBob(() => atAlice.sendMessage({ contentType: 'text/plain', filename: 'notes.txt', media: Buffer.from(notes) }));
    expect(received.body).toBe('');
    const [attachment] = e2eeInfo(received).attachments;
    expect(attachment).toMatchObject({ filename: 'notes.txt', contentType: 'text/plain', size: notes.length });
    expectSame(await bytesOf(attachment!), notes);
    const [stored] = storedFor(received);
    expect(stored).toMatchObject({ contentType: 'application/octet-stream', filename: expect.stringMatching(/^[0-9a-f]{32}\.bin$/) });
    expectOpaque(stored!.bytes, notes);
  });

  it("the SDK's temporary URLs serve the opaque blob, fetched without headers", async () => {
    const [message] = (await atBob.getMessages(1)).items;
    const urls = await message!.getTemporaryContentUrlsForAttachedMedia();
    const [media] = message!.attachedMedia!;
    const response = await fetch(urls.get(media!.sid)!);
    expect(response.status).toBe(200);
    expectSame(new Uint8Array(await response.arrayBuffer()), storedFor(message!)[0]!.bytes);
  });

  // The control: what the media service records is what the SDK uploads, so the checks above see
  // what the wrapper hands over.
  it('without the wrapper, the same SDK call hands Twilio the plaintext under its real name and type', async () => {
    const secret = file(20_000, '\x89PNG\r\n\x1a\n');
    const received = await toBob(() => unwrap(atAlice).sendMessage({ contentType: 'image/png', filename: 'secret.png', media: Buffer.from(secret) }));
    expect(e2eeInfo(received)).toMatchObject({ status: 'unencrypted', attachments: [] });
    const [stored] = storedFor(received);
    expect(stored).toMatchObject({ contentType: 'image/png', filename: 'secret.png' });
    expect(() => expectOpaque(stored!.bytes, secret)).toThrow(/plaintext runs/);
  });
});
