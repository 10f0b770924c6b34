/**
 * Refusals that need participants the local relay cannot have (SMS, WhatsApp): a stand-in for
 * Twilio's conversation at the edge we cannot reach, around the real client and server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { E2EEError, type BaseClient, type BaseConversation, type BaseParticipant } from '../../client/index.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
beforeAll(async () => {
  server = await startLoopbackServer();
});
afterAll(async () => {
  await server?.close();
});

/** A Twilio-like conversation with the given participants; records what would have been sent. */
function twilioConversation(participants: BaseParticipant[], sent: string[]): BaseConversation {
  return {
    sid: 'CH00000000000000000000000000000001',
    uniqueName: null,
    friendlyName: null,
    createdBy: 'alice',
    attributes: {},
    dateCreated: new Date(),
    join: async () => undefined,
    add: async () => undefined,
    getParticipants: async () => participants,
    sendMessage: async (body: string) => sent.push(body),
    getMessages: async () => ({ items: [], hasNextPage: false, hasPrevPage: false, nextPage: async () => Promise.reject(), prevPage: async () => Promise.reject() }),
    on: () => undefined,
    removeListener: () => undefined,
  };
}

function twilioClient(conversation: BaseConversation): BaseClient {
  return {
    connectionState: 'connected',
    createConversation: async () => conversation,
    getConversationBySid: async () => conversation,
    getSubscribedConversations: async () => ({ items: [conversation], hasNextPage: false, hasPrevPage: false, nextPage: async () => Promise.reject(), prevPage: async () => Promise.reject() }),
    updateToken: async () => undefined,
    shutdown: async () => undefined,
    on: () => undefined,
    removeListener: () => undefined,
  };
}

it('refuses to send into a conversation with an SMS participant, naming it, and sends nothing', async () => {
  const alice = await device(server, 'alice');
  await alice.register();
  const sent: string[] = [];
  const chat = alice.wrap(
    twilioClient(
      twilioConversation(
        [
          { sid: 'MB1', identity: 'alice', type: 'chat' },
          { sid: 'MB2', identity: null, type: 'sms' },
        ],
        sent,
      ),
    ),
  );
  const conversation = await chat.getConversationBySid('CH00000000000000000000000000000001');
  const error = await conversation.sendMessage('hello').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(E2EEError);
  expect((error as E2EEError).code).toBe('NON_CHAT_PARTICIPANT');
  expect((error as E2EEError).details).toEqual({ participants: ['MB2'] });
  expect(sent).toEqual([]);
});

it('refuses media and other non-text bodies', async () => {
  const alice = await device(server, 'alice2');
  await alice.register();
  const sent: string[] = [];
  const chat = alice.wrap(twilioClient(twilioConversation([{ sid: 'MB1', identity: 'alice2', type: 'chat' }], sent)));
  const conversation = await chat.getConversationBySid('CH00000000000000000000000000000001');
  const error = await conversation.sendMessage({ contentType: 'image/png', media: 'x' } as unknown as string).catch((e: unknown) => e);
  expect((error as E2EEError).code).toBe('UNSUPPORTED_CONTENT');
  expect(sent).toEqual([]);
  // A text body to oneself only works, sealed for one's own device.
  await conversation.sendMessage('note to self');
  expect(sent).toHaveLength(1);
  expect(sent[0]!.startsWith('e2ee1.')).toBe(true);
});
