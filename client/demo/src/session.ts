/**
 * A signed-in user's chat session: the E2EE client (this browser's device), the wrapped
 * conversations client, and the state the views draw: conversations, messages as the wrapper
 * verified them, inline notices (key changes, people joining), connection and session problems.
 * Everything goes through the public API of twilio-e2ee/client.
 */
import type { Client, Conversation, Message } from '@twilio/conversations';
import { E2EEClient, IndexedDbKeyStore, LocalConversationsClient, unwrap, type BackupFailure, type BaseParticipant, type DirectoryAlert, type BasePaginator, type E2EEClientEventMap, type KeyChange, type MessageGap, type OrganizationKeyInfo, type OrgKeyChange, type RejectedCard } from '../../index.js';
import { describeError, type Described } from './errors.js';
import { describeFilesError, FileCache, Transfer, type Upload } from './files.js';
import { isAgent } from './format.js';
import { groupReactions, reactionAttributes, reactionOf, type ReactionGroup } from './reactions.js';
import { prefs, tokenExpiry, type Role, type Session } from './server.js';

export type Card = Awaited<ReturnType<E2EEClient['devices']>>[number];

/** The browser database holding this demo's device keys (one device per identity). */
export const KEY_STORE_NAME = 'twilio-e2ee-demo';

const PAGE_SIZE = 50;
/** Messages fetched for a list preview: enough to find the latest one behind a run of reactions. */
const PREVIEW_SIZE = 20;
const MAX_NOTICES = 50;

/** A line in the timeline that is not a message: a key change, someone joining. */
export interface Notice {
  id: string;
  /** Whose devices or membership it is about. */
  identity: string;
  text: string;
  /** 'bad': a device came and went unseen (a possible stolen sign-in or a dishonest card service). */
  tone: 'info' | 'warn' | 'bad';
  /** Shown after the message with this index (-1: before all). */
  afterIndex: number;
  at: number;
  /** A key change the user may want to check with the safety number. */
  keyChange?: boolean;
}

/** A message being sent (local echo) or that failed to send. */
export interface Pending {
  id: number;
  body: string;
  /** Its files, each with its progress. */
  uploads: Upload[];
  state: 'sending' | 'failed';
  index?: number;
  error?: Described;
}

/** How many of a conversation's loaded messages are in each verification state. */
export interface MessageTally {
  verified: number;
  unencrypted: number;
  failed: number;
}

export class ConversationState {
  /** The messages shown as bubbles, by index. */
  readonly messages = new Map<number, Message>();
  /** Verified reactions, by index: shown under their target, never as bubbles (see reactions.ts). */
  readonly reactions = new Map<number, Message>();
  participants: string[] = [];
  /** Active device count per participant, once looked up (0: no device yet). */
  readonly deviceCounts = new Map<string, number>();
  pending: Pending[] = [];
  notices: Notice[];
  loaded = false;
  loading = false;
  loadError: Described | null = null;
  /** The page before the earliest loaded message, if any. */
  earlier: BasePaginator<Message> | null = null;
  unread = 0;

  constructor(
    public conversation: Conversation,
    private readonly me: string,
  ) {
    this.notices = prefs.get<Notice[]>(this.noticesKey, []);
  }

  get sid(): string {
    return this.conversation.sid;
  }

  private get noticesKey(): string {
    return `notices:${this.me}:${this.sid}`;
  }

  /** The conversation's name, else the other participants' names. */
  get title(): string {
    const name = this.conversation.friendlyName?.trim();
    if (name) return name;
    const others = this.participants.filter((p) => p !== this.me);
    return others.length ? others.join(', ') : 'New conversation';
  }

  /**
   * Files a message under bubbles or reactions (again on each update: an edit can change which);
   * returns whether it is a reaction.
   */
  put(message: Message): boolean {
    this.messages.delete(message.index);
    this.reactions.delete(message.index);
    const reaction = reactionOf(message) !== null;
    (reaction ? this.reactions : this.messages).set(message.index, message);
    return reaction;
  }

  has(index: number): boolean {
    return this.messages.has(index) || this.reactions.has(index);
  }

  get sorted(): Message[] {
    return byIndex(this.messages.values());
  }

  /** Every message, reactions included: what the transport stores. */
  get everything(): Message[] {
    return byIndex([...this.messages.values(), ...this.reactions.values()]);
  }

  /** The reactions to each message, by its sid. */
  get reactionGroups(): Map<string, ReactionGroup[]> {
    return groupReactions(byIndex(this.reactions.values()));
  }

  get last(): Message | null {
    let last: Message | null = null;
    for (const m of this.messages.values()) if (!last || m.index > last.index) last = m;
    return last;
  }

  /** What the loaded messages hold: the header chip says "end-to-end encrypted" only when all are verified. */
  get tally(): MessageTally {
    const tally: MessageTally = { verified: 0, unencrypted: 0, failed: 0 };
    for (const m of this.messages.values()) tally[m.e2ee?.status ?? 'unencrypted']++;
    return tally;
  }

  get lastIndex(): number {
    return this.last?.index ?? -1;
  }

  get lastActivity(): number {
    return this.last?.dateCreated?.getTime() ?? this.conversation.dateCreated?.getTime() ?? 0;
  }

  addNotice(notice: Omit<Notice, 'id' | 'afterIndex' | 'at'>, afterIndex = this.lastIndex): void {
    this.notices.push({ ...notice, id: crypto.randomUUID(), afterIndex, at: Date.now() });
    this.notices = this.notices.slice(-MAX_NOTICES);
    prefs.set(this.noticesKey, this.notices);
  }
}

function byIndex(messages: Iterable<Message>): Message[] {
  return [...messages].sort((a, b) => a.index - b.index);
}

export type ChangeScope = 'list' | 'status' | 'devices' | { sid: string };

export interface Toast {
  tone: 'info' | 'warn' | 'bad';
  text: string;
}

export type ConnectionStatus = 'connecting' | 'online' | 'reconnecting' | 'offline';

type Listener<T> = (value: T) => void;

export class ChatSession {
  readonly conversations = new Map<string, ConversationState>();
  /** Device names by card id, from every card this session has seen. */
  readonly cardNames = new Map<string, string>();
  status: ConnectionStatus = 'connecting';
  browserOnline = navigator.onLine;
  /** A problem that stops the session (expired sign-in, revoked device); the UI blocks on it. */
  problem: Described | null = null;
  /** The last organization-history backup failure, if any. */
  backupProblem: BackupFailure | null = null;
  /** The organization key changed (or matches no pinned key): backups are held until the user accepts it. */
  orgKeyChange: OrgKeyChange | null = null;
  /** The card directory was caught lying (a device of this account no one added, a split log...), not decided yet. */
  directoryAlerts: DirectoryAlert[] = [];
  private readonly changeListeners = new Set<Listener<ChangeScope>>();
  private readonly toastListeners = new Set<Listener<Toast>>();
  private readonly cleanups: Array<() => void> = [];
  private sendSeq = 0;
  private readonly noticedChanges = new Set<string>();
  /** The transfer of each file being sent, by the value handed to addMedia (attachmentProgress names it). */
  private readonly uploading = new Map<unknown, Transfer>();
  /** Files downloaded in this session. */
  readonly files = new FileCache();
  private closed = false;

  private constructor(
    readonly session: Session,
    readonly e2ee: E2EEClient,
    readonly chat: Client,
    readonly keyStore: IndexedDbKeyStore,
  ) {
    this.listen();
  }

  /**
   * Signs in this browser's device: keys from IndexedDB (made on first use), the card
   * registered (or reused), then connected to Twilio or the local relay.
   */
  static async start(session: Session, appPublicKey: string): Promise<ChatSession> {
    const expiry = tokenExpiry(session.token);
    if (expiry !== null && expiry <= Date.now()) throw Object.assign(new Error('session expired'), { expired: true });
    const keyStore = new IndexedDbKeyStore({ name: KEY_STORE_NAME });
    const e2ee = await E2EEClient.create({
      serverUrl: location.origin,
      getAuthToken: () => session.token,
      appPublicKeys: [appPublicKey],
      keyStore,
      deviceName: session.deviceName,
    });
    try {
      await e2ee.register();
      const chat = await e2ee.connect();
      return new ChatSession(session, e2ee, chat, keyStore);
    } catch (err) {
      e2ee.outbox.stop();
      throw err;
    }
  }

  get identity(): string {
    return this.session.identity;
  }

  get role(): Role {
    return this.session.role === 'agent' || isAgent(this.identity) ? 'agent' : 'member';
  }

  /** "local": the relay built into the server; "twilio": real Twilio Conversations. */
  get mode(): 'local' | 'twilio' {
    return unwrap(this.chat) instanceof LocalConversationsClient ? 'local' : 'twilio';
  }

  /** This device's name as registered on its card. */
  get deviceName(): string {
    return this.e2ee.card?.fields.deviceName || 'This browser';
  }

  onChange(listener: Listener<ChangeScope>): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onToast(listener: Listener<Toast>): () => void {
    this.toastListeners.add(listener);
    return () => this.toastListeners.delete(listener);
  }

  private changed(scope: ChangeScope): void {
    for (const l of this.changeListeners) l(scope);
  }

  private toast(toast: Toast): void {
    for (const l of this.toastListeners) l(toast);
  }

  private setProblem(problem: Described): void {
    if (this.problem) return;
    this.problem = problem;
    this.changed('status');
  }

  private listen(): void {
    const { chat, e2ee } = this;
    const on: Client['on'] = (event, listener) => {
      this.cleanups.push(() => chat.off(event, listener));
      return chat.on(event, listener);
    };
    const onE2ee = <K extends keyof E2EEClientEventMap>(event: K, listener: E2EEClientEventMap[K]) => {
      e2ee.on(event, listener);
      this.cleanups.push(() => e2ee.off(event, listener));
    };
    on('messageAdded', (message: Message) => this.onMessage(message, true));
    on('messageUpdated', ({ message }: { message: Message }) => this.onMessage(message, false));
    on('conversationAdded', (conversation: Conversation) => {
      const known = this.conversations.has(conversation.sid);
      const state = this.stateOf(conversation);
      if (!known) {
        void this.refreshParticipants(state.sid);
        void this.loadPreview(state);
        this.changed('list');
      }
    });
    on('conversationRemoved', (conversation: Conversation) => {
      if (this.conversations.delete(conversation.sid)) this.changed('list');
    });
    onE2ee('messageGap', (gap: MessageGap) => {
      // Indexes that never arrived: deleted, or withheld by the service. Say so where they belong.
      const state = this.stateOf(gap.conversation);
      const count = gap.to - gap.from + 1;
      const which = count === 1 ? `Message #${gap.from} was` : `Messages #${gap.from}–#${gap.to} were`;
      state.addNotice({ identity: '', tone: 'warn', text: `${which} not delivered (deleted, or withheld by the service)` }, gap.from - 1);
      this.changed({ sid: state.sid });
    });
    on('participantJoined', (p) => this.onParticipant(p, true));
    on('participantLeft', (p) => this.onParticipant(p, false));
    on('connectionStateChanged', (state) => {
      if (state === 'connected') this.status = 'online';
      else if (state === 'connecting') this.status = this.status === 'online' || this.status === 'reconnecting' ? 'reconnecting' : 'connecting';
      else if (state === 'denied') this.setProblem({ kind: 'expired', title: 'Your session expired', detail: 'The conversation service no longer accepts this sign-in.' });
      else if (!this.closed) this.status = 'offline';
      this.changed('status');
    });
    onE2ee('tokenRefreshFailed', (error: Error) => {
      const described = describeError(error);
      if (described.kind === 'offline') return; // the connection banner says it; the next refresh retries
      this.setProblem({ kind: 'expired', title: 'Your session expired', detail: 'A new conversation token could not be obtained. Sign in again to continue.' });
    });
    onE2ee('keyChange', (change: KeyChange) => void this.onKeyChange(change));
    onE2ee('cardRejected', (rejected: RejectedCard) =>
      this.toast({ tone: 'bad', text: `A device card of ${rejected.identity} failed verification (${rejected.error.code}) and is ignored.` }),
    );
    onE2ee('backupFailed', (failure: BackupFailure) => {
      this.backupProblem = failure;
      this.changed('status');
    });
    onE2ee('attachmentProgress', ({ media, phase, loaded, total }) => this.uploading.get(media)?.set(phase, loaded, total));
    onE2ee('directoryAlert', (alert: DirectoryAlert) => this.addDirectoryAlerts([alert]));
    // Findings raised before a reload and not decided yet come back from the key store.
    void e2ee.directoryAlerts().then((open) => this.addDirectoryAlerts(open), () => undefined);
    onE2ee('orgKeyChange', (change: OrgKeyChange) => {
      this.orgKeyChange = change;
      this.changed('status');
    });
    // Check the organization key now, so that a changed one is reported at sign-in, not at the first backup.
    void this.organizationKey().catch(() => undefined);

    const online = () => {
      this.browserOnline = navigator.onLine;
      this.changed('status');
    };
    window.addEventListener('online', online);
    window.addEventListener('offline', online);
    this.cleanups.push(() => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', online);
    });

    // The app token (demo login) expires; say so at that moment rather than at the next failure.
    const expiry = tokenExpiry(this.session.token);
    if (expiry !== null) {
      const timer = setTimeout(
        () => this.setProblem({ kind: 'expired', title: 'Your session expired', detail: 'Sign in again to continue.' }),
        Math.min(expiry - Date.now(), 2 ** 31 - 1),
      );
      this.cleanups.push(() => clearTimeout(timer));
    }
    this.status = chat.connectionState === 'connected' ? 'online' : 'connecting';
  }

  private stateOf(conversation: Conversation): ConversationState {
    let state = this.conversations.get(conversation.sid);
    if (!state) this.conversations.set(conversation.sid, (state = new ConversationState(conversation, this.identity)));
    else state.conversation = conversation;
    return state;
  }

  /** The conversations, most recent activity first. */
  get list(): ConversationState[] {
    return [...this.conversations.values()].sort((a, b) => b.lastActivity - a.lastActivity);
  }

  /** Which conversation the user is looking at (for unread counts). */
  selected: string | null = null;

  private onMessage(message: Message, added: boolean): void {
    const known = this.conversations.has(message.conversation.sid);
    const state = this.stateOf(message.conversation);
    if (!known) void this.refreshParticipants(state.sid);
    const isNew = !state.has(message.index);
    // A reaction is shown under its target: it is neither a local echo nor unread.
    const reaction = state.put(message);
    if (!reaction && message.author === this.identity) {
      // The local echo of this message is done (matched by index, or by body while the index is unknown).
      const i = state.pending.findIndex((p) => p.index === message.index || (p.index === undefined && p.state === 'sending' && p.uploads.length === 0 && p.body === message.body));
      if (i >= 0) state.pending.splice(i, 1);
    } else if (!reaction && added && isNew && (this.selected !== state.sid || document.hidden)) {
      state.unread++;
    }
    const { senderCardId, senderDeviceName } = message.e2ee ?? {};
    if (senderCardId && senderDeviceName !== undefined) this.cardNames.set(senderCardId, senderDeviceName);
    this.changed({ sid: state.sid });
    this.changed('list');
  }

  private onParticipant(participant: BaseParticipant, joined: boolean): void {
    const p = participant as BaseParticipant & { conversationSid?: string; conversation?: { sid: string } };
    const sid = p.conversationSid ?? p.conversation?.sid;
    const state = sid === undefined ? undefined : this.conversations.get(sid);
    if (!state || p.identity === null) return;
    const had = state.participants.includes(p.identity);
    if (joined && !had) state.participants = [...state.participants, p.identity];
    if (!joined && had) state.participants = state.participants.filter((i) => i !== p.identity);
    if (had !== joined && p.identity !== this.identity) {
      const agent = isAgent(p.identity) ? ' (support agent)' : '';
      state.addNotice({ identity: p.identity, tone: 'info', text: joined ? `${p.identity}${agent} joined the conversation` : `${p.identity} left the conversation` });
      if (joined) void this.refreshDevices(state.sid, [p.identity]);
    }
    this.changed({ sid: state.sid });
    this.changed('list');
  }

  private async onKeyChange(change: KeyChange): Promise<void> {
    // Concurrent lookups of one identity can report the same change twice: note each card once.
    const fresh = (sign: string) => (id: string) => {
      const key = `${change.identity}:${sign}:${id}`;
      if (this.noticedChanges.has(key)) return false;
      this.noticedChanges.add(key);
      return true;
    };
    const { identity } = change;
    const added = change.added.filter(fresh('+'));
    const removed = change.removed.filter(fresh('-'));
    const unobserved = change.unobserved.filter(fresh('?'));
    if (added.length === 0 && removed.length === 0 && unobserved.length === 0) return;
    try {
      await this.cardsOf(identity); // learn the new devices' names
    } catch {
      // names are a nicety
    }
    const mine = identity === this.identity;
    const thisCard = this.e2ee.card?.id;
    if (mine && thisCard && removed.includes(thisCard)) {
      this.setProblem({ kind: 'revoked', title: 'This device was revoked', detail: 'It was revoked from another of your devices; its keys can no longer send or receive. Sign in again to register a new device.' });
    }
    const who = mine ? 'You' : identity;
    const named = (id: string) => {
      const name = this.cardNames.get(id);
      return name ? ` “${name}”` : '';
    };
    const tone: Notice['tone'] = mine ? 'info' : 'warn';
    const lines: Array<{ text: string; tone: Notice['tone'] }> = [
      ...added.filter((id) => id !== thisCard).map((id) => ({ text: `${who} added a new device${named(id)}`, tone })),
      ...removed.filter((id) => id !== thisCard).map((id) => ({ text: `${who} removed a device${named(id)}`, tone })),
      // Never seen active: whoever held the sign-in (or the card service) may have made it to post as them.
      ...unobserved.map((id): { text: string; tone: Notice['tone'] } => ({
        text: `A device of ${mine ? 'yours' : `${identity}’s`}${named(id)} that you never saw sent a message and is already removed. If ${mine ? 'you' : identity} did not use it, someone else did.`,
        tone: 'bad',
      })),
    ];
    if (lines.length === 0) return;
    for (const state of this.conversations.values()) {
      if (!state.participants.includes(identity)) continue;
      for (const line of lines) state.addNotice({ identity, ...line, keyChange: !mine });
      this.changed({ sid: state.sid });
    }
    for (const line of lines) if (mine || line.tone === 'bad') this.toast({ tone: line.tone, text: line.text });
    if (mine) this.changed('devices');
  }

  /** Loads the conversation list with participants and the last message of each. */
  async loadConversations(): Promise<void> {
    let page = await this.chat.getSubscribedConversations();
    for (;;) {
      for (const conversation of page.items) this.stateOf(conversation);
      if (!page.hasNextPage) break;
      page = await page.nextPage();
    }
    this.changed('list');
    await Promise.all(
      [...this.conversations.values()].map(async (state) => {
        await this.refreshParticipants(state.sid);
        await this.loadPreview(state);
      }),
    );
  }

  private async loadPreview(state: ConversationState): Promise<void> {
    if (state.loaded) return;
    try {
      const page = await state.conversation.getMessages(PREVIEW_SIZE);
      for (const m of page.items) if (!state.has(m.index)) state.put(m);
      this.changed('list');
    } catch {
      // the list still shows the conversation; opening it reports the error
    }
  }

  async refreshParticipants(sid: string): Promise<void> {
    const state = this.conversations.get(sid);
    if (!state) return;
    try {
      const participants = await state.conversation.getParticipants();
      state.participants = participants.map((p) => p.identity).filter((i): i is string => i !== null);
      this.changed({ sid });
      this.changed('list');
    } catch {
      // shown as unknown participants; the next event or open retries
    }
  }

  /**
   * Looks up the devices of participants: fills device counts (who has no device yet) and lets
   * the card directory notice new or removed devices (key-change notices).
   */
  async refreshDevices(sid: string, identities?: string[]): Promise<void> {
    const state = this.conversations.get(sid);
    if (!state) return;
    await Promise.all(
      (identities ?? state.participants).map(async (identity) => {
        try {
          state.deviceCounts.set(identity, (await this.cardsOf(identity)).length);
        } catch {
          state.deviceCounts.delete(identity);
        }
      }),
    );
    this.changed({ sid });
  }

  async cardsOf(identity: string): Promise<Card[]> {
    const cards = await this.e2ee.cardsOf(identity);
    for (const card of cards) this.cardNames.set(card.id, card.fields.deviceName);
    return cards;
  }

  /** Opens a conversation: the latest page of messages, participants and their devices. */
  async open(sid: string): Promise<void> {
    this.selected = sid;
    const state = this.conversations.get(sid);
    if (!state) return;
    state.unread = 0;
    this.changed('list');
    if (!state.loaded && !state.loading) {
      state.loading = true;
      state.loadError = null;
      this.changed({ sid });
      try {
        const page = await state.conversation.getMessages(PAGE_SIZE);
        for (const m of page.items) state.put(m);
        state.earlier = page.hasPrevPage ? page : null;
        state.loaded = true;
      } catch (err) {
        state.loadError = describeError(err);
      } finally {
        state.loading = false;
        this.changed({ sid });
      }
    }
    await this.refreshParticipants(sid);
    await this.refreshDevices(sid);
  }

  async loadEarlier(sid: string): Promise<void> {
    const state = this.conversations.get(sid);
    if (!state?.earlier) return;
    const page = await state.earlier.prevPage();
    for (const m of page.items) state.put(m);
    state.earlier = page.hasPrevPage ? page : null;
    this.changed({ sid });
  }

  /**
   * Encrypts and sends text, files or both (each file encrypted and uploaded as an opaque blob,
   * with progress); a failure stays in the timeline as "not sent" with the reason.
   */
  async send(sid: string, body: string, files: readonly File[] = [], retryOf?: Pending): Promise<void> {
    const state = this.conversations.get(sid);
    if (!state) return;
    const pending: Pending = retryOf ?? { id: ++this.sendSeq, body, uploads: files.map((file) => ({ file, transfer: new Transfer('waiting', file.size) })), state: 'sending' };
    pending.state = 'sending';
    pending.error = undefined;
    if (!retryOf) state.pending.push(pending);
    this.changed({ sid });
    for (const { file, transfer } of pending.uploads) {
      transfer.set('waiting', 0, file.size);
      this.uploading.set(file, transfer);
    }
    try {
      const index = pending.uploads.length ? await this.sendFiles(state.conversation, body, pending.uploads) : await state.conversation.sendMessage(body);
      if (index !== null) pending.index = index;
      if (index === null || state.messages.has(index)) state.pending = state.pending.filter((p) => p !== pending);
    } catch (err) {
      pending.state = 'failed';
      const files = pending.uploads.map((u) => u.file);
      pending.error = describeFilesError(err, files, state.conversation.limits?.mediaAttachmentsCountLimit) ?? this.failure(sid, err);
      for (const { transfer } of pending.uploads) if (transfer.phase !== 'sent') transfer.set('failed', 0);
    } finally {
      for (const { file } of pending.uploads) this.uploading.delete(file);
    }
    this.changed({ sid });
  }

  /** One message with every file (as the SDK sends media), and the text when there is one. */
  private async sendFiles(conversation: Conversation, body: string, uploads: readonly Upload[]): Promise<number | null> {
    const builder = conversation.prepareMessage();
    if (body) builder.setBody(body);
    for (const { file } of uploads) builder.addMedia({ contentType: file.type || 'application/octet-stream', filename: file.name, media: file });
    return builder.build().send();
  }

  /**
   * Replaces the text of one of this user's messages: the wrapper seals it for everyone here as a
   * signed edit bound to the original. Resolves with why it failed, or null.
   */
  async edit(sid: string, index: number, body: string): Promise<Described | null> {
    const message = this.conversations.get(sid)?.messages.get(index);
    if (!message) return null;
    try {
      await message.updateBody(body);
      return null;
    } catch (err) {
      return this.failure(sid, err);
    } finally {
      this.changed({ sid });
    }
  }

  /**
   * Reacts to a message with a message of its own, sealed and signed like any other (see
   * reactions.ts); once per person and emoji. Resolves with why it failed, or null.
   */
  async react(sid: string, target: Message, emoji: string): Promise<Described | null> {
    const state = this.conversations.get(sid);
    const reacted = state?.reactionGroups.get(target.sid)?.some((g) => g.emoji === emoji && g.who.includes(this.identity));
    if (!state || reacted) return null;
    try {
      await state.conversation.sendMessage(emoji, reactionAttributes(target.sid));
      return null;
    } catch (err) {
      return this.failure(sid, err);
    }
  }

  /** Describes why a send or an edit failed; an expired sign-in or a revoked device also stops the session. */
  private failure(sid: string, err: unknown): Described {
    const described = describeError(err);
    if (described.kind === 'expired' || described.kind === 'revoked') this.setProblem(described);
    if (described.kind === 'no-cards') void this.refreshDevices(sid);
    return described;
  }

  retry(sid: string, pending: Pending): Promise<void> {
    return this.send(sid, pending.body, [], pending);
  }

  discard(sid: string, pending: Pending): void {
    const state = this.conversations.get(sid);
    if (!state) return;
    state.pending = state.pending.filter((p) => p !== pending);
    this.changed({ sid });
  }

  /** Creates a conversation, joins it and adds the given people; returns its sid. */
  async createConversation(friendlyName: string, identities: string[]): Promise<string> {
    const conversation = await this.chat.createConversation(friendlyName ? { friendlyName } : {});
    await conversation.join();
    const state = this.stateOf(conversation);
    state.participants = [this.identity];
    this.changed('list');
    for (const identity of identities) await this.addParticipant(state.sid, identity);
    return state.sid;
  }

  /** Adds someone; resolves with whether they have a device yet (else sending would fail). */
  async addParticipant(sid: string, identity: string): Promise<{ hasDevice: boolean }> {
    const state = this.conversations.get(sid);
    if (!state) throw new Error('unknown conversation');
    await state.conversation.add(identity);
    if (!state.participants.includes(identity)) state.participants = [...state.participants, identity];
    let count = 0;
    try {
      count = (await this.cardsOf(identity)).length;
      state.deviceCounts.set(identity, count);
    } catch {
      count = 1; // unknown: do not warn
    }
    this.changed({ sid });
    this.changed('list');
    return { hasDevice: count > 0 };
  }

  /** This identity's devices, this one first. */
  async devices(): Promise<Card[]> {
    const cards = await this.e2ee.devices();
    for (const card of cards) this.cardNames.set(card.id, card.fields.deviceName);
    const mine = this.e2ee.card?.id;
    return cards.sort((a, b) => (a.id === mine ? -1 : b.id === mine ? 1 : b.fields.createdAt - a.fields.createdAt));
  }

  /** Revokes a device; revoking this one also forgets its keys (the caller signs out). */
  async revoke(cardId: string): Promise<{ self: boolean }> {
    await this.e2ee.revokeDevice(cardId);
    const self = cardId === this.e2ee.card?.id;
    if (self) await this.keyStore.deleteDevice(this.identity);
    this.changed('devices');
    return { self };
  }

  async safetyNumber(identity: string): Promise<{ digits: string; cards: Card[] }> {
    const [digits, cards] = await Promise.all([this.e2ee.safetyNumber(identity), this.cardsOf(identity)]);
    return { digits, cards };
  }

  /** The organization key backups are wrapped for, and whether this device trusts it; null without history. */
  organizationKey(): Promise<OrganizationKeyInfo | null> {
    return this.e2ee.organizationKey();
  }

  /** Trusts the changed organization key the user was warned about; the held backups go out. */
  async acceptOrganizationKey(): Promise<void> {
    const change = this.orgKeyChange;
    if (!change) return;
    await this.e2ee.acceptOrganizationKey(change.current.cardId);
    this.orgKeyChange = null;
    this.toast({ tone: 'info', text: 'Organization key accepted: held backups are being sent.' });
    this.changed('status');
  }

  private addDirectoryAlerts(alerts: readonly DirectoryAlert[]): void {
    const fresh = alerts.filter((a) => !this.directoryAlerts.some((b) => b.id === a.id));
    if (fresh.length === 0) return;
    this.directoryAlerts.push(...fresh);
    this.changed('status');
  }

  /**
   * The user decided about a directory alert (and the others about the same card): 'revoke'
   * revokes the device it names first (a device of this account no one added); 'dismiss' accepts
   * it as it is (it was theirs, or the admin explained it).
   */
  async resolveDirectoryAlert(alert: DirectoryAlert, action: 'revoke' | 'dismiss'): Promise<void> {
    if (action === 'revoke' && alert.cardId) await this.e2ee.revokeDevice(alert.cardId);
    const same = this.directoryAlerts.filter((a) => a.kind === alert.kind && a.cardId === alert.cardId && a.identity === alert.identity);
    for (const a of same) await this.e2ee.acceptDirectoryAlert(a);
    this.directoryAlerts = this.directoryAlerts.filter((a) => !same.includes(a));
    if (action === 'revoke') this.toast({ tone: 'info', text: 'The device was revoked: it no longer receives your messages.' });
    this.changed('status');
    this.changed('devices');
  }

  /** The safety number the user marked as verified with `identity`, if any. */
  verifiedNumber(identity: string): string | null {
    return prefs.get<string | null>(`verified:${this.identity}:${identity}`, null);
  }

  setVerified(identity: string, digits: string | null): void {
    prefs.set(`verified:${this.identity}:${identity}`, digits);
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.e2ee.outbox.stop();
    this.files.clear();
    await this.chat.shutdown().catch(() => undefined);
  }
}
