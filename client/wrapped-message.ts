/**
 * Messages as the app sees them (the SDK's Message, intercepted: plaintext `body`, signed
 * `attributes`, `e2ee`), and the SDK's MessageBuilder, intercepted so that what it sends is
 * sealed and what cannot be encrypted is refused.
 */
import type { Message, MessageBuilder, UnsentMessage } from '@twilio/conversations';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { receivedAttachments } from './attachment.js';
import type { BaseMessage, JSONValue } from './conversations.js';
import { AppListeners, FORWARD, intercept } from './intercept.js';
import type { E2EEInfo, OpenedBody } from './message-crypto.js';
import type { ConversationWrapper } from './wrapped-conversation.js';

/** The `updated` event of a message is emitted by the wrapper, once the new version is opened. */
const MESSAGE_OBJECT_EVENTS = new Set(['updated']);

/** One message the app may hold: its latest real object and opened version. */
export class MessageWrapper {
  readonly proxy: Message;
  readonly listeners: AppListeners;

  constructor(
    /** The SDK's message: its body is the envelope, exactly what Twilio stores. */
    public raw: BaseMessage,
    /** The version shown; null while a message reached outside the wrapper's own paths is being opened. */
    public opened: OpenedBody | null,
    private readonly conversation: ConversationWrapper,
  ) {
    const present = conversation.owner.present;
    this.listeners = new AppListeners(() => this.raw as never, MESSAGE_OBJECT_EVENTS, present, () => this.proxy);
    this.proxy = intercept(raw as unknown as Message, () => this.raw as unknown as Message, (key) => this.member(key), present);
  }

  /** Shows a newer version (an edit, or the relay's fresh object for the same message). */
  show(raw: BaseMessage, opened: OpenedBody): void {
    this.raw = raw;
    this.opened = opened;
  }

  /** The content last announced to the app's listeners, to say what an update changed. */
  private announced: { body: string | null; attributes: string } | null = null;

  /**
   * The update reasons for the app: Twilio sees an edit of the attributes as a change of the body
   * (the envelope), so `body` and `attributes` are decided on the opened content, against what
   * was last announced; the other reasons (delivery receipts, ...) are Twilio's, and so are all of
   * them when the opened content did not change.
   */
  updateReasons(transport: readonly string[]): string[] {
    const now = this.content();
    const before = this.announced;
    this.announced = now;
    if (!before) return [...transport];
    const reasons = transport.filter((r) => r !== 'body' && r !== 'attributes');
    if (before.body !== now.body) reasons.unshift('body');
    if (before.attributes !== now.attributes) reasons.push('attributes');
    // Nothing the app sees changed (the same attributes set again): Twilio's reasons, as they are.
    return reasons.length > 0 ? reasons : [...transport];
  }

  /** Notes the content the app was handed (a new message, a page): later updates are told against it. */
  announce(): void {
    this.announced ??= this.content();
  }

  /** `e2ee` for the version shown: one object per version, its attachments matched to the media of the message it came in. */
  private info: { opened: OpenedBody; raw: BaseMessage; e2ee: E2EEInfo } | null = null;

  e2ee(): E2EEInfo | undefined {
    const { opened, raw } = this;
    if (!opened) return undefined;
    if (this.info?.opened !== opened || this.info.raw !== raw) this.info = { opened, raw, e2ee: { ...opened.e2ee, attachments: receivedAttachments(raw, opened.attachments) } };
    return this.info.e2ee;
  }

  private content(): { body: string | null; attributes: string } {
    return { body: this.opened?.body ?? null, attributes: JSON.stringify(this.opened?.attributes ?? {}) };
  }

  private member(key: PropertyKey): unknown {
    const listener = this.listeners.member(key);
    if (listener !== FORWARD) return listener;
    switch (key) {
      case 'body':
        return this.opened?.body ?? null;
      case 'attributes':
        return this.opened ? this.opened.attributes : {};
      case 'e2ee':
        return this.e2ee();
      case 'conversation':
        return this.conversation.proxy;
      case 'updateBody':
        return (body: string) => {
          if (typeof body !== 'string') return Promise.reject(new E2EEError(ErrorCode.INVALID_ARGUMENT, 'a message body must be a string'));
          return this.conversation.edit(this, { body });
        };
      case 'updateAttributes':
        return (attributes: JSONValue) => this.conversation.edit(this, { attributes });
      case 'remove':
        return () => this.conversation.remove(this);
      default:
        return FORWARD;
    }
  }
}

/** Refuses content that cannot be encrypted, naming why; nothing is sent. */
export function refuseContent(why: string): never {
  throw new E2EEError(ErrorCode.UNSUPPORTED_CONTENT, `refused, nothing was sent: ${why}`);
}

/**
 * The SDK's MessageBuilder, intercepted: setBody, setAttributes and addMedia are kept for the
 * sealed send (files encrypted, client/attachment-send.ts); subjects, email bodies and content
 * templates are refused at once (they would reach email recipients in the clear, or Twilio would
 * render them). Any other member is the real builder's, whose own content is never sent: what
 * the builder sends is only what the wrapper sealed.
 */
export function wrapBuilder(conversation: ConversationWrapper, raw: unknown): MessageBuilder {
  let body: string | null = null;
  let attributes: JSONValue | undefined;
  const files: unknown[] = [];
  const send = () => (files.length > 0 ? conversation.sendFiles(body ?? '', attributes, files) : conversation.sendMessage(body ?? '', attributes));
  const cancellable = <T>(promise: Promise<T>) => Object.assign(promise, { cancel: () => undefined });
  const target = (raw ?? {}) as MessageBuilder;
  const builder: MessageBuilder = intercept(
    target,
    () => target,
    (key) => {
      switch (key) {
        case 'setBody':
          return (text: string) => ((body = text), builder);
        case 'setAttributes':
          return (value: JSONValue) => ((attributes = value), builder);
        case 'addMedia':
          return (file: unknown) => (files.push(file), builder);
        case 'setSubject':
          return () => refuseContent('a subject reaches email recipients in the clear');
        case 'setEmailBody':
        case 'setEmailHistory':
          return () => refuseContent('an email body reaches email recipients in the clear');
        case 'setContentTemplate':
        case 'setContentVariables':
          return () => refuseContent('content templates are rendered by Twilio, which would read them');
        case 'build':
          return (): UnsentMessage => {
            // The SDK's own UnsentMessage, whose send() is the sealed send.
            const real = (target.build?.() ?? {}) as UnsentMessage;
            return intercept(real, () => real, (k) => (k === 'send' ? () => cancellable(send()) : FORWARD), conversation.owner.present);
          };
        case 'buildAndSend':
          return () => cancellable(send());
        default:
          return FORWARD;
      }
    },
    conversation.owner.present,
  );
  return builder;
}

/**
 * How a message of a wrapped client was verified: the same as `message.e2ee`, typed without
 * `undefined`. Throws INVALID_ARGUMENT for a message that does not come from a wrapped client.
 */
export function e2eeInfo(message: Message): E2EEInfo {
  const info = (message as { e2ee?: E2EEInfo }).e2ee;
  if (!info) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'this message does not come from a wrapped client (or is still being opened)');
  return info;
}
