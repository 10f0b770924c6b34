/**
 * The drop-in wrapper: `wrap(client)` returns the app's own @twilio/conversations Client, behind
 * a Proxy (client/intercept.ts) that seals every body on send and opens and verifies every body on
 * receive. Conversations, messages, participants and paginators reached from it are the SDK's own
 * objects, intercepted the same way; every member that carries no message content is the real
 * one. The SDK emits its events synchronously, before anything could be decrypted, so message
 * events (messageAdded, messageUpdated, messageRemoved) are re-emitted by the wrapper once the
 * message is opened, per conversation in index order; every other event reaches the app's
 * listeners straight from the SDK.
 */
import type { Client, Conversation, Message, Paginator, Participant } from '@twilio/conversations';
import type { SealedEnvelope } from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { BaseClient, BaseConversation, BaseMessage, BasePaginator, BaseParticipant, JSONValue } from './conversations.js';
import { AppListeners, FORWARD, intercept, isIntercepted, type Present } from './intercept.js';
import { FAILED_BODY, type MessageCrypto, type OpenedBody, type SealContent } from './message-crypto.js';
import { MessageWrapper, refuseContent, wrapBuilder } from './wrapped-message.js';

/** What the E2EE client gives a wrapped client once this device is registered. */
export interface Engine {
  crypto: MessageCrypto;
  hooks: WrapperHooks;
}

/** Hooks the E2EE client gives the wrapper (token refresh, history backup, card refresh, events). */
export interface WrapperHooks {
  refreshToken(): Promise<string>;
  afterSend(conversation: BaseConversation, sealed: SealedEnvelope, index: number): void;
  /** An edit of this client's message was stored: its new version is backed up. */
  afterEdit(conversationSid: string, message: BaseMessage, sealed: SealedEnvelope): void;
  /** Every message opened verified from this device's own slot (its own sends included). */
  afterVerifiedReceive(raw: BaseMessage, opened: NonNullable<OpenedBody['opened']>): void;
  /** A participant joined, left, or announced that its devices changed: its cards are looked up afresh. */
  participantsChanged(identity: string | null): void;
  /** Before a page of messages is opened: lets history fetch every needed rewrap in one request. */
  prefetchRewraps(conversationSid: string, messages: readonly BaseMessage[]): Promise<void>;
  /** A message this client removed: its organization history copy is deleted too (best effort). */
  afterRemove(conversationSid: string, messageSid: string): void;
  /** Indexes that never arrived (see MessageGap). */
  gap(gap: MessageGap): void;
  /** The wrapper refreshed the client's token, or could not. */
  tokenUpdated(): void;
  tokenRefreshFailed(error: Error): void;
  /** The wrapped client shut down. */
  shutdown(wrapper: ClientWrapper): void;
}

/** How long a message that arrived ahead of a missing index waits for it. */
export const GAP_WAIT_MS = 1500;

/** Indexes [from, to] never arrived (deleted, or withheld by the service). */
export interface MessageGap {
  conversation: Conversation;
  from: number;
  to: number;
}

/** The events whose payload carries a message: emitted by the wrapper once the message is opened. */
const MESSAGE_EVENTS = new Set(['messageAdded', 'messageUpdated', 'messageRemoved']);
/** initFailed also reports a failed device setup (a synchronous wrap that could not register). */
const CLIENT_WRAPPER_EVENTS = new Set([...MESSAGE_EVENTS, 'initFailed']);
const NO_EVENTS = new Set<string>();

type Fields = Record<PropertyKey, unknown>;
const isMessage = (v: Fields) => typeof v.updateBody === 'function' && typeof v.index === 'number';
const isConversation = (v: Fields) => typeof v.sendMessage === 'function' && typeof v.getMessages === 'function';
const isParticipant = (v: Fields) => typeof v.updateAttributes === 'function' && 'identity' in v && 'conversation' in v;
const isPaginator = (v: Fields) => Array.isArray(v.items) && typeof v.nextPage === 'function';

/** The state behind one wrapped client; `client` is what the app holds. */
export class ClientWrapper {
  readonly client: Client;
  readonly engine: Promise<Engine>;
  private readonly conversations = new Map<string, ConversationWrapper>();
  private readonly participants = new WeakMap<object, Participant>();
  private readonly listeners: AppListeners;
  private readonly detach: Array<() => void> = [];

  constructor(
    /** The SDK's client (or the local relay client). */
    readonly raw: BaseClient,
    engineFor: (wrapper: ClientWrapper) => Promise<Engine>,
  ) {
    this.listeners = new AppListeners(() => raw, CLIENT_WRAPPER_EVENTS, this.present, () => this.client);
    this.client = intercept(raw as unknown as Client, () => raw as unknown as Client, (key) => this.member(key), this.present);
    this.engine = engineFor(this);
    // A device that cannot be set up is reported through the client's own initFailed event.
    this.engine.catch((error: unknown) => this.listeners.emit('initFailed', { error }));
    this.listenToRaw();
  }

  private member(key: PropertyKey): unknown {
    const listener = this.listeners.member(key);
    if (listener !== FORWARD) return listener;
    if (key === 'shutdown') return () => this.shutdown();
    return FORWARD;
  }

  private listenToRaw(): void {
    this.listen('messageAdded', (m: BaseMessage) => {
      const conversation = this.conversationOf(m);
      conversation.enqueueNew(m, (message) => {
        message.announce();
        conversation.listeners.emit('messageAdded', message.proxy);
        this.listeners.emit('messageAdded', message.proxy);
      });
    });
    this.listen('messageUpdated', ({ message: m, updateReasons }: { message: BaseMessage; updateReasons: string[] }) => {
      const conversation = this.conversationOf(m);
      conversation.enqueue(m, (message) => {
        const update = { message: message.proxy, updateReasons: message.updateReasons(updateReasons) };
        message.listeners.emit('updated', update);
        conversation.listeners.emit('messageUpdated', update);
        this.listeners.emit('messageUpdated', update);
      });
    });
    this.listen('messageRemoved', (m: BaseMessage) => {
      const conversation = this.conversationOf(m);
      conversation.enqueueRemoved(m, (message) => {
        conversation.listeners.emit('messageRemoved', message.proxy);
        this.listeners.emit('messageRemoved', message.proxy);
      });
    });
    // A contact joining, leaving or announcing a device change: its cards are looked up afresh before the next send.
    const cardsChanged = (identity: string | null) => void this.engine.then(({ hooks }) => hooks.participantsChanged(identity), () => undefined);
    this.listen('participantJoined', (p: BaseParticipant) => cardsChanged(p.identity));
    this.listen('participantLeft', (p: BaseParticipant) => cardsChanged(p.identity));
    this.listen('participantUpdated', ({ participant }: { participant: BaseParticipant }) => cardsChanged(participant.identity));
    // A conversation left or removed: the next one met for that sid (a rejoin) gets a fresh wrapper,
    // after the app's own listeners have had this one.
    this.listen('conversationRemoved', (c: BaseConversation) => queueMicrotask(() => this.conversations.delete(c.sid)));
    this.listen('initFailed', (...args: unknown[]) => this.listeners.emit('initFailed', ...args.map(this.present)));
    const refresh = () => {
      void this.engine.then(({ hooks }) =>
        hooks
          .refreshToken()
          .then((token) => this.raw.updateToken(token))
          .then(() => hooks.tokenUpdated())
          .catch((err: Error) => hooks.tokenRefreshFailed(err)),
      );
    };
    this.listen('tokenAboutToExpire', refresh);
    this.listen('tokenExpired', refresh);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private listen(event: string, listener: (...args: any[]) => void): void {
    this.raw.on(event, listener);
    this.detach.push(() => this.raw.removeListener(event, listener));
  }

  /**
   * What the app sees of a value leaving the SDK (a result, a property, an event argument): an
   * SDK conversation, message, participant or paginator becomes its intercepted one, also inside
   * an array or an event's `{ conversation, updateReasons }`.
   */
  readonly present: Present = (value) => {
    if (typeof value !== 'object' || value === null || isIntercepted(value)) return value;
    const sdkObject = this.presentObject(value);
    if (sdkObject !== value) return sdkObject;
    if (Array.isArray(value)) {
      const mapped = value.map(this.presentObject);
      return mapped.some((v, i) => v !== value[i]) ? mapped : value;
    }
    if (Object.getPrototypeOf(value) === Object.prototype) {
      const entries = Object.entries(value);
      const mapped = entries.map(([k, v]) => [k, this.presentObject(v)] as const);
      return mapped.some(([k, v]) => v !== (value as Fields)[k]) ? Object.fromEntries(mapped) : value;
    }
    return value;
  };

  private readonly presentObject = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null || isIntercepted(value)) return value;
    const v = value as Fields;
    if (isMessage(v)) return this.conversationOf(v as unknown as BaseMessage).known(v as unknown as BaseMessage).proxy;
    if (isConversation(v)) return this.conversation(v as unknown as BaseConversation).proxy;
    if (isParticipant(v)) return this.participant(v as unknown as BaseParticipant);
    if (isPaginator(v)) return this.presentPage(v as unknown as BasePaginator<unknown>);
    return value;
  };

  /** The wrapper of a conversation: one per sid, over the first real object met for it (the SDK keeps one per sid). */
  conversation(raw: BaseConversation): ConversationWrapper {
    let wrapper = this.conversations.get(raw.sid);
    if (!wrapper) this.conversations.set(raw.sid, (wrapper = new ConversationWrapper(raw, this)));
    return wrapper;
  }

  private conversationOf(message: BaseMessage): ConversationWrapper {
    return this.conversation(message.conversation as BaseConversation);
  }

  private participant(raw: BaseParticipant): Participant {
    let proxy = this.participants.get(raw);
    if (!proxy) {
      const listeners = new AppListeners(() => raw as never, NO_EVENTS, this.present, () => proxy!);
      proxy = intercept(raw as unknown as Participant, () => raw as unknown as Participant, (key) => listeners.member(key), this.present);
      this.participants.set(raw, proxy);
    }
    return proxy;
  }

  /** A page of conversations, participants or users: its items presented, and its neighbours too. */
  private presentPage(raw: BasePaginator<unknown>): Paginator<unknown> {
    return this.paginator(raw, raw.items.map(this.presentObject), async (page) => this.presentPage(page));
  }

  /** The SDK's paginator with `items` for its items, turning pages with `turn`. */
  paginator<T>(raw: BasePaginator<unknown>, items: T[], turn: (page: BasePaginator<unknown>) => Promise<Paginator<T>>): Paginator<T> {
    const member = (key: PropertyKey) => {
      if (key === 'items') return items;
      if (key === 'nextPage') return async () => turn(await raw.nextPage());
      if (key === 'prevPage') return async () => turn(await raw.prevPage());
      return FORWARD;
    };
    return intercept(raw as unknown as Paginator<T>, () => raw as unknown as Paginator<T>, member, this.present);
  }

  /**
   * Announces in every subscribed conversation that this identity's devices changed, by updating
   * this participant's attributes (`twilioE2ee.devicesChangedAt`, merged into what is there):
   * contacts' wrappers refresh its cards on the `participantUpdated` event.
   */
  async announceDeviceChange(identity: string): Promise<void> {
    for (let page = await this.raw.getSubscribedConversations(); ; page = await page.nextPage()) {
      for (const conversation of page.items) {
        const self = (await conversation.getParticipants()).find((p) => p.identity === identity);
        if (!self?.updateAttributes) continue;
        const current = typeof self.attributes === 'object' && self.attributes !== null && !Array.isArray(self.attributes) ? (self.attributes as Record<string, JSONValue>) : {};
        await self.updateAttributes({ ...current, twilioE2ee: { devicesChangedAt: Date.now() } }).catch(() => undefined);
      }
      if (!page.hasNextPage) return;
    }
  }

  /** Stops listening and shuts the underlying client down. */
  async shutdown(): Promise<void> {
    await this.engine.then(({ hooks }) => hooks.shutdown(this), () => undefined);
    for (const off of this.detach.splice(0)) off();
    await this.raw.shutdown();
  }
}

const conversationWrappers = new WeakMap<object, ConversationWrapper>();

/** @internal The wrapper behind a wrapped conversation (tests seal and open through it). */
export function conversationWrapperOf(conversation: Conversation): ConversationWrapper {
  const wrapper = conversationWrappers.get(conversation);
  if (!wrapper) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'this conversation does not come from a wrapped client');
  return wrapper;
}

/** One conversation: its intercepted object, its opened messages, and message delivery in index order. */
export class ConversationWrapper {
  readonly proxy: Conversation;
  readonly listeners: AppListeners;
  /** The opened messages the app may hold, by sid: updated in place by later edits. */
  private readonly messages = new Map<string, MessageWrapper>();
  /** Emission chain: listeners get messages one at a time, each after the previous. */
  private chain: Promise<void> = Promise.resolve();
  /** The index the next new message should have; null until the first one arrives. */
  private expectedIndex: number | null = null;
  /** New messages that arrived ahead of a missing index, by index. */
  private readonly ahead = new Map<number, () => void>();
  private gapTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly raw: BaseConversation,
    readonly owner: ClientWrapper,
  ) {
    this.listeners = new AppListeners(() => this.raw, MESSAGE_EVENTS, owner.present, () => this.proxy);
    this.proxy = intercept(raw as unknown as Conversation, () => this.raw as unknown as Conversation, (key) => this.member(key), owner.present);
    conversationWrappers.set(this.proxy, this);
  }

  /** Seals a body and its attributes (or an edit) for everyone in this conversation now, without sending it. */
  async seal(body: unknown, content?: SealContent): Promise<SealedEnvelope> {
    const { crypto } = await this.owner.engine;
    return crypto.seal(this.raw, body, content);
  }

  /** Opens and verifies a message as it would be shown (replay check included), without showing it. */
  async open(raw: BaseMessage): Promise<OpenedBody> {
    return this.admit(raw, await this.decrypt(raw));
  }

  get sid(): string {
    return this.raw.sid;
  }

  private member(key: PropertyKey): unknown {
    const listener = this.listeners.member(key);
    if (listener !== FORWARD) return listener;
    switch (key) {
      case 'sendMessage':
        return (message: unknown, attributes?: JSONValue, emailOptions?: unknown) => this.sendMessage(message, attributes, emailOptions);
      case 'prepareMessage':
        return () => wrapBuilder(this, this.raw.prepareMessage?.());
      case 'getMessages':
        return async (pageSize?: number, anchor?: number, direction?: 'backwards' | 'forward') => {
          const page = await this.raw.getMessages(pageSize, anchor, direction);
          if (anchor === undefined && direction !== 'forward') this.noteNewestPage(page.items);
          return this.page(page);
        };
      case 'add':
        return async (identity: string, attributes?: JSONValue) => {
          const result = await this.raw.add(identity, attributes);
          await this.owner.engine.then(({ hooks }) => hooks.participantsChanged(identity), () => undefined);
          return result;
        };
      default:
        return FORWARD;
    }
  }

  /**
   * Encrypts `body` and `attributes` for every device of every participant (and the sender's
   * other devices) and sends the envelope; see docs/API.md for what is refused.
   */
  async sendMessage(body: unknown, attributes?: JSONValue, emailOptions?: unknown): Promise<number> {
    if (emailOptions !== undefined) refuseContent('email options (a subject, an email body) reach email recipients in the clear');
    if (typeof body !== 'string') refuseContent('media are sent to Twilio as they are: this version encrypts text bodies only');
    const { crypto, hooks } = await this.owner.engine;
    const sealed = await crypto.seal(this.raw, body, { attributes });
    const index = await this.raw.sendMessage(sealed.text, JSON.parse(sealed.payload.clearAttributes ?? '{}') as JSONValue);
    hooks.afterSend(this.raw, sealed, index);
    return index;
  }

  /**
   * Re-encrypts a message's new body or attributes for the current participants, bound to its
   * original and numbered one above the version shown (an older version put back by the service
   * shows failed: ENVELOPE_ROLLBACK). Only the author's own verified messages can be edited.
   */
  async edit(message: MessageWrapper, change: { body?: string; attributes?: JSONValue }): Promise<Message> {
    const { crypto, hooks } = await this.owner.engine;
    const opened = message.opened?.opened;
    if (!opened || opened.signer !== crypto.identity || message.raw.author !== crypto.identity) {
      throw new E2EEError(ErrorCode.NOT_MESSAGE_AUTHOR, "only the author's own verified messages can be edited end-to-end (its body and attributes are signed by the author)");
    }
    const body = change.body ?? message.opened!.body;
    const attributes = change.attributes !== undefined ? change.attributes : (message.opened!.attributes as JSONValue);
    const content: SealContent = { attributes, edit: { of: opened.original, n: opened.edit + 1 } };
    const sealed = await crypto.seal(this.raw, body, content);
    const clear = JSON.parse(sealed.payload.clearAttributes ?? '{}') as JSONValue;
    let updated = await message.raw.updateBody(sealed.text);
    if (JSON.stringify(clear) !== JSON.stringify(message.raw.attributes ?? {}) && message.raw.updateAttributes) {
      updated = await message.raw.updateAttributes(clear);
    }
    hooks.afterEdit(this.sid, message.raw, sealed);
    // The object the app holds shows the edit as soon as it is made. The SDK resolves with the
    // same message, whose body is still the old envelope until its update arrives: the version
    // opened is the one just sealed, as the service now holds it.
    const latest = isMessage(updated as Fields) ? (updated as BaseMessage) : message.raw;
    const asEdited: BaseMessage =
      latest.body === sealed.text ? latest : Object.create(latest, { body: { value: sealed.text }, attributes: { value: clear }, dateUpdated: { value: new Date() } });
    await new Promise<void>((resolve) => this.handOver(asEdited, this.decrypt(asEdited), () => resolve(), latest));
    return message.proxy;
  }

  /** Removes a message; its history copy goes too (the service also deletes it on Twilio's onMessageRemoved). */
  async remove(message: MessageWrapper): Promise<Message> {
    await message.raw.remove?.();
    await this.owner.engine.then(({ hooks }) => hooks.afterRemove(this.sid, message.raw.sid), () => undefined);
    return message.proxy;
  }

  /** A page of opened, verified messages, in the SDK's Paginator. */
  async page(raw: BasePaginator<BaseMessage>): Promise<Paginator<Message>> {
    const { hooks } = await this.owner.engine.catch(() => ({ hooks: null }));
    await hooks?.prefetchRewraps(this.sid, raw.items);
    const decrypted = await Promise.all(raw.items.map((m) => this.decrypt(m)));
    // Replays are decided in page (index) order, not in the order decryption finished.
    const items: Message[] = [];
    for (const [i, m] of raw.items.entries()) {
      const message = this.record(m, await this.admit(m, decrypted[i]!));
      message.announce();
      items.push(message.proxy);
    }
    return this.owner.paginator(raw, items, (next) => this.page(next as BasePaginator<BaseMessage>));
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

  /** Decrypts and verifies (all but the replay check); a device that could not be set up fails the message. */
  private async decrypt(raw: BaseMessage): Promise<OpenedBody> {
    try {
      const { crypto } = await this.owner.engine;
      return await crypto.decrypt(this.sid, raw);
    } catch (err) {
      const error = isE2EEError(err) ? err.toJSON() : { code: ErrorCode.DEVICE_NOT_REGISTERED, message: String((err as Error)?.message ?? err) };
      return { body: FAILED_BODY, attributes: {}, e2ee: { status: 'failed', via: 'direct', error } };
    }
  }

  private async admit(raw: BaseMessage, decrypted: OpenedBody): Promise<OpenedBody> {
    const engine = await this.owner.engine.catch(() => null);
    if (!engine) return decrypted;
    const result = await engine.crypto.admit(this.sid, raw, decrypted);
    if (result.opened && result.e2ee.via === 'direct') engine.hooks.afterVerifiedReceive(raw, result.opened);
    return result;
  }

  /** The app's object for a message, with its latest opened version. */
  private record(raw: BaseMessage, opened: OpenedBody): MessageWrapper {
    let message = this.messages.get(raw.sid);
    if (!message) this.messages.set(raw.sid, (message = new MessageWrapper(raw, opened, this)));
    else message.show(raw, opened);
    return message;
  }

  /** The app's object for a message reached through a pass-through member; opened now if it was not yet. */
  known(raw: BaseMessage): MessageWrapper {
    const message = this.messages.get(raw.sid);
    if (message) return message;
    const placeholder = new MessageWrapper(raw, null, this);
    this.messages.set(raw.sid, placeholder);
    this.enqueue(raw, () => undefined);
    return placeholder;
  }

  /** Opens a message and hands it over after every earlier one. */
  enqueue(raw: BaseMessage, emit: (message: MessageWrapper) => void): void {
    this.handOver(raw, this.decrypt(raw), emit);
  }

  /**
   * After every earlier hand-over: the replay check, then the app's object shows the version
   * (recorded under `shown`, the real message, when `raw` is a view of it) and `emit` gets it.
   */
  private handOver(raw: BaseMessage, decrypted: Promise<OpenedBody>, emit: (message: MessageWrapper) => void, shown: BaseMessage = raw): void {
    this.chain = this.chain.then(async () => emit(this.record(shown, await this.admit(raw, await decrypted))));
  }

  /** A removed message: handed over with the content last shown (opened first if it never was). */
  enqueueRemoved(raw: BaseMessage, emit: (message: MessageWrapper) => void): void {
    const shown = this.messages.get(raw.sid);
    const decrypted = shown?.opened ? null : this.decrypt(raw);
    this.chain = this.chain.then(async () => {
      const message = shown?.opened ? shown : this.record(raw, await this.admit(raw, await decrypted!));
      this.messages.delete(raw.sid);
      emit(message);
    });
  }

  /**
   * A new message: emitted in index order. One that arrives ahead of a missing index waits up to
   * GAP_WAIT_MS for it; then the gap is reported (`messageGap` on the E2EE client) and delivery
   * goes on. Decryption starts at once either way; only the hand-over to listeners (and the replay
   * check) waits.
   */
  enqueueNew(raw: BaseMessage, emit: (message: MessageWrapper) => void): void {
    const expected = this.expectedIndex ?? raw.index;
    if (raw.index < expected) {
      this.enqueue(raw, emit); // late (after a reported gap) or re-delivered: still shown, never hidden
      return;
    }
    const decrypted = this.decrypt(raw);
    this.ahead.set(raw.index, () => this.handOver(raw, decrypted, emit));
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
      const gap: MessageGap = { conversation: this.proxy, from: this.expectedIndex!, to: next - 1 };
      this.chain = this.chain.then(() => this.owner.engine.then(({ hooks }) => hooks.gap(gap), () => undefined));
      this.expectedIndex = next;
      this.releaseInOrder();
    }, GAP_WAIT_MS);
  }
}
