/**
 * twilio-e2ee/client/node: everything in twilio-e2ee/client, plus what only Node has.
 * - `FileKeyStore`, a key store in a file (node:fs).
 * - The `ws` package as the local relay's WebSocket where the runtime has none (Node 20; Node 22
 *   and later have a global WebSocket, which stays the first choice).
 * A separate entry rather than a `node` export condition: which code an app gets depends only on
 * what it imports, the same in every bundler, test runner and TypeScript setting.
 */
import NodeWebSocket from 'ws';
import { setNodeWebSocket } from './local/relay-client.js';

export * from './index.js';
export { FileKeyStore } from './file-key-store.js';

// A side effect on import, so package.json lists this file under "sideEffects" (bundlers for Node
// keep it). ws's addEventListener takes its own event classes; the relay reads only data and code.
setNodeWebSocket(NodeWebSocket as unknown as Parameters<typeof setNodeWebSocket>[0]);
