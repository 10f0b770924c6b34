/**
 * The honest path of the recipient audit and gossip (issue 16): a week of ordinary use, simulated
 * day by day against the real server and store (devices approved and revoked, people joining,
 * leaving and coming back, a second conversation, a newcomer reading history, the log growing
 * all along) raises no directory alert on any device, and every message shows verified.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PendingDevice } from '../../shared/index.js';
import { nextEvents, sleep, waitFor } from '../support/concurrency.js';
import { DirectoryScript, type Pinned } from '../support/directory-attacks.js';
import { startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

let server: LoopbackServer;
let script: DirectoryScript;

beforeAll(async () => {
  server = await startLoopbackServer({ env: { NEW_DEVICE_POLICY: 'approval' } });
  script = await DirectoryScript.on(server);
});

afterAll(async () => {
  for (const chat of script?.chats ?? []) await chat.shutdown().catch(() => undefined);
  await server?.close();
});

interface Person extends Pinned {
  chat: Client;
  /** Every message shown to this device, by conversation sid. */
  shown: Message[];
}

describe('a week of ordinary use', () => {
  it('raises no alert on any device, and shows every message verified', async () => {
    const everyone: Person[] = [];
    const join = async (pinned: Pinned): Promise<Person> => {
      const chat = await script.connect(pinned.client);
      const person: Person = { ...pinned, chat, shown: [] };
      chat.on('messageAdded', (m: Message) => person.shown.push(m));
      everyone.push(person);
      return person;
    };
    const newUser = async (name: string) => join(await script.pinned(script.name(name), { monitorIntervalMs: 1000 }));
    /** A further device of `owner`'s identity, approved on `owner`. */
    const newDevice = async (owner: Person) => {
      const added = await script.pinned(owner.client.identity, { monitorIntervalMs: 1000 });
      const pending = nextEvents<PendingDevice>(added.client, 'deviceApprovalPending');
      const registering = added.client.register({ approvalPollMs: 20 });
      await owner.client.approveDevice((await pending)[0]!.cardId);
      await registering;
      return join(added);
    };
    const conversationOf = async (person: Person, sid: string): Promise<Conversation> => person.chat.getConversationBySid(sid);
    let sent = 0;
    const say = async (person: Person, sid: string) => {
      await (await conversationOf(person, sid)).sendMessage(`message ${++sent} from ${person.client.identity}`);
    };

    const [alice, bob, carol] = [await newUser('alice'), await newUser('bob'), await newUser('carol')];
    const main = await alice.chat.createConversation({ friendlyName: 'team' });
    await main.join();
    await main.add(bob.client.identity);
    await sleep(200);

    // Day 1: bob adds a phone, approved on his desktop; everyone talks.
    const bobPhone = await newDevice(bob);
    await sleep(300);
    await say(alice, main.sid);
    await say(bob, main.sid);
    await say(bobPhone, main.sid);
    // Day 2: carol joins and talks.
    await main.add(carol.client.identity);
    await sleep(200);
    await say(carol, main.sid);
    await say(alice, main.sid);
    // Day 3: carol leaves; alice and bob open a second conversation.
    await main.removeParticipant(carol.client.identity);
    await say(bob, main.sid);
    const side = await alice.chat.createConversation({ friendlyName: 'side' });
    await side.join();
    await side.add(bob.client.identity);
    await sleep(200);
    await say(alice, side.sid);
    await say(bob, side.sid);
    // Day 4: bob removes his phone, in the phone's own settings (revoked from the desktop, the phone would be told: unknown-event).
    await sleep(1100); // revocations are dated in whole seconds: the phone's messages stay before it
    await bobPhone.client.revokeDevice(bobPhone.client.card!.id);
    await sleep(300);
    await say(alice, main.sid);
    await say(bob, side.sid);
    // Day 5: dave, new, joins and reads the history.
    const dave = await newUser('dave');
    await main.add(dave.client.identity);
    await sleep(200);
    const history = await (await conversationOf(dave, main.sid)).getMessages(50);
    expect(history.items.length).toBeGreaterThan(5);
    expect(history.items.filter((m) => m.e2ee?.status !== 'verified').map((m) => `${m.index} ${m.body} ${m.e2ee?.status} ${m.e2ee?.error?.code}`)).toEqual([]);
    await say(dave, main.sid);
    // Day 6: alice adds a tablet; carol comes back.
    const aliceTablet = await newDevice(alice);
    await sleep(300);
    await main.add(carol.client.identity);
    await sleep(200);
    await say(aliceTablet, main.sid);
    await say(carol, main.sid);
    // Day 7: everyone talks once more; monitoring has run several times meanwhile.
    for (const person of [alice, bob, carol, dave]) await say(person, main.sid);
    await say(alice, side.sid);
    await sleep(2200);

    const active = everyone.filter((p) => p !== bobPhone);
    await waitFor(() => active.every((p) => p.shown.every((m) => m.e2ee?.status !== undefined)), 'every message opened');
    expect(everyone.flatMap((p) => p.alerts.map((a) => `${p.client.identity}: ${a.kind} ${a.message}`))).toEqual([]);
    const shown = active.flatMap((p) => p.shown);
    expect(shown.length).toBeGreaterThan(30);
    expect(shown.filter((m) => m.e2ee?.status !== 'verified').map((m) => `${m.body} ${m.e2ee?.error?.code}`)).toEqual([]);
    expect(shown.filter((m) => m.e2ee?.alerts !== undefined)).toEqual([]);
  });
});
