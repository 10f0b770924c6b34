/**
 * The wrapped conversations client: the same surface as @twilio/conversations for the parts
 * apps use, with every body sealed on send and opened and verified on receive. The SDK emits
 * its events synchronously, before anything could be decrypted, so the wrapper listens to the
 * raw client and re-emits its own events, per conversation in arrival order, each carrying an
 * E2EEMessage whose `body` is the plaintext and whose `e2ee` says how it was verified.
 */
import type { BaseClient, BaseConversation, BaseMessage, BasePaginator, BaseParticipant, JSONValue } from './conversations.js';
import { Emitter } from './emitter.js';
import type { MessageCrypto, OpenedBody, SealContent } from './message-crypto.js';
import type { SealedEnvelope } from '../shared/envelope.js';
import { E2EEMessage, WrappedPaginator } from './wrapped-message.js';

export { E2EEMessage } from './wrapped-message.js';

/** Hooks the E2EE client gives the wrapper (token refresh, history backup, card refresh). */
export interface WrapperHooks {
  refreshToken(): Promise<string>;
  afterSend(conversation: BaseConversation, sealed: SealedEnvelope, index: number): void;
  /** Every message opened verified from this device's own slot (its own sends included). */
  afterVerifiedReceive(raw: BaseMessage, opened: NonNullable<OpenedBody['opened']>): void;
  /** A participant joined, left, or announced that its devices changed: its cards are looked up afresh. */
  participantsChanged(identity: string | null): void;
  /** The wrapped client shut down. */
  shutdown(wrapped: E2EEConversationsClient): void;
  /** Before a page of messages is opened: lets history fetch every needed rewrap in one request. */
  prefetchRewraps(conversationSid: string, messages: readonly BaseMessage[]): Promise<void>;
}

/** What prepareMessage() returns: the SDK's MessageBuilder, for text bodies (sealed on send). */
export interface E2EEMessageBuilder {
  setBody(text: string): E2EEMessageBuilder;
  setAttributes(attributes: JSONValue): E2EEMessageBuilder;
  build(): { send(): Promise<number> };
  buildAndSend(): Promise<number>;
}

/** How long a message that arrived ahead of a missing index waits for it. */
export const GAP_WAIT_MS = 1500;

/** Indexes [from, to] never arrived (deleted, or withheld by the service). */
export interface MessageGap {
  conversation: E2EEConversation;
  from: number;
  to: number;
}

export interface E2EEConversationEvents {
  messageAdded(message: E2EEMessage): void;
  messageGap(gap: MessageGap): void;
  messageUpdated(data: { message: E2EEMessage; updateReasons: string[] }): void;
  participantJoined(participant: BaseParticipant): void;
  participantLeft(participant: BaseParticipant): void;
  participantUpdated(data: { participant: BaseParticipant; updateReasons: string[] }): void;
}

export class E2EEConversation extends Emitter<E2EEConversationEvents> {
  /** Emission chain: listeners get messages one at a time, each after the previous. */
  private chain: Promise<void> = Promise.resolve();
  /** The index the next new message should have; null until the first one arrives. */
  private expectedIndex: number | null = null;
  /** New messages that arrived ahead of a missing index, by index. */
  private readonly ahead = new Map<number, () => void>();
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  /** @internal Set by the client, which re-emits gaps. */
  onGap?: (gap: MessageGap) => void;

  constructor(
    /** The SDK's conversation. */
    readonly raw: BaseConversation,
    private readonly crypto: MessageCrypto,
    private readonly hooks: WrapperHooks,
  ) {
    super();
  }

  get sid(): string {
    return this.raw.sid;
  }
  get uniqueName(): string | null {
    return this.raw.uniqueName;
  }
  get friendlyName(): string | null {
    return this.raw.friendlyName;
  }
  get createdBy(): string {
    return this.raw.createdBy;
  }
  get attributes(): unknown {
    return this.raw.attributes;
  }
  get dateCreated(): Date | null {
    return this.raw.dateCreated;
  }

  async join(): Promise<this> {
    await this.raw.join();
    return this;
  }

  async add(identity: string): Promise<unknown> {
    const result = await this.raw.add(identity);
    this.hooks.participantsChanged(identity);
    return result;
  }

  getParticipants(): Promise<BaseParticipant[]> {
    return this.raw.getParticipants();
  }

  /** @internal Seals a body and its attributes (or an edit) for everyone in this conversation now. */
  sealBody(body: unknown, content?: SealContent): Promise<SealedEnvelope> {
    return this.crypto.seal(this.raw, body, content);
  }

  /**
   * Encrypts `body` and `attributes` for every device of every participant (and the sender's
   * other devices) and sends the envelope. The attributes are signed, and encrypted but for the
   * keys of the clearAttributes option: Twilio holds only those. Refuses, sending nothing, when a
   * participant has no device (NO_CARDS) or is not a chat user, or when either part of the
   * attributes exceeds Twilio's 4 KB limit (ATTRIBUTES_TOO_LARGE).
   */
  async sendMessage(body: string, attributes?: JSONValue): Promise<number> {
    const sealed = await this.sealBody(body, { attributes });
    const index = await this.raw.sendMessage(sealed.text, JSON.parse(sealed.payload.clearAttributes ?? '{}') as JSONValue);
    this.hooks.afterSend(this.raw, sealed, index);
    return index;
  }

  /** The SDK's builder pattern: prepareMessage().setBody(...).setAttributes(...).build().send(). */
  prepareMessage(): E2EEMessageBuilder {
    let body = '';
    let attributes: JSONValue | undefined;
    const builder: E2EEMessageBuilder = {
      setBody: (text) => ((body = text), builder),
      setAttributes: (a) => ((attributes = a), builder),
      build: () => ({ send: () => this.sendMessage(body, attributes) }),
      buildAndSend: () => this.sendMessage(body, attributes),
    };
    return builder;
  }

  /** A page of decrypted, verified messages, with the SDK's Paginator shape. */
  async getMessages(pageSize?: number, anchor?: number, direction?: 'backwards' | 'forward'): Promise<BasePaginator<E2EEMessage>> {
    const page = await this.raw.getMessages(pageSize, anchor, direction);
    if (anchor === undefined && direction !== 'forward') this.noteNewestPage(page.items as BaseMessage[]);
    return this.wrapPage(page);
  }

  /**
   * The newest page says which index the next new message must have. Without it, the first new
   * message to arrive would set the order, and a service that reorders or withholds the first
   * messages after the app opened a conversation would go unnoticed. A new message that came
   * first already set the order: it is kept. (An empty page means index 0 comes next; if every
   * earlier message was deleted, the deleted indexes are then reported as a gap, which they are.)
   */
  private noteNewestPage(items: readonly BaseMessage[]): void {
    if (this.expectedIndex !== null) return;
    const newest = items[items.length - 1];
    this.expectedIndex = newest ? newest.index + 1 : 0;
  }

  private async wrapPage(page: BasePaginator<unknown>): Promise<BasePaginator<E2EEMessage>> {
    const raws = page.items as BaseMessage[];
    await this.hooks.prefetchRewraps(this.sid, raws);
    const decrypted = await Promise.all(raws.map((m) => this.crypto.decrypt(this.sid, m)));
    // Replays are decided in page (index) order, not in the order decryption finished.
    const items: E2EEMessage[] = [];
    for (const [i, m] of raws.entries()) items.push(new E2EEMessage(m, this, await this.crypto.admit(this.sid, m, decrypted[i]!)));
    return new WrappedPaginator(items, page, (next) => this.wrapPage(next));
  }

  /** @internal */
  async open(raw: BaseMessage): Promise<E2EEMessage> {
    return new E2EEMessage(raw, this, await this.crypto.open(this.sid, raw));
  }

  /** @internal Opens a message and emits it after every earlier emission. */
  enqueue(raw: BaseMessage, emit: (message: E2EEMessage) => void): void {
    const decrypted = this.crypto.decrypt(this.sid, raw);
    this.chain = this.chain.then(async () => {
      const result = await this.crypto.admit(this.sid, raw, await decrypted);
      if (result.opened && result.e2ee.via === 'direct') this.hooks.afterVerifiedReceive(raw, result.opened);
      emit(new E2EEMessage(raw, this, result));
    });
  }

  /**
   * @internal A new message: emitted in index order. One that arrives ahead of a missing index
   * waits up to GAP_WAIT_MS for it; then the gap is reported (`messageGap`) and delivery goes on.
   * Decryption starts at once either way; only the hand-over to listeners (and the replay check) waits.
   */
  enqueueNew(raw: BaseMessage, emit: (message: E2EEMessage) => void): void {
    const expected = this.expectedIndex ?? raw.index;
    if (raw.index < expected) {
      this.enqueue(raw, emit); // late (after a reported gap) or re-delivered: still shown, never hidden
      return;
    }
    const decrypted = this.crypto.decrypt(this.sid, raw);
    this.ahead.set(raw.index, () => {
      this.chain = this.chain.then(async () => {
        const result = await this.crypto.admit(this.sid, raw, await decrypted);
        if (result.opened && result.e2ee.via === 'direct') this.hooks.afterVerifiedReceive(raw, result.opened);
        emit(new E2EEMessage(raw, this, result));
      });
    });
    this.expectedIndex = expected;
    this.releaseInOrder();
  }

  private releaseInOrder(): void {
    clearTimeout(this.gapTimer);
    while (this.expectedIndex !== null && this.ahead.has(this.expectedIndex)) {
      const release = this.ahead.get(this.expectedIndex)!;
      this.ahead.delete(this.expectedIndex);
      this.expectedIndex++;
      release();
    }
    if (this.ahead.size === 0) return;
    this.gapTimer = setTimeout(() => {
      const next = Math.min(...this.ahead.keys());
      const gap = { conversation: this, from: this.expectedIndex!, to: next - 1 };
      this.chain = this.chain.then(() => {
        this.emit('messageGap', gap);
        this.onGap?.(gap);
      });
      this.expectedIndex = next;
      this.releaseInOrder();
    }, GAP_WAIT_MS);
  }

  /** @internal */
  deliver<K extends keyof E2EEConversationEvents>(event: K, ...args: Parameters<E2EEConversationEvents[K]>): void {
    this.emit(event, ...args);
  }
}

export interface E2EEClientEvents {
  conversationAdded(conversation: E2EEConversation): void;
  conversationJoined(conversation: E2EEConversation): void;
  conversationRemoved(conversation: E2EEConversation): void;
  messageAdded(message: E2EEMessage): void;
  messageUpdated(data: { message: E2EEMessage; updateReasons: string[] }): void;
  /** Message indexes that never arrived in a conversation (see E2EEConversation's messageGap). */
  messageGap(gap: MessageGap): void;
  participantJoined(participant: BaseParticipant): void;
  participantLeft(participant: BaseParticipant): void;
  participantUpdated(data: { participant: BaseParticipant; updateReasons: string[] }): void;
  connectionStateChanged(state: string): void;
  tokenAboutToExpire(): void;
  /** The wrapper fetched a fresh token and gave it to the client. */
  tokenUpdated(): void;
  /** A token refresh failed; the app may need to sign in again. */
  tokenRefreshFailed(error: Error): void;
}

/** The wrapped client: use it where the app used its @twilio/conversations Client. */
export class E2EEConversationsClient extends Emitter<E2EEClientEvents> {
  private readonly wrapped = new Map<string, E2EEConversation>();
  private readonly detach: Array<() => void> = [];

  constructor(
    /** The SDK's client (or the local relay client). */
    readonly raw: BaseClient,
    private readonly crypto: MessageCrypto,
    private readonly hooks: WrapperHooks,
  ) {
    super();
    this.listen('messageAdded', (m: BaseMessage) => {
      const conversation = this.conversationOf(m);
      conversation.enqueueNew(m, (message) => {
        conversation.deliver('messageAdded', message);
        this.emit('messageAdded', message);
      });
    });
    this.listen('messageUpdated', (data: { message: BaseMessage; updateReasons: string[] }) => {
      const conversation = this.conversationOf(data.message);
      conversation.enqueue(data.message, (message) => {
        const update = { message, updateReasons: data.updateReasons };
        conversation.deliver('messageUpdated', update);
        this.emit('messageUpdated', update);
      });
    });
    for (const event of ['participantJoined', 'participantLeft'] as const) {
      this.listen(event, (p: BaseParticipant & { conversation?: { sid: string }; conversationSid?: string }) => {
        this.hooks.participantsChanged(p.identity);
        const sid = p.conversation?.sid ?? p.conversationSid;
        if (sid !== undefined) this.wrapped.get(sid)?.deliver(event, p);
        this.emit(event, p);
      });
    }
    // A contact announcing a device change (or any participant update): its cards are looked up afresh before the next send.
    this.listen('participantUpdated', (data: { participant: BaseParticipant & { conversation?: { sid: string } }; updateReasons: string[] }) => {
      this.hooks.participantsChanged(data.participant.identity);
      const sid = data.participant.conversation?.sid;
      if (sid !== undefined) this.wrapped.get(sid)?.deliver('participantUpdated', data);
      this.emit('participantUpdated', data);
    });
    for (const event of ['conversationAdded', 'conversationJoined', 'conversationRemoved'] as const) {
      this.listen(event, (c: BaseConversation) => this.emit(event, this.wrap(c)));
    }
    this.listen('connectionStateChanged', (state: string) => this.emit('connectionStateChanged', state));
    const refresh = () => {
      this.emit('tokenAboutToExpire');
      this.hooks
        .refreshToken()
        .then((token) => this.raw.updateToken(token))
        .then(() => this.emit('tokenUpdated'))
        .catch((err: Error) => this.emit('tokenRefreshFailed', err));
    };
    this.listen('tokenAboutToExpire', refresh);
    this.listen('tokenExpired', refresh);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private listen(event: string, listener: (...args: any[]) => void): void {
    this.raw.on(event, listener);
    this.detach.push(() => this.raw.removeListener(event, listener));
  }

  get connectionState(): string {
    return this.raw.connectionState;
  }

  private conversationOf(message: BaseMessage): E2EEConversation {
    return this.wrap(message.conversation as BaseConversation);
  }

  private wrap(conversation: BaseConversation): E2EEConversation {
    let wrapped = this.wrapped.get(conversation.sid);
    if (!wrapped || wrapped.raw !== conversation) {
      wrapped = new E2EEConversation(conversation, this.crypto, this.hooks);
      wrapped.onGap = (gap) => this.emit('messageGap', gap);
      this.wrapped.set(conversation.sid, wrapped);
    }
    return wrapped;
  }

  async createConversation(options?: { uniqueName?: string; friendlyName?: string; attributes?: JSONValue }): Promise<E2EEConversation> {
    return this.wrap(await this.raw.createConversation(options));
  }

  async getConversationBySid(sid: string): Promise<E2EEConversation> {
    return this.wrap(await this.raw.getConversationBySid(sid));
  }

  async getSubscribedConversations(): Promise<BasePaginator<E2EEConversation>> {
    const mapPage = async (page: BasePaginator<unknown>): Promise<BasePaginator<E2EEConversation>> =>
      new WrappedPaginator((page.items as BaseConversation[]).map((c) => this.wrap(c)), page, mapPage);
    return mapPage(await this.raw.getSubscribedConversations());
  }

  /**
   * @internal Announces in every subscribed conversation that this identity's devices changed, by
   * updating this participant's attributes (`twilioE2ee.devicesChangedAt`, merged into what is
   * there): contacts' wrappers refresh its cards on the `participantUpdated` event.
   */
  async announceDeviceChange(): Promise<void> {
    const me = this.crypto.identity;
    for (let page = await this.raw.getSubscribedConversations(); ; page = await page.nextPage()) {
      for (const conversation of page.items) {
        const self = (await conversation.getParticipants()).find((p) => p.identity === me);
        if (!self?.updateAttributes) continue;
        const current = typeof self.attributes === 'object' && self.attributes !== null && !Array.isArray(self.attributes) ? (self.attributes as Record<string, JSONValue>) : {};
        await self.updateAttributes({ ...current, twilioE2ee: { devicesChangedAt: Date.now() } }).catch(() => undefined);
      }
      if (!page.hasNextPage) return;
    }
  }

  /** Stops listening and shuts the underlying client down. */
  async shutdown(): Promise<void> {
    this.hooks.shutdown(this);
    for (const off of this.detach.splice(0)) off();
    await this.raw.shutdown();
  }
}
