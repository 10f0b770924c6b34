/** The local relay from a test's side: a relay token and URL for an identity, from a loopback server. */
import type { LoopbackServer } from './loopback-server.js';

/** What GET /v1/twilio-token answers in local mode, for `identity` (a demo session). */
export async function relayToken(server: LoopbackServer, identity: string): Promise<{ relayUrl: string; token: string; mode: string }> {
  const response = await fetch(`${server.url}/v1/twilio-token`, { headers: { authorization: `Bearer ${await server.session(identity)}` } });
  return (await response.json()) as { relayUrl: string; token: string; mode: string };
}
