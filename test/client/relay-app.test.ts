/**
 * The compile-test chat app (drop-in-app/chat-app.ts, written only against the SDK's types) run
 * on wrapped clients of the local relay (`e2ee.connect()` on a loopback server): its screens
 * render the decrypted bodies, its handlers get verified messages, its calls resolve, and what
 * the relay cannot do (media, pushes, profiles, notification levels) is refused with a code the
 * app can branch on, nothing sent or stored.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eeInfo, type E2EEClient } from '../../client/index.js';
import { nextEvents } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';
import {
  attachmentLinks,
  catchUpTo,
  ChatApp,
  type ChatUi,
  conversationInfo,
  type ConversationView,
  enablePush,
  MessageActions,
  messageInfo,
  readdress,
  templateNames,
} from './drop-in-app/chat-app.js';
import { showTrust } from './drop-in-app/wrapped.js';

/** What the app showed, in order. */
class RecordingUi implements ChatUi {
  readonly lines: string[] = [];
  readonly statuses: string[] = [];
  readonly badges: Array<[number, string]> = [];
  line(text: string): void {
    this.lines.push(text);
  }
  status(text: string): void {
    this.statuses.push(text);
  }
  badge(index: number, text: string): void {
    this.badges.push([index, text]);
  }
}

/** Whether a shown line matches, the message time aside (`<time>` in `pattern` stands for it). */
const shows = (lines: string[], pattern: string): boolean => {
  const escaped = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('<time>', '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z');
  return lines.some((line) => new RegExp(`^${escaped}$`).test(line));
};
const code = async (attempt: Promise<unknown>): Promise<unknown> => ((await attempt.then(() => 'resolved', (e: unknown) => e)) as { code?: unknown }).code ?? 'resolved';

let server: LoopbackServer;
let alice: E2EEClient;
let bob: E2EEClient;
let aliceChat: Client;
let bobChat: Client;
const aliceUi = new RecordingUi();
const bobUi = new RecordingUi();
let aliceApp: ChatApp;
let bobApp: ChatApp;
let aliceView: ConversationView;
let bobView: ConversationView;
/** Every text the app sent: none may reach the relay's store in the clear. */
const texts: string[] = [];

beforeAll(async () => {
  server = await startLoopbackServer();
  alice = await device(server, 'alice', { cardCacheTtlMs: 0 });
  bob = await device(server, 'bob', { cardCacheTtlMs: 0 });
  [aliceChat, bobChat] = await Promise.all([alice.connect(), bob.connect()]);
  aliceApp = new ChatApp(aliceChat, aliceUi).start();
  bobApp = new ChatApp(bobChat, bobUi).start();
  showTrust(bobChat, bobUi);
});

afterAll(async () => {
  await aliceApp?.stop();
  await bobApp?.stop();
  await server?.close();
});

async function storedBodies(conversationSid: string): Promise<string[]> {
  return (await server.store.messages(conversationSid, { direction: 'forward', limit: 100 })).map((m) => m.body);
}

describe('the chat app on the local relay', () => {
  it('starts a conversation: the invitee sees it added; both list it', async () => {
    expect(aliceApp.connected).toBe(true);
    aliceView = await aliceApp.startConversation('Launch plans', ['bob']);
    await expect.poll(() => bobUi.lines).toContain('+ Launch plans');
    expect(bobUi.statuses).toContain('joined Launch plans');
    expect((await aliceApp.conversations()).map((c) => c.sid)).toEqual([aliceView.conversation.sid]);
    expect((await bobApp.conversations()).map((c) => c.sid)).toEqual([aliceView.conversation.sid]);
    expect(aliceView.title()).toBe('Launch plans by alice');
  });

  it('sends sealed; the open view renders the decrypted body, the other handler gets it verified', async () => {
    await aliceView.open();
    expect(aliceUi.statuses).toContain('Launch plans by alice: 0 messages, 0 unread');
    const trusted = nextEvents<Message>(bobChat, 'messageAdded');
    texts.push('the launch is on tuesday');
    expect(await aliceView.send('the launch is on tuesday')).toBe(0);
    const [received] = await trusted;
    expect(e2eeInfo(received!).status).toBe('verified');
    await expect.poll(() => shows(aliceUi.lines, '#0 alice <time>: the launch is on tuesday')).toBe(true);
    await expect.poll(() => bobUi.badges).toContainEqual([0, '🔒']);
    expect(bobUi.statuses).toContain('new message in Launch plans');
    const [stored] = await storedBodies(aliceView.conversation.sid);
    expect(stored!.startsWith('e2ee1.')).toBe(true);
  });

  it("the other side opens it: history rendered decrypted, counts, read state reaching the sender's participants panel", async () => {
    await aliceView.participants.render();
    expect(aliceUi.lines).toEqual(expect.arrayContaining(['alice (chat, member, away, read up to -)', 'bob (chat, member, away, read up to -)']));
    expect(aliceUi.statuses).toContain('2 participants in Launch plans');

    bobView = await bobApp.openBySid(aliceView.conversation.sid);
    const history = await bobView.open();
    expect(shows(bobUi.lines, '#0 alice <time>: the launch is on tuesday')).toBe(true);
    expect(bobUi.statuses).toContain('Launch plans by alice: 1 messages, 1 unread');
    expect(history.lastIndex).toBe(0);
    expect(await history.older()).toBe(false);
    await bobView.markRead();
    await expect.poll(() => aliceUi.statuses).toContain('bob read up to 0');
    expect(await bobView.conversation.getUnreadMessagesCount()).toBe(0);
  });

  it('the builder sends sealed; a file named with a path is refused before anything is sent', async () => {
    texts.push('sounds good');
    expect(await bobView.sendQuick('sounds good')).toBe(1);
    await expect.poll(() => shows(aliceUi.lines, '#1 bob <time>: sounds good')).toBe(true);
    const before = await storedBodies(aliceView.conversation.sid);
    texts.push('the deck');
    // Files go encrypted (test/client/attachments.test.ts); a name that could steer a save path never leaves.
    const file = { name: '../deck.pdf', type: 'application/pdf', bytes: Buffer.from('%PDF the deck') };
    expect(await code(aliceView.sendFile('the deck', file))).toBe('INVALID_ARGUMENT');
    expect(await storedBodies(aliceView.conversation.sid)).toEqual(before);
  });

  it("message actions: the author's edit and reaction reach the other side decrypted; others may not edit; info and sender resolve", async () => {
    const find = async (conversation: Conversation, index: number) => (await conversation.getMessages(10)).items.find((m) => m.index === index)!;
    const bobsCopy = await find(bobView.conversation, 0);
    const bobActions = new MessageActions(bobsCopy, bobUi);
    const aliceActions = new MessageActions(await find(aliceView.conversation, 0), aliceUi);

    texts.push('the launch is on wednesday');
    await aliceActions.edit('the launch is on wednesday');
    await expect.poll(() => shows(bobUi.lines, 'edited: #0 alice (edited by alice) <time>: the launch is on wednesday')).toBe(true);
    expect(shows(bobUi.lines, '#0 alice (edited by alice) <time>: the launch is on wednesday')).toBe(true); // the message's own updated event
    expect(bobsCopy.body).toBe('the launch is on wednesday');
    expect(e2eeInfo(bobsCopy).status).toBe('verified');

    await aliceActions.react('🎉');
    await expect.poll(() => bobsCopy.attributes).toMatchObject({ reaction: '🎉' });
    expect(e2eeInfo(bobsCopy).status).toBe('verified');
    expect(await code(bobActions.edit('bob was here'))).toBe('NOT_MESSAGE_AUTHOR');

    expect(await bobActions.sender()).toBe('alice (alice) in Launch plans');
    expect(bobActions.isMedia).toBe(false);
    expect(await attachmentLinks(bobsCopy)).toEqual([]);
    expect(await messageInfo(bobsCopy)).toEqual([
      'text',
      'delivered: not tracked, 0 receipts, 0 recipients',
      'email body: none, history: none',
      'media: 0',
      'content: none, channel: none',
    ]);

    await aliceActions.delete();
    await expect.poll(() => bobUi.badges).toContainEqual([0, 'deleted']);
  });

  it('conversation settings: rename, pin, a new address, read up to; the info panel; muting is refused', async () => {
    await aliceView.rename('Launch (moved)');
    await expect.poll(() => bobUi.lines).toContain('renamed: Launch (moved)');
    expect(bobUi.statuses.some((s) => s.startsWith('Launch (moved): friendlyName changed 20'))).toBe(true);
    await aliceView.pin(1);
    await expect.poll(() => bobView.conversation.attributes).toEqual({ topic: 'Launch plans', pinned: 1 });

    expect(await readdress(aliceView.conversation, 'launch-room')).toBe('launch-room');
    expect((await bobApp.openByName('launch-room')).conversation).toBe(bobView.conversation);
    const another = await aliceChat.createConversation({ friendlyName: 'another' });
    expect(await code(readdress(another, 'launch-room'))).toBe('CONFLICT');
    expect(await catchUpTo(bobView.conversation, 1)).toBe(0);

    const info = await conversationInfo(bobView.conversation);
    expect(info.slice(1)).toEqual([
      '1 messages, 2 participants, newest #1',
      'attachments: 10 of 150 MB, email bodies: none',
      'notifications: default, email: none, sms: none',
      '0 email or SMS recipients',
    ]);
    expect(info[0]).toMatch(/^active since 20/);
    expect(await code(bobView.mute())).toBe('RELAY_UNSUPPORTED');
  });

  it('participants: invite with attributes and kick; a participant promotes itself and the others see it', async () => {
    await aliceView.participants.invite('carol');
    await expect.poll(() => bobUi.lines).toContain('carol joined');
    expect((await server.store.getParticipant(aliceView.conversation.sid, 'carol'))?.attributes).toBe('{"role":"member"}');
    await aliceView.participants.kick('carol');
    await expect.poll(() => bobUi.lines).toContain('carol left');

    const promoted = await bobView.participants.promote('bob');
    expect(promoted?.attributes).toEqual({ role: 'moderator', promotedIn: bobView.conversation.sid });
    await expect.poll(() => aliceUi.statuses).toContain('bob updated');
  });

  it('users: the profile lists this user and those watched; renaming a profile is refused', async () => {
    // Bob is watched since the participants panel showed him.
    expect(await aliceApp.profile()).toEqual(['alice: -', 'bob: -']);
    expect(aliceUi.statuses).toContain('watching bob');
    expect((await aliceApp.contact('carol')).isSubscribed).toBe(true);
    expect(aliceUi.statuses).toContain('watching carol');
    expect(await aliceApp.profile()).toEqual(['alice: -', 'bob: -', 'carol: -']);
    expect(await code(aliceApp.rename('Alice'))).toBe('RELAY_UNSUPPORTED');
    expect(await templateNames(aliceChat)).toEqual([]);
    expect(await code(enablePush(aliceChat, 'fcm-token'))).toBe('RELAY_UNSUPPORTED');
  });

  it('leaving: a preview of a joined conversation does not join again; the leaver sees it removed, the others see it leave', async () => {
    const preview = await bobApp.preview(bobView.conversation.sid);
    expect(preview.conversation).toBe(bobView.conversation);
    expect(await bobView.leave()).toBe(bobView.conversation);
    await expect.poll(() => bobUi.lines).toContain('- Launch (moved)');
    expect(bobUi.statuses).toContain(`${bobView.conversation.sid} was removed`);
    await expect.poll(() => aliceUi.lines).toContain('bob left');
    expect(bobView.conversation.status).toBe('notParticipating');
    expect(await bobView.leave()).toBe(bobView.conversation); // not a participant: nothing to leave
    expect(await bobApp.conversations()).toEqual([]);
  });

  it('the relay stored none of the texts in the clear', async () => {
    const dump = JSON.stringify([await storedBodies(aliceView.conversation.sid), await server.store.history(aliceView.conversation.sid, -1, 100)]);
    for (const text of texts) expect(dump).not.toContain(text);
  });
});
