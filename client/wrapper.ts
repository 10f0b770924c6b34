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
import type { Client, Paginator, Participant } from '@twilio/conversations';
import type { SealedEnvelope } from '../shared/envelope.js';
import type { BaseClient, BaseConversation, BaseMessage, BasePaginator, BaseParticipant, JSONValue } from './conversations.js';
import { AppListeners, FORWARD, intercept, isIntercepted, type Present } from './intercept.js';
import type { AttachmentProgress } from './attachment-send.js';
import type { AttachmentPreview } from './attachment.js';
import type { MessageCrypto, OpenedBody } from './message-crypto.js';

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
  /**
   * A participant joined, left, or announced that its devices changed: its cards are looked up
   * afresh. `joined`: the conversation it joined (the recipient audit remembers who was in it).
   */
  participantsChanged(identity: string | null, joined?: string): void;
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
  /** A thumbnail for an image file about to be sent (the attachmentPreview option), or none. */
  attachmentPreview(file: Blob): Promise<AttachmentPreview | undefined>;
  /** A file of a message being sent moved on. */
  attachmentProgress(progress: AttachmentProgress): void;
}

export { conversationWrapperOf, GAP_WAIT_MS, type MessageGap } from './wrapped-conversation.js';
import { ConversationWrapper, isMessage, MESSAGE_EVENTS, type MessageGap } from './wrapped-conversation.js';

/** initFailed also reports a failed device setup (a synchronous wrap that could not register). */
const CLIENT_WRAPPER_EVENTS = new Set([...MESSAGE_EVENTS, 'initFailed']);
const NO_EVENTS = new Set<string>();

type Fields = Record<PropertyKey, unknown>;
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
  /** Files being uploaded, by their neutral name: where the relay's upload progress goes. */
  readonly uploads = new Map<string, (loaded: number, total: number) => void>();

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
    const cardsChanged = (identity: string | null, joined?: string) => void this.engine.then(({ hooks }) => hooks.participantsChanged(identity, joined), () => undefined);
    // The SDK's and the relay's participants link their conversation.
    this.listen('participantJoined', (p: BaseParticipant & { conversation?: { sid?: string } }) => cardsChanged(p.identity, p.conversation?.sid));
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
    // The local relay reports upload progress by the blob's neutral name (the SDK reports none).
    this.listen('mediaUploadProgress', (p: { filename?: string; loaded?: number; total?: number }) => {
      if (typeof p?.filename === 'string' && typeof p.loaded === 'number' && typeof p.total === 'number') this.uploads.get(p.filename)?.(p.loaded, p.total);
    });
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

