/**
 * Two users chat end to end from Node, through the public client API only:
 *
 *   npm start                                   # in another terminal
 *   npx tsx client/examples/node-chat.ts http://localhost:3000
 *
 * It signs in alice and bob (demo login), registers a device for each, creates a conversation,
 * exchanges messages both ways and reads them back decrypted and verified. Exits non-zero if
 * anything does not verify. The wrapped client is the SDK's own Client.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Message } from '@twilio/conversations';
import { E2EEClient, FileKeyStore } from '../node.js';

const serverUrl = (process.argv[2] ?? 'http://localhost:3000').replace(/\/$/, '');

async function json<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(serverUrl + path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A demo session; a real app gets this JWT from its own identity provider. */
async function signIn(identity: string): Promise<string> {
  const { token } = await json<{ token: string }>('/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ identity }),
  });
  return token;
}

function nextMessage(chat: Client): Promise<Message> {
  return new Promise((resolve) => chat.once('messageAdded', resolve));
}

async function main(): Promise<void> {
  // Production apps pin the AppKey in their configuration; the demo reads it once from the server.
  const { publicKey } = await json<{ publicKey: string }>('/v1/app-key');
  const keyDir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-example-'));
  const run = Date.now().toString(36);
  const [aliceId, bobId] = [`alice-${run}`, `bob-${run}`];

  const users = await Promise.all(
    [aliceId, bobId].map(async (identity) => {
      const token = await signIn(identity);
      const e2ee = await E2EEClient.create({
        serverUrl,
        getAuthToken: () => token,
        appPublicKeys: [publicKey],
        keyStore: new FileKeyStore(join(keyDir, `${identity}.json`)),
        deviceName: `${identity}'s laptop`,
      });
      const card = await e2ee.register();
      console.log(`${identity}: device registered, card ${card.id.slice(0, 16)}…`);
      return { identity, e2ee, chat: await e2ee.connect() };
    }),
  );
  const [alice, bob] = users as [(typeof users)[0], (typeof users)[0]];

  const conversation = await alice.chat.createConversation({ friendlyName: 'example' });
  await conversation.join();
  const bobJoined = new Promise((resolve) => bob.chat.once('conversationAdded', resolve));
  await conversation.add(bob.identity);
  await bobJoined;

  let received = nextMessage(bob.chat);
  await conversation.sendMessage('Hi Bob, this is end-to-end encrypted.');
  let message = await received;
  console.log(`bob got:   "${message.body}" [${message.e2ee?.status}]`);

  received = nextMessage(alice.chat);
  await (await bob.chat.getConversationBySid(conversation.sid)).sendMessage('Hi Alice, received and verified.');
  message = await received;
  console.log(`alice got: "${message.body}" [${message.e2ee?.status}]`);

  let failures = 0;
  for (const user of [alice, bob]) {
    const page = await (await user.chat.getConversationBySid(conversation.sid)).getMessages(10);
    for (const m of page.items) {
      console.log(`${user.identity} reads #${m.index} from ${m.author}: "${m.body}" [${m.e2ee?.status}, ${m.e2ee?.via}]`);
      if (m.e2ee?.status !== 'verified') failures++;
    }
    console.log(`${user.identity}: safety number with the other side ${await user.e2ee?.safetyNumber(user === alice ? bob.identity : alice.identity)}`);
  }
  for (const user of users) await user.chat.shutdown();
  if (failures > 0) throw new Error(`${failures} message(s) did not verify`);
  console.log('all messages decrypted and verified');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
