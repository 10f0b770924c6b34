/**
 * What a user of a demo-mode server does over HTTP, outside the client wrapper: sign in through
 * the demo login, and post to the local relay directly.
 */
import { LocalConversationsClient } from '../../client/node.js';
import { ApiPath } from '../../shared/api.js';

/** An app token for `identity` from the demo login (POST /v1/session), as the sign-in screen gets one. */
export async function demoToken(server: { url: string }, identity: string): Promise<string> {
  const response = await fetch(`${server.url}${ApiPath.session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity }) });
  if (response.status !== 200) throw new Error(`demo login as ${identity}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * Posts `body` as `identity` straight to the relay, past the wrapper: what a client without
 * end-to-end encryption (or anyone holding that user's sign-in) can do.
 */
export async function postToRelay(server: { url: string }, identity: string, conversationSid: string, body: string): Promise<void> {
  const token = await demoToken(server, identity);
  const response = await fetch(`${server.url}${ApiPath.twilioToken}`, { headers: { authorization: `Bearer ${token}` } });
  const relay = (await response.json()) as { token: string; relayUrl: string };
  const client = await LocalConversationsClient.connect({ relayUrl: relay.relayUrl, token: relay.token });
  try {
    await (await client.getConversationBySid(conversationSid)).sendMessage(body);
  } finally {
    await client.shutdown();
  }
}
