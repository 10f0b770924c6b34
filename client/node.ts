/**
 * twilio-e2ee/client/node: everything in twilio-e2ee/client, plus what only Node has.
 * - `FileKeyStore`, a key store in a file (node:fs).
 * - `attachmentReadable`, a received attachment as a Node Readable.
 * - The `ws` package as the local relay's WebSocket where the runtime has none (Node 20; Node 22
 *   and later have a global WebSocket, which stays the first choice).
 * A separate entry rather than a `node` export condition: which code an app gets depends only on
 * what it imports, the same in every bundler, test runner and TypeScript setting.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import NodeWebSocket from 'ws';
import type { AttachmentReadOptions, E2EEAttachment } from './attachment.js';
import { setNodeWebSocket } from './local/relay-client.js';

export * from './index.js';
export { FileKeyStore } from './file-key-store.js';

/**
 * A received attachment as a Node Readable of its verified, decrypted bytes (`attachment.stream()`
 * adapted): a blob that is not the one the sender signed ends it with an 'error' event carrying
 * the E2EEError; whatever was written from it before must then be discarded.
 */
export function attachmentReadable(attachment: E2EEAttachment, options?: AttachmentReadOptions): Readable {
  return Readable.fromWeb(attachment.stream(options) as unknown as NodeWebReadableStream<Uint8Array>);
}

// A side effect on import, so package.json lists this file under "sideEffects" (bundlers for Node
// keep it). ws's addEventListener takes its own event classes; the relay reads only data and code.
setNodeWebSocket(NodeWebSocket as unknown as Parameters<typeof setNodeWebSocket>[0]);
