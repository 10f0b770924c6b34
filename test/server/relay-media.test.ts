/**
 * The relay's media service on each store (SQLite: files in DATA_DIR/media; PostgreSQL: large
 * objects): the bytes stored are exactly the bytes uploaded (the relay never changes or learns
 * more than it is given), an 8 MB blob streams in and out, and removing its message removes it.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalConversationsClient } from '../../client/node.js';
import { ApiPath } from '../../shared/api.js';
import { session } from '../support/app.js';
import { baseUrl, securityServer } from '../support/security.js';
import { runPostgres } from '../support/stores.js';

async function bytesOf(content: AsyncIterable<Uint8Array> | null): Promise<Buffer | null> {
  if (content === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe.skipIf(kind === 'postgres' && !runPostgres)(`relay media [${kind}]`, () => {
    it('stores exactly the uploaded bytes, streams them back, and removes them with their message', async () => {
      const server = await securityServer({ store: kind, listen: true });
      let client: LocalConversationsClient | undefined;
      try {
        const base = baseUrl(server.app);
        const user = await session(server.app, 'alice');
        const token = (await server.app.inject({ url: ApiPath.twilioToken, headers: user.headers })).json<{ token: string }>().token;
        client = await LocalConversationsClient.connect({ relayUrl: base.replace(/^http/, 'ws') + ApiPath.relay, token });
        const conversation = await client.createConversation();
        await conversation.join();

        const blob = randomBytes(8 * 1024 * 1024);
        await conversation.sendMessage({ contentType: 'application/octet-stream', filename: 'f.bin', media: blob });
        const [message] = (await conversation.getMessages(1)).items;
        const { sid, size } = message!.attachedMedia[0]!;
        expect(size).toBe(blob.length);
        expect((await server.store.getMedia(sid))?.messageSid).toBe(message!.sid);
        expect((await bytesOf(await server.store.readMedia(sid)))!.equals(blob)).toBe(true);
        if (kind === 'sqlite') {
          expect(await readdir(join(server.dataDir, 'media'))).toEqual([sid]);
          expect((await readFile(join(server.dataDir, 'media', sid))).equals(blob)).toBe(true);
        }

        const response = await fetch((await message!.attachedMedia[0]!.getContentTemporaryUrl())!);
        expect(response.headers.get('content-length')).toBe(String(blob.length));
        expect(Buffer.from(await response.arrayBuffer()).equals(blob)).toBe(true);

        await message!.remove();
        expect(await server.store.getMedia(sid)).toBeNull();
        expect(await server.store.readMedia(sid)).toBeNull();
        if (kind === 'sqlite') expect(await readdir(join(server.dataDir, 'media'))).toEqual([]);
      } finally {
        await client?.shutdown();
        await server.close();
      }
    });
  });
}
