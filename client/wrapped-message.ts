/**
 * The wrapped message (plaintext `body`, `e2ee` status) and the paginator that maps the SDK's
 * pages to wrapped items.
 */
import type { BaseMessage, BasePaginator, JSONValue } from './conversations.js';
import type { E2EEInfo, OpenedBody } from './message-crypto.js';
import type { E2EEConversation } from './wrapper.js';

/** A message as the app sees it: plaintext `body`, and `e2ee` telling how it was verified. */
export class E2EEMessage {
  readonly sid: string;
  readonly index: number;
  readonly author: string | null;
  readonly body: string | null;
  readonly attributes: unknown;
  readonly dateCreated: Date | null;
  readonly dateUpdated: Date | null;
  readonly e2ee: E2EEInfo;
  /** The version shown, for edits: its original messageId and edit counter. */
  private readonly version: { of: string; n: number } | undefined;

  constructor(
    /** The SDK's message: its body is the envelope, exactly what Twilio stores. */
    readonly raw: BaseMessage,
    readonly conversation: E2EEConversation,
    opened: OpenedBody,
  ) {
    this.sid = raw.sid;
    this.index = raw.index;
    this.author = raw.author;
    this.attributes = opened.attributes;
    this.dateCreated = raw.dateCreated;
    this.dateUpdated = raw.dateUpdated;
    this.body = opened.body;
    this.e2ee = opened.e2ee;
    this.version = opened.opened && { of: opened.opened.original, n: opened.opened.edit };
  }

  /**
   * Re-encrypts the new body, with the message's attributes, for the current participants and
   * updates the message. The edit is bound to the original message and numbered one above the
   * version shown, so an older version put back by the service shows failed (ENVELOPE_ROLLBACK).
   */
  async updateBody(body: string): Promise<void> {
    const edit = this.version && { of: this.version.of, n: this.version.n + 1 };
    const sealed = await this.conversation.sealBody(body, { attributes: this.attributes as JSONValue, ...(edit && { edit }) });
    await this.raw.updateBody(sealed.text);
  }
}

/** @internal The SDK's Paginator over wrapped items: each page mapped as it is fetched. */
export class WrappedPaginator<T> implements BasePaginator<T> {
  constructor(
    readonly items: T[],
    private readonly raw: BasePaginator<unknown>,
    private readonly mapPage: (page: BasePaginator<unknown>) => Promise<BasePaginator<T>>,
  ) {}
  get hasNextPage(): boolean {
    return this.raw.hasNextPage;
  }
  get hasPrevPage(): boolean {
    return this.raw.hasPrevPage;
  }
  async nextPage(): Promise<BasePaginator<T>> {
    return this.mapPage(await this.raw.nextPage());
  }
  async prevPage(): Promise<BasePaginator<T>> {
    return this.mapPage(await this.raw.prevPage());
  }
}
