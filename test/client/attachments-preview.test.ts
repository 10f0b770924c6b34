/**
 * Attachment previews: the thumbnail's size and the default maker's Node behaviour (the canvas
 * path runs in the browser tests), the attachmentPreview option, and, through the relay, a preview
 * that reaches the receiver signed, dropped (never the message) when the envelope would not fit.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2EEClient, e2eeInfo, imagePreview, MemoryKeyStore, previewSize, type AttachmentPreview } from '../../client/node.js';
import { previewMaker } from '../../client/attachment-preview.js';
import { MAX_ATTACHMENT_PREVIEW_BYTES } from '../../shared/limits.js';
import { nextEvents } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

describe('the default preview', () => {
  it('scales the longest side down to 96 pixels, never up, keeping the aspect', () => {
    expect(previewSize(4000, 3000)).toEqual({ width: 96, height: 72 });
    expect(previewSize(300, 1200)).toEqual({ width: 24, height: 96 });
    expect(previewSize(50, 20)).toEqual({ width: 50, height: 20 });
    expect(previewSize(10_000, 1)).toEqual({ width: 96, height: 1 });
  });

  it('is none for a file that is not an image, and in Node (no image decoder)', async () => {
    expect(await imagePreview(new Blob(['%PDF'], { type: 'application/pdf' }))).toBeUndefined();
    expect(await imagePreview(new Blob([new Uint8Array(8)], { type: 'image/png' }))).toBeUndefined();
    expect(await previewMaker(false)(new Blob([], { type: 'image/png' }))).toBeUndefined();
  });

  it('option: false or a function; anything else is refused at create', async () => {
    await expect(
      E2EEClient.create({ serverUrl: 'http://127.0.0.1:9', getAuthToken: () => 'x', appPublicKeys: [], keyStore: new MemoryKeyStore(), attachmentPreview: 'yes' as never }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('previews through the relay', () => {
  let server: LoopbackServer;
  let aliceChat: Client;
  let bobChat: Client;
  let conversation: Conversation;
  const thumbnail: AttachmentPreview = { contentType: 'image/webp', bytes: crypto.getRandomValues(new Uint8Array(6000)), width: 96, height: 64 };
  let madeFor: string[] = [];

  beforeAll(async () => {
    server = await startLoopbackServer();
    const alice = await device(server, 'alice', {
      attachmentPreview: async (file) => (madeFor.push(file.type), thumbnail),
    });
    const bob = await device(server, 'bob');
    [aliceChat, bobChat] = await Promise.all([alice.connect(), bob.connect()]);
    conversation = await aliceChat.createConversation();
    await conversation.join();
    const added = nextEvents(bobChat, 'conversationAdded');
    await conversation.add('bob');
    await added;
  });

  afterAll(async () => {
    for (const chat of [aliceChat, bobChat]) await chat?.shutdown();
    await server?.close();
  });

  async function toBob(body: string): Promise<Message> {
    const atBob = nextEvents<Message>(bobChat, 'messageAdded', 1, 20_000);
    await send(body);
    return (await atBob)[0]!;
  }

  function send(body: string): Promise<number | null> {
    return conversation
      .prepareMessage()
      .setBody(body)
      .addMedia({ contentType: 'image/png', filename: 'cat.png', media: new Blob([new Uint8Array(5000)], { type: 'image/png' }) })
      .addMedia({ contentType: 'text/plain', filename: 'notes.txt', media: new Blob(['notes'], { type: 'text/plain' }) })
      .build()
      .send();
  }

  it("reach the receiver for image files only, as the sender's function made them", async () => {
    madeFor = [];
    const message = await toBob('a cat');
    expect(madeFor).toEqual(['image/png']);
    const [cat, notes] = e2eeInfo(message).attachments;
    expect(cat!.preview).toEqual(thumbnail);
    expect(thumbnail.bytes.length).toBeLessThanOrEqual(MAX_ATTACHMENT_PREVIEW_BYTES);
    expect(notes!.preview).toBeUndefined();
  });

  it('are dropped, never the message, when the envelope would exceed 32 KB; a message too large without them is refused with nothing uploaded', async () => {
    const long = 'x'.repeat(19_000); // fits with the files, not with the preview as well
    const message = await toBob(long);
    expect(message.body).toBe(long);
    expect(e2eeInfo(message).attachments.map((a) => [a.filename, a.preview])).toEqual([
      ['cat.png', undefined],
      ['notes.txt', undefined],
    ]);

    const blobs = () => readdirSync(server.dataDir, { recursive: true }).length;
    const before = blobs();
    await expect(send('x'.repeat(30_000))).rejects.toMatchObject({ code: 'ENVELOPE_TOO_LARGE' });
    expect(blobs()).toBe(before);
  });
});
