import type { Client, Conversation } from '@twilio/conversations';
import type { E2EEClient } from '../../client/node.js';
import { nextEvents } from './concurrency.js';
import type { CloudClient, ConversationsCloud } from './conversations-cloud.js';

export interface RealSdkPair {
  /** The real SDK Clients, as the cloud made them (unwrapped). */
  sdks: [CloudClient, CloudClient];
  aliceChat: Client;
  bobChat: Client;
  /** The conversation alice made, as each side's client announced it. */
  atAlice: Conversation;
  atBob: Conversation;
}

/**
 * Two real SDK Clients of `cloud`, wrapped by `alice` and `bob` and connected, in one conversation
 * named `friendlyName` that alice made, joined and added bob to.
 */
export async function realSdkPair(cloud: ConversationsCloud, alice: E2EEClient, bob: E2EEClient, friendlyName: string): Promise<RealSdkPair> {
  const sdks: [CloudClient, CloudClient] = [cloud.client(alice.identity), cloud.client(bob.identity)];
  const aliceChat = alice.wrap(sdks[0].client);
  const bobChat = bob.wrap(sdks[1].client);
  await Promise.all(sdks.map((sdk) => sdk.connect()));
  const atAlice = await aliceChat.createConversation({ friendlyName });
  const aliceJoined = nextEvents<Conversation>(aliceChat, 'conversationJoined');
  await atAlice.join();
  await aliceJoined;
  const bobJoined = nextEvents<Conversation>(bobChat, 'conversationJoined');
  await atAlice.add(bob.identity);
  const [atBob] = (await bobJoined) as [Conversation];
  return { sdks, aliceChat, bobChat, atAlice, atBob };
}
