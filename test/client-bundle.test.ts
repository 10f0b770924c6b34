/**
 * twilio-e2ee/client bundles for browsers with no flags (issue "Adoption", "Browser bundles"):
 * esbuild, platform browser, nothing external, leaves no Node built-in or Node-only package in
 * the output and reports none; what a page loads up front stays under 200 KB gzip. The Node
 * entry (twilio-e2ee/client/node) is the control: the same check finds its node:fs. Without that
 * entry, Node 20 has no WebSocket for the relay, and says so.
 */
import { expect, it } from 'vitest';
import { ErrorCode, LocalConversationsClient } from '../client/index.js';
import { bundleClient } from './support/client-bundle.js';

const LIMIT_GZIP_BYTES = 200_000;
const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`;

it('bundles twilio-e2ee/client for browsers with no Node built-in, under 200 KB gzip', async () => {
  const bundle = await bundleClient('client/index.ts');
  expect(bundle.messages, 'esbuild errors and warnings').toEqual([]);
  expect(bundle.nodeOnly, 'Node built-ins and Node-only packages in the bundle').toEqual([]);
  console.log(
    `twilio-e2ee/client for browsers: ${kb(bundle.initialGzipBytes)} gzip up front, libsodium ${kb(bundle.libsodiumGzipBytes)} of it; ` +
      `on demand: ${bundle.lazy.map((f) => `${f.name} ${kb(f.gzipBytes)}`).join(', ')}`,
  );
  expect(bundle.initialGzipBytes).toBeLessThan(LIMIT_GZIP_BYTES);
  // The Twilio SDK loads only when connect() creates its Client (Twilio mode), never up front.
  const upFront = bundle.initial.flatMap((f) => f.packages);
  expect(upFront).toContain('libsodium-wrappers');
  expect(upFront).not.toContain('@twilio/conversations');
  expect(bundle.lazy.flatMap((f) => f.packages)).toContain('@twilio/conversations');
}, 60_000);

it('finds the Node built-ins of twilio-e2ee/client/node', async () => {
  const bundle = await bundleClient('client/node.ts');
  expect(bundle.nodeOnly).toEqual(expect.arrayContaining(['node:fs/promises', 'node:path']));
  expect(bundle.messages.join('\n')).toMatch(/Could not resolve "node:fs\/promises"/);
}, 60_000);

// Node 20 has no global WebSocket; only the Node entry brings `ws`, and this file never loads it.
it.skipIf('WebSocket' in globalThis)('without the Node entry or a WebSocket option, connecting to the relay is refused with INVALID_ARGUMENT', async () => {
  await expect(LocalConversationsClient.connect({ relayUrl: 'ws://127.0.0.1:9/v1/relay', token: 't' })).rejects.toMatchObject({
    code: ErrorCode.INVALID_ARGUMENT,
    message: expect.stringContaining('twilio-e2ee/client/node'),
  });
});
