/**
 * The local relay's media through its client, as the SDK's media API: sendMessage with
 * SendMediaOptions and prepareMessage().addMedia (several blobs, with or without a body), the
 * message's attachedMedia and temporary URLs fetched with a plain fetch, upload progress, the
 * SDK's limits checked before any upload, and who may get a URL.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2EEError, LocalConversationsClient, type LocalConversation, type LocalMessage } from '../../client/node.js';
import type { MediaUploadProgress } from '../../client/local/relay-client.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { nextEvents } from '../support/concurrency.js';
import { relayToken } from '../support/local-relay.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
const clients: LocalConversationsClient[] = [];

async function connect(identity: string): Promise<LocalConversationsClient> {
  const client = await LocalConversationsClient.connect(await relayToken(server, identity));
  clients.push(client);
  return client;
}

/** A conversation alice and bob are in, from each side. */
async function pair(): Promise<{ alice: LocalConversationsClient; bob: LocalConversationsClient; mine: LocalConversation; theirs: LocalConversation }> {
  const alice = await connect(`alice-${randomBytes(4).toString('hex')}`);
  const bob = await connect(`bob-${randomBytes(4).toString('hex')}`);
  const mine = await alice.createConversation();
  await mine.join();
  await mine.add(bob.identity);
  const theirs = await bob.getConversationBySid(mine.sid);
  return { alice, bob, mine, theirs };
}

async function download(url: string | null | undefined): Promise<Buffer> {
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
  const response = await fetch(url!);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/octet-stream');
  return Buffer.from(await response.arrayBuffer());
}

async function newest(conversation: LocalConversation): Promise<LocalMessage> {
  const page = await conversation.getMessages(1);
  return page.items[0]!;
}

beforeAll(async () => {
  server = await startLoopbackServer();
});

afterAll(async () => {
  for (const c of clients) await c.shutdown();
  await server?.close();
});

describe('sending media', () => {
  it('sends one blob with sendMessage and the other side downloads it byte for byte', async () => {
    const { bob, mine, theirs } = await pair();
    const bytes = randomBytes(200_000);
    const added = nextEvents<LocalMessage>(bob, 'messageAdded', 1);
    const index = await mine.sendMessage({ contentType: 'application/octet-stream', filename: `${'a'.repeat(32)}.bin`, media: bytes });
    const [message] = (await added) as [LocalMessage];
    expect(message.index).toBe(index);
    expect(message.type).toBe('media');
    expect(message.attachedMedia).toHaveLength(1);
    const [media] = message.attachedMedia;
    expect(media).toMatchObject({ category: 'media', filename: `${'a'.repeat(32)}.bin`, contentType: 'application/octet-stream', size: bytes.length });
    expect(media!.sid).toMatch(/^ME[0-9a-f]{32}$/);
    expect(message.media?.sid).toBe(media!.sid);
    expect(message.getMediaByCategories(['media'])).toEqual(message.attachedMedia);
    expect(await download(await media!.getContentTemporaryUrl())).toEqual(bytes);
    // The page answers the same media as the push.
    const paged = await newest(theirs);
    expect(paged.attachedMedia.map((m) => m.sid)).toEqual([media!.sid]);
  });

  it('sends several blobs with a body through the builder, in order, each as a Blob, Buffer or Uint8Array', async () => {
    const { alice, mine, theirs } = await pair();
    const blobs = [randomBytes(10), randomBytes(70_000), randomBytes(0)];
    const progress: MediaUploadProgress[] = [];
    alice.on('mediaUploadProgress', (p) => progress.push(p));
    await mine
      .prepareMessage()
      .setBody('envelope text')
      .setAttributes({ a: 1 })
      .addMedia({ contentType: 'application/octet-stream', filename: 'one.bin', media: new Blob([blobs[0]!]) })
      .addMedia({ contentType: 'image/png', filename: 'two.bin', media: blobs[1]! })
      .addMedia({ contentType: null, media: new Uint8Array(blobs[2]!) })
      .build()
      .send();
    const message = await newest(theirs);
    expect(message.body).toBe('envelope text');
    expect(message.attributes).toEqual({ a: 1 });
    expect(message.attachedMedia.map((m) => [m.filename, m.contentType, m.size])).toEqual([
      ['one.bin', 'application/octet-stream', 10],
      ['two.bin', 'image/png', 70_000],
      [null, 'application/octet-stream', 0],
    ]);
    const urls = await message.getTemporaryContentUrlsForAttachedMedia();
    expect([...urls.keys()]).toEqual(message.attachedMedia.map((m) => m.sid));
    for (const [i, m] of message.attachedMedia.entries()) expect(await download(urls.get(m.sid))).toEqual(blobs[i]);
    // The client's and the message's sid lookups give URLs too.
    const bySid = await alice.getTemporaryContentUrlsForMediaSids([message.attachedMedia[1]!.sid]);
    expect(await download(bySid.get(message.attachedMedia[1]!.sid))).toEqual(blobs[1]);
    // Progress ends at each blob's size.
    const last = progress.filter((p) => p.filename === 'two.bin').at(-1);
    expect(last).toEqual({ filename: 'two.bin', loaded: 70_000, total: 70_000 });
  });

  it('sends media without a body, and a FormData holding a file', async () => {
    const { mine, theirs } = await pair();
    const form = new FormData();
    form.set('file', new File([Buffer.from('form bytes')], 'form.bin', { type: 'application/octet-stream' }));
    await mine.sendMessage(form);
    const message = await newest(theirs);
    expect(message.body).toBe('');
    expect(message.attachedMedia.map((m) => m.filename)).toEqual(['form.bin']);
    expect((await download(await message.attachedMedia[0]!.getContentTemporaryUrl())).toString()).toBe('form bytes');
  });

  it('answers the SDK limits, and refuses more media or a larger blob before any upload', async () => {
    const { alice, mine, theirs } = await pair();
    expect(mine.limits).toMatchObject({ mediaAttachmentsCountLimit: 10, mediaAttachmentSizeLimitInMb: 150 });
    const uploads: MediaUploadProgress[] = [];
    alice.on('mediaUploadProgress', (p) => uploads.push(p));
    let builder = mine.prepareMessage().setBody('x');
    for (let i = 0; i <= RELAY_LIMITS.mediaPerMessage; i++) builder = builder.addMedia({ contentType: null, media: Buffer.from([i]) });
    await expect(builder.build().send()).rejects.toMatchObject({ code: 'TOO_MANY_ATTACHMENTS' });
    // A Blob claims its size without holding it: a sparse 150 MB + 1 is refused by size alone.
    const large = new Blob([new Uint8Array(1), new Blob([new ArrayBuffer(RELAY_LIMITS.mediaBytes)])]);
    await expect(mine.sendMessage({ contentType: null, media: large })).rejects.toMatchObject({ code: 'ATTACHMENT_TOO_LARGE' });
    expect(uploads).toEqual([]);
    expect(await theirs.getMessagesCount()).toBe(0);
  });
});

describe('who gets a URL', () => {
  it('gives URLs to current participants only: not to a stranger, not after being removed', async () => {
    const { bob, mine, theirs } = await pair();
    await mine.sendMessage({ contentType: null, media: Buffer.from('secret blob') });
    const message = await newest(theirs);
    const sid = message.attachedMedia[0]!.sid;
    const stranger = await connect(`eve-${randomBytes(4).toString('hex')}`);
    const refused = await stranger.getTemporaryContentUrlsForMediaSids([sid]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(E2EEError);
    expect((refused as E2EEError).code).toBe('NOT_FOUND');
    await mine.removeParticipant(bob.identity);
    await expect(message.attachedMedia[0]!.getContentTemporaryUrl()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses an upload by a participant removed since, with the relay\'s code, before reading the blob', async () => {
    const { bob, mine, theirs } = await pair();
    await mine.removeParticipant(bob.identity);
    const refused = await theirs.sendMessage({ contentType: null, media: randomBytes(3_000_000) }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(E2EEError);
    expect((refused as E2EEError).code).toBe('FORBIDDEN');
    expect(await server.store.unattachedMediaBytes(bob.identity)).toBe(0);
  });

  it('removing the message removes its blobs: an earlier URL answers 404', async () => {
    const { mine } = await pair();
    await mine.sendMessage({ contentType: null, media: Buffer.from('short-lived') });
    const message = await newest(mine);
    const url = await message.attachedMedia[0]!.getContentTemporaryUrl();
    await message.remove();
    const response = await fetch(url!);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
