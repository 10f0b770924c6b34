/**
 * One wrapped conversation: its intercepted object (sends sealed, edits re-sealed, pages opened)
 * and the delivery of its messages to the app, opened, in index order.
 */
import type { Conversation, Message, Paginator } from '@twilio/conversations';
import type { SealedEnvelope } from '../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { BaseConversation, BaseMessage, BasePaginator, JSONValue } from './conversations.js';
import { AppListeners, FORWARD, intercept } from './intercept.js';
import { FAILED_BODY, type OpenedBody, type SealContent } from './message-crypto.js';
import { MessageWrapper, refuseContent, wrapBuilder } from './wrapped-message.js';
import type { ClientWrapper } from './wrapper.js';

/** How long a message that arrived ahead of a missing index waits for it. */
export const GAP_WAIT_MS = 1500;

/** Indexes [from, to] never arrived (deleted, or withheld by the service). */
export interface MessageGap {
  conversation: Conversation;
  from: number;
  to: number;
}

/** The events whose payload carries a message: emitted by the wrapper once the message is opened. */
export const MESSAGE_EVENTS = new Set(['messageAdded', 'messageUpdated', 'messageRemoved']);

type Fields = Record<PropertyKey, unknown>;
export const isMessage = (v: Fields) => typeof v.updateBody === 'function' && typeof v.index === 'number';

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
    if (typeof body === 'object' && body !== null) return this.sendFiles('', attributes, [body]);
    if (typeof body !== 'string') refuseContent('a message body must be text, or a file ({contentType, filename, media})');
    const { crypto, hooks } = await this.owner.engine;
    const sealed = await crypto.seal(this.raw, body, { attributes });
    const index = await this.raw.sendMessage(sealed.text, JSON.parse(sealed.payload.clearAttributes ?? '{}') as JSONValue);
    hooks.afterSend(this.raw, sealed, index);
    return index;
  }

  /** Sends text and files as one message, each file encrypted into an opaque blob (client/attachment-send.ts). */
  async sendFiles(body: string, attributes: JSONValue | undefined, files: readonly unknown[]): Promise<number> {
    const { sendWithFiles } = await import('./on-demand.js');
    return sendWithFiles(this, body, attributes, files);
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
    // Twilio keeps a message's media across an edit: the edit signs the same files again.
    const content: SealContent = { attributes, edit: { of: opened.original, n: opened.edit + 1 }, attachments: message.opened!.attachments };
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
      return { body: FAILED_BODY, attributes: {}, e2ee: { status: 'failed', via: 'direct', error }, attachments: [] };
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
