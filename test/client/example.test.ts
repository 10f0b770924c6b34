/** The Node example (client/examples/node-chat.ts) runs against a real server and verifies everything. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
beforeAll(async () => {
  server = await startLoopbackServer();
});
afterAll(async () => {
  await server?.close();
});

it('registers two users, chats both ways and reads everything back verified', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'client/examples/node-chat.ts', server.url], { timeout: 60_000 });
  expect(stdout).toContain('[verified]');
  expect(stdout).toMatch(/bob got: {3}"Hi Bob, this is end-to-end encrypted\." \[verified\]/);
  expect(stdout).toContain('all messages decrypted and verified');
  expect(stdout).not.toContain('failed');
});
