/**
 * A removed message leaves the organization history, in local mode: the author removes it through
 * the local relay (the SDK's `message.remove()`), and a support agent or a new device reading
 * history afterwards does not get it, also when a backup of it was being stored at that moment.
 * A real server listening on loopback: the relay over its WebSocket, backups and history reads
 * through the HTTP routes, cards registered through POST /v1/cards. (Twilio mode: twilio.test.ts.)
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalConversationsClient, type LocalConversation, type LocalMessage } from '../../client/node.js';
import { ApiPath, type HistoryResponse } from '../../shared/index.js';
import { errorCode, session, uid, type TestUser } from '../support/app.js';
import { backupOf, historyServer, openHistory, postHistory, readHistory, seal, withDevice, type HistoryServer, type Member } from '../support/history.js';
import { holdNextPut } from '../support/hold.js';

let server: HistoryServer;
/** The listening server's host, so the relay URL the token route answers is the real one. */
let host: string;
const relayClients: LocalConversationsClient[] = [];

beforeAll(async () => {
  server = await historyServer();
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  host = `127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const client of relayClients) await client.shutdown();
  await server?.close();
});

const member = async (name: string): Promise<Member> => withDevice(server, await session(server.app, uid(name)));

/** `user`'s session on the relay, with the relay token and URL GET /v1/twilio-token gives it. */
async function onRelay(user: TestUser): Promise<LocalConversationsClient> {
  const res = await server.app.inject({ url: ApiPath.twilioToken, headers: { ...user.headers, host } });
  expect(res.statusCode, res.body).toBe(200);
  const client = await LocalConversationsClient.connect(res.json<{ relayUrl: string; token: string }>());
  relayClients.push(client);
  return client;
}

/** Alice's conversation on the relay, with bob and a support agent in it. */
async function supportChat() {
  const [alice, bob, agent] = await Promise.all([member('alice'), member('bob'), member('agent')]);
  const conversation = await (await onRelay(alice)).createConversation({ friendlyName: 'support' });
  await conversation.join();
  await conversation.add(bob.identity);
  await conversation.add(agent.identity);
  return { alice, bob, agent, conversation };
}

/** Alice sends `body` through the relay; the message as her session holds it, and her backup of it. */
async function send(conversation: LocalConversation, alice: Member, bob: Member, body: string) {
  const sealed = seal(alice, conversation.sid, body, [bob]);
  const index = await conversation.sendMessage(sealed.text);
  const message = (await conversation.getMessages(1, index, 'forward')).items[0] as LocalMessage;
  expect(message.index).toBe(index);
  return { message, backup: backupOf(message, conversation.sid, sealed, server.orgCard!) };
}

/** The bodies `reader` gets from history, each opened and verified against alice's card. */
async function historyBodies(reader: Member, conversationSid: string, alice: Member): Promise<string[]> {
  const res = await readHistory(server.app, reader, conversationSid, { cardId: reader.card.id });
  expect(res.statusCode, res.body).toBe(200);
  return openHistory(res.json<HistoryResponse>().messages, reader, conversationSid, [alice.card]);
}

describe('a message removed through the local relay', () => {
  it('leaves history: the support agent and a new device of bob read only the messages that remain', async () => {
    const { alice, bob, agent, conversation } = await supportChat();
    const first = await send(conversation, alice, bob, 'my card number, oops');
    const second = await send(conversation, alice, bob, 'please call me back');
    for (const { backup } of [first, second]) expect((await postHistory(server.app, alice, backup)).statusCode).toBe(201);
    expect(await historyBodies(agent, conversation.sid, alice)).toEqual(['my card number, oops', 'please call me back']);

    await first.message.remove();
    expect(await historyBodies(agent, conversation.sid, alice)).toEqual(['please call me back']);
    const bobsNewDevice = await withDevice(server, bob);
    expect(await historyBodies(bobsNewDevice, conversation.sid, alice)).toEqual(['please call me back']);
    // A late backup of the removed message (an outbox retry) stores nothing.
    const late = await postHistory(server.app, bob, first.backup);
    expect(late.statusCode).toBe(404);
    expect(errorCode(late)).toBe('NOT_FOUND');
    expect(await historyBodies(agent, conversation.sid, alice)).toEqual(['please call me back']);
  });

  it('leaves no copy from a backup that checked the message before the removal and stored it after (404 NOT_FOUND)', async () => {
    const { alice, bob, agent, conversation } = await supportChat();
    const { message, backup } = await send(conversation, alice, bob, 'unsent at once');
    const held = holdNextPut(server.store);
    const posting = postHistory(server.app, alice, backup);
    await held.reached; // the backup has checked the message, signature and all, and is about to store it
    await message.remove();
    held.release();
    const res = await posting;
    expect(res.statusCode, res.body).toBe(404);
    expect(errorCode(res)).toBe('NOT_FOUND');
    expect(await historyBodies(agent, conversation.sid, alice)).toEqual([]);
  });

  it('DELETE of a copy whose message the relay still holds is refused (409 MESSAGE_NOT_REMOVED)', async () => {
    const { alice, bob, agent, conversation } = await supportChat();
    const { message, backup } = await send(conversation, alice, bob, 'still here');
    expect((await postHistory(server.app, alice, backup)).statusCode).toBe(201);
    const res = await server.app.inject({ method: 'DELETE', url: ApiPath.historyMessage(conversation.sid, message.sid), headers: alice.headers });
    expect(res.statusCode).toBe(409);
    expect(errorCode(res)).toBe('MESSAGE_NOT_REMOVED');
    expect(await historyBodies(agent, conversation.sid, alice)).toEqual(['still here']);
  });
});
