/**
 * A chat app as a team has it before adopting end-to-end encryption: written only against the
 * @twilio/conversations 3 types, with no cast and no `any`. wrapped.ts runs it on a wrapped client
 * by changing one line; test/client/drop-in.types.test.ts type-checks both and counts the SDK
 * members used here. It never runs: what matters is that it compiles.
 */
import {
  Client,
  type ConnectionState,
  type Conversation,
  type ConversationUpdateReason,
  type JSONObject,
  type JSONValue,
  type Media,
  type Message,
  type MessageUpdateReason,
  type Paginator,
  type Participant,
  type PushNotification,
  type User,
} from '@twilio/conversations';

/** Where the app shows things; a web app renders these, a test records them. */
export interface ChatUi {
  line(text: string): void;
  status(text: string): void;
  /** Shows a badge beside message `index` of the open conversation ('' clears it). */
  badge(index: number, text: string): void;
}

/** Gives the app a fresh Twilio access token (from the app's own backend). */
export type TokenSource = () => Promise<string>;

export type MessageHandler = (m: Message) => void;

function isObject(value: JSONValue): value is JSONObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string attribute of a message, participant or conversation, if it has one. */
function stringAttribute(attributes: JSONValue, key: string): string | undefined {
  if (!isObject(attributes)) return undefined;
  const value = attributes[key];
  return typeof value === 'string' ? value : undefined;
}

/** One line of the message list: "#12 alice 2024-05-01T10:00:00.000Z: hi [photo.jpg image/jpeg 2048 B media]". */
export function formatMessage(m: Message): string {
  const edited = m.dateUpdated && m.dateCreated && m.dateUpdated > m.dateCreated ? ` (edited by ${m.lastUpdatedBy ?? m.author})` : '';
  const media = (m.attachedMedia ?? []).map(formatMedia).join(' ');
  const when = m.dateCreated?.toISOString() ?? 'unsent';
  return `#${m.index} ${m.author ?? 'system'}${edited} ${when}: ${m.body ?? ''} ${media}`.trimEnd();
}

export function formatMedia(media: Media): string {
  return `[${media.filename ?? media.sid} ${media.contentType} ${media.size} B ${media.category}]`;
}

/** Links for a message's attachments: one request for all of them, then one per file as a fallback. */
export async function attachmentLinks(m: Message): Promise<string[]> {
  const attached = m.attachedMedia ?? [];
  if (attached.length === 0) return [];
  const urls = await m.getTemporaryContentUrlsForAttachedMedia();
  return Promise.all(attached.map(async (media) => urls.get(media.sid) ?? (await media.getContentTemporaryUrl()) ?? ''));
}

/** A page of history as a component gets it: the SDK's paginator, walked both ways. */
export class HistoryView {
  private page: Paginator<Message>;

  constructor(page: Paginator<Message>, private readonly ui: ChatUi) {
    this.page = page;
  }

  render(): void {
    for (const m of this.page.items) this.ui.line(formatMessage(m));
  }

  async older(): Promise<boolean> {
    if (!this.page.hasPrevPage) return false;
    this.page = await this.page.prevPage();
    this.render();
    return true;
  }

  async newer(): Promise<boolean> {
    if (!this.page.hasNextPage) return false;
    this.page = await this.page.nextPage();
    this.render();
    return true;
  }

  get lastIndex(): number | undefined {
    return this.page.items.at(-1)?.index;
  }
}

/** The participants panel of one conversation. */
export class ParticipantsPanel {
  constructor(private readonly conversation: Conversation, private readonly ui: ChatUi) {}

  async render(): Promise<void> {
    const participants = await this.conversation.getParticipants();
    for (const p of participants) {
      const user = await p.getUser();
      const role = stringAttribute(p.attributes, 'role') ?? 'member';
      const online = p.isTyping ? 'typing' : user.isOnline === true ? 'online' : 'away';
      this.ui.line(`${user.friendlyName ?? p.identity ?? p.sid} (${p.type}, ${role}, ${online}, read up to ${p.lastReadMessageIndex ?? '-'})`);
      p.on('updated', ({ participant, updateReasons }) => {
        if (updateReasons.includes('lastReadMessageIndex')) this.ui.status(`${participant.identity ?? participant.sid} read up to ${participant.lastReadMessageIndex}`);
      });
    }
    this.ui.status(`${participants.length} participants in ${this.conversation.friendlyName ?? this.conversation.sid}`);
  }

  async invite(identity: string): Promise<void> {
    await this.conversation.add(identity, { role: 'member' });
  }

  async promote(identity: string): Promise<Participant | null> {
    const participant = await this.conversation.getParticipantByIdentity(identity);
    if (!participant) return null;
    return participant.updateAttributes({ role: 'moderator', promotedIn: participant.conversation.sid });
  }

  async kick(identity: string): Promise<void> {
    await this.conversation.removeParticipant(identity);
  }
}

/** The open conversation: history, composer, read state and its own events. */
export class ConversationView {
  readonly participants: ParticipantsPanel;
  private history: HistoryView | undefined;

  constructor(readonly conversation: Conversation, private readonly ui: ChatUi, onMessage: MessageHandler) {
    this.participants = new ParticipantsPanel(conversation, ui);
    conversation.on('messageAdded', onMessage);
    conversation.on('messageUpdated', ({ message, updateReasons }) => this.showEdit(message, updateReasons));
    conversation.on('messageRemoved', (m: Message) => ui.badge(m.index, 'deleted'));
    conversation.on('typingStarted', (p: Participant) => ui.status(`${p.identity ?? 'someone'} is typing…`));
    conversation.on('typingEnded', () => ui.status(''));
    conversation.on('participantJoined', (p) => ui.line(`${p.identity ?? p.sid} joined`));
    conversation.on('participantLeft', (p) => ui.line(`${p.identity ?? p.sid} left`));
    conversation.on('participantUpdated', ({ participant }) => ui.status(`${participant.identity ?? participant.sid} updated`));
    conversation.on('updated', ({ conversation: c, updateReasons }) => this.showUpdate(c, updateReasons));
    conversation.on('removed', (c) => ui.status(`${c.sid} was removed`));
  }

  async open(pageSize = 30): Promise<HistoryView> {
    const page = await this.conversation.getMessages(pageSize);
    this.history = new HistoryView(page, this.ui);
    this.history.render();
    const unread = await this.conversation.getUnreadMessagesCount();
    const total = await this.conversation.getMessagesCount();
    this.ui.status(`${this.title()}: ${total} messages, ${unread ?? total} unread`);
    return this.history;
  }

  title(): string {
    const { friendlyName, uniqueName, sid, createdBy } = this.conversation;
    return `${friendlyName ?? uniqueName ?? sid} by ${createdBy}`;
  }

  async send(text: string): Promise<number> {
    await this.conversation.typing();
    return this.conversation.sendMessage(text, { clientId: crypto.randomUUID() });
  }

  /** A message with a file, built step by step as the SDK's builder allows. */
  async sendFile(text: string, file: { name: string; type: string; bytes: Buffer }): Promise<number | null> {
    return this.conversation
      .prepareMessage()
      .setBody(text)
      .setAttributes({ kind: 'file', name: file.name })
      .addMedia({ contentType: file.type, filename: file.name, media: file.bytes })
      .build()
      .send();
  }

  async sendQuick(text: string): Promise<number | null> {
    return this.conversation.prepareMessage().setBody(text).buildAndSend();
  }

  async markRead(): Promise<void> {
    const last = this.history?.lastIndex ?? this.conversation.lastMessage?.index;
    if (last === undefined) await this.conversation.setAllMessagesRead();
    else if ((this.conversation.lastReadMessageIndex ?? -1) < last) await this.conversation.updateLastReadMessageIndex(last);
  }

  async rename(friendlyName: string): Promise<Conversation> {
    return this.conversation.updateFriendlyName(friendlyName);
  }

  async pin(messageIndex: number): Promise<Conversation> {
    const attributes = isObject(this.conversation.attributes) ? this.conversation.attributes : {};
    return this.conversation.updateAttributes({ ...attributes, pinned: messageIndex });
  }

  async mute(): Promise<void> {
    if (this.conversation.notificationLevel !== 'muted') await this.conversation.setUserNotificationLevel('muted');
  }

  async leave(): Promise<Conversation> {
    return this.conversation.status === 'joined' ? this.conversation.leave() : this.conversation;
  }

  private showEdit(m: Message, reasons: MessageUpdateReason[]): void {
    if (reasons.includes('body')) this.ui.line(`edited: ${formatMessage(m)}`);
    if (reasons.includes('attributes')) this.ui.badge(m.index, stringAttribute(m.attributes, 'reaction') ?? '');
  }

  private showUpdate(c: Conversation, reasons: ConversationUpdateReason[]): void {
    this.ui.status(`${c.friendlyName ?? c.sid}: ${reasons.join(', ')} changed ${c.dateUpdated?.toISOString() ?? ''}`);
  }
}

/** Message actions offered in a message's menu. */
export class MessageActions {
  constructor(private readonly m: Message, private readonly ui: ChatUi) {
    m.on('updated', ({ message, updateReasons }) => {
      if (updateReasons.includes('body')) ui.line(formatMessage(message));
    });
  }

  async edit(body: string): Promise<Message> {
    return this.m.updateBody(body);
  }

  async react(reaction: string): Promise<Message> {
    const attributes = isObject(this.m.attributes) ? this.m.attributes : {};
    return this.m.updateAttributes({ ...attributes, reaction });
  }

  async delete(): Promise<void> {
    await this.m.remove();
  }

  /** "alice (Alice Liddell) in Support" for the message's info panel. */
  async sender(): Promise<string> {
    if (this.m.participantSid === null) return this.m.author ?? 'system';
    const participant = await this.m.getParticipant();
    const user: User = await participant.getUser();
    return `${participant.identity ?? this.m.author ?? ''} (${user.friendlyName ?? user.identity}) in ${this.m.conversation.friendlyName ?? this.m.conversation.sid}`;
  }

  get isMedia(): boolean {
    return this.m.type === 'media';
  }
}

/** The app: takes a connected Client, wires its events and offers what the screens call. */
export class ChatApp {
  private open: ConversationView | undefined;

  constructor(private readonly client: Client, private readonly ui: ChatUi, private readonly fetchToken?: TokenSource) {}

  start(): this {
    const { client, ui } = this;
    const onMessage: MessageHandler = (m) => {
      if (m.conversation.sid === this.open?.conversation.sid) ui.line(formatMessage(m));
      else ui.status(`new message in ${m.conversation.friendlyName ?? m.conversation.sid}`);
    };
    client.on('initialized', () => ui.status(`signed in as ${client.user.identity}`));
    client.on('initFailed', ({ error }) => ui.status(`sign-in failed: ${error?.message ?? 'unknown'}`));
    client.on('stateChanged', (state) => ui.status(state === 'initialized' ? 'ready' : 'failed'));
    client.on('connectionStateChanged', (state: ConnectionState) => ui.status(`connection ${state}`));
    client.on('connectionError', ({ terminal, message }) => ui.status(`${terminal ? 'disconnected' : 'reconnecting'}: ${message}`));
    client.on('tokenAboutToExpire', () => void this.refreshToken());
    client.on('tokenExpired', () => void this.refreshToken());
    client.on('messageAdded', onMessage);
    client.on('messageUpdated', ({ message, updateReasons }) => ui.badge(message.index, updateReasons.join(',')));
    client.on('messageRemoved', (m) => ui.badge(m.index, 'deleted'));
    client.on('conversationAdded', (c) => ui.line(`+ ${c.friendlyName ?? c.sid}`));
    client.on('conversationJoined', (c) => ui.status(`joined ${c.friendlyName ?? c.sid}`));
    client.on('conversationLeft', (c) => ui.status(`left ${c.friendlyName ?? c.sid}`));
    client.on('conversationRemoved', (c) => ui.line(`- ${c.friendlyName ?? c.sid}`));
    client.on('conversationUpdated', ({ conversation, updateReasons }) => {
      if (updateReasons.includes('friendlyName')) ui.line(`renamed: ${conversation.friendlyName ?? conversation.sid}`);
    });
    client.on('participantJoined', (p) => ui.status(`${p.identity ?? p.sid} joined ${p.conversation.sid}`));
    client.on('participantLeft', (p) => ui.status(`${p.identity ?? p.sid} left ${p.conversation.sid}`));
    client.on('participantUpdated', ({ participant }) => ui.status(`${participant.identity ?? participant.sid} updated`));
    client.on('typingStarted', (p) => ui.status(`${p.identity ?? 'someone'} is typing in ${p.conversation.sid}`));
    client.on('typingEnded', () => ui.status(''));
    client.on('userUpdated', ({ user, updateReasons }) => {
      if (updateReasons.includes('reachabilityOnline')) ui.status(`${user.friendlyName ?? user.identity} is ${user.isOnline ? 'online' : 'offline'}`);
    });
    client.on('userSubscribed', (user) => ui.status(`watching ${user.identity}`));
    client.on('userUnsubscribed', (user) => ui.status(`stopped watching ${user.identity}`));
    client.on('pushNotification', (push: PushNotification) => this.notify(push));
    return this;
  }

  get connected(): boolean {
    return this.client.connectionState === 'connected';
  }

  /** The conversation list, every page of it. */
  async conversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let page: Paginator<Conversation> = await this.client.getSubscribedConversations();
    all.push(...page.items);
    while (page.hasNextPage) {
      page = await page.nextPage();
      all.push(...page.items);
    }
    return all;
  }

  async openBySid(sid: string): Promise<ConversationView> {
    return this.show(await this.client.getConversationBySid(sid));
  }

  async openByName(uniqueName: string): Promise<ConversationView> {
    return this.show(await this.client.getConversationByUniqueName(uniqueName));
  }

  /** A public conversation the user has not joined: look, then join. */
  async preview(sid: string): Promise<ConversationView> {
    const conversation = await this.client.peekConversationBySid(sid);
    return this.show(conversation.status === 'joined' ? conversation : await conversation.join());
  }

  async startConversation(friendlyName: string, invitees: string[]): Promise<ConversationView> {
    const conversation = await this.client.createConversation({
      friendlyName,
      uniqueName: `${friendlyName.toLowerCase().replace(/\W+/g, '-')}-${Date.now()}`,
      attributes: { topic: friendlyName },
    });
    await conversation.join();
    for (const identity of invitees) await conversation.add(identity);
    return this.show(conversation);
  }

  /** The profile screen: the signed-in user and the users the app watches. */
  async profile(): Promise<string[]> {
    const me = this.client.user;
    me.on('updated', ({ user, updateReasons }) => this.ui.status(`profile ${updateReasons.join(',')}: ${user.friendlyName ?? ''}`));
    const watched = await this.client.getSubscribedUsers();
    return [me, ...watched].map((u) => `${u.identity}: ${u.friendlyName ?? '-'} ${stringAttribute(u.attributes, 'title') ?? ''}`.trimEnd());
  }

  async rename(friendlyName: string): Promise<User> {
    return this.client.user.updateFriendlyName(friendlyName);
  }

  async contact(identity: string): Promise<User> {
    const user = await this.client.getUser(identity);
    if (!user.isSubscribed) this.ui.status(`${identity} is not watched`);
    return user;
  }

  async stop(): Promise<void> {
    await this.client.shutdown();
  }

  private show(conversation: Conversation): ConversationView {
    this.open = new ConversationView(conversation, this.ui, (m) => this.ui.badge(m.index, 'new'));
    return this.open;
  }

  private notify(push: PushNotification): void {
    const sid = push.data.conversationSid;
    this.ui.status(`${push.title ?? 'New message'}: ${push.body ?? ''}${sid ? ` (${sid})` : ''}`);
  }

  private async refreshToken(): Promise<void> {
    if (!this.fetchToken) return;
    await this.client.updateToken(await this.fetchToken());
  }
}

/** How the app starts: the only place it builds a Client. */
export function startChat(token: string, ui: ChatUi, fetchToken?: TokenSource): ChatApp {
  const client = new Client(token);
  return new ChatApp(client, ui, fetchToken).start();
}

/** The conversation's info panel: what the service says about it beside its messages. */
export async function conversationInfo(conversation: Conversation): Promise<string[]> {
  const { limits, state, bindings, lastMessage, notificationLevel } = conversation;
  const recipients = await conversation.getMessageRecipients();
  const [messages, participants] = [await conversation.getMessagesCount(), await conversation.getParticipantsCount()];
  return [
    `${state?.current ?? 'unknown'} since ${state?.dateUpdated.toISOString() ?? '-'}`,
    `${messages} messages, ${participants} participants, newest #${lastMessage?.index ?? '-'}`,
    `attachments: ${limits.mediaAttachmentsCountLimit} of ${limits.mediaAttachmentSizeLimitInMb} MB, email bodies: ${limits.emailBodiesAllowedContentTypes.join(', ') || 'none'}`,
    `notifications: ${notificationLevel}, email: ${bindings.email?.projected_address ?? 'none'}, sms: ${bindings.sms?.address ?? 'none'}`,
    `${recipients.items.length} email or SMS recipients`,
  ];
}

/** A message's info panel: delivery, recipients and what the service keeps beside its body. */
export async function messageInfo(m: Message): Promise<string[]> {
  const receipts = await m.getDetailedDeliveryReceipts();
  const recipients = await m.getMessageRecipients();
  const content = await m.getContentData();
  const channel = await m.getChannelMetadata();
  return [
    `${m.type}${m.subject === null ? '' : ` "${m.subject}"`}${m.contentSid === null ? '' : ` from template ${m.contentSid}`}`,
    `delivered: ${m.aggregatedDeliveryReceipt?.delivered ?? 'not tracked'}, ${receipts.length} receipts, ${recipients.length} recipients`,
    `email body: ${m.getEmailBody()?.filename ?? 'none'}, history: ${m.getEmailHistory('text/html')?.filename ?? 'none'}`,
    `media: ${(m.getMediaByCategories(['media']) ?? []).length}${m.media ? `, first ${formatMedia(m.media)}` : ''}`,
    `content: ${content?.type ?? 'none'}, channel: ${channel?.type ?? 'none'}`,
  ];
}

/** Gives a conversation another address (its unique name), or none; resolves with the one it has. */
export async function readdress(conversation: Conversation, uniqueName: string | null): Promise<string | null> {
  return (await conversation.updateUniqueName(uniqueName)).uniqueName;
}

/** Marks messages read up to `index`, never back; resolves with the unread count. */
export async function catchUpTo(conversation: Conversation, index: number): Promise<number> {
  return conversation.advanceLastReadMessageIndex(index);
}

/** The templates offered in the composer. */
export async function templateNames(client: Client): Promise<string[]> {
  return (await client.getContentTemplates()).map((t) => t.friendlyName);
}

/** Registers this browser for push notifications with its FCM token. */
export async function enablePush(client: Client, fcmToken: string): Promise<void> {
  await client.setPushRegistrationId('fcm', fcmToken);
}
