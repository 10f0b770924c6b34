/**
 * Compile-time proof that the real @twilio/conversations 3 types satisfy the interfaces the
 * wrapper needs, so `e2ee.wrap(new Client(token))` type-checks. `npm test` runs tsc over this
 * file first; a mismatch fails the build, not just this test.
 */
import type { Client, Conversation, Message, Paginator, Participant } from '@twilio/conversations';
import { expectTypeOf, test } from 'vitest';
import type { BaseClient, BaseConversation, BaseMessage, BasePaginator, BaseParticipant } from '../../client/conversations.js';
import type { LocalConversationsClient } from '../../client/local/relay-client.js';

type Satisfies<T extends U, U> = T;
export type RealSdkSatisfiesWrapper = [
  Satisfies<Client, BaseClient>,
  Satisfies<Conversation, BaseConversation>,
  Satisfies<Message, BaseMessage>,
  Satisfies<Participant, BaseParticipant>,
  Satisfies<Paginator<Message>, BasePaginator<BaseMessage>>,
  Satisfies<LocalConversationsClient, BaseClient>,
];

test('the real SDK and the local relay client satisfy the wrapper interfaces', () => {
  expectTypeOf<Client>().toExtend<BaseClient>();
  expectTypeOf<Conversation>().toExtend<BaseConversation>();
  expectTypeOf<Message>().toExtend<BaseMessage>();
  expectTypeOf<LocalConversationsClient>().toExtend<BaseClient>();
});
