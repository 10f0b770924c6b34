/**
 * The wrapped message (plaintext `body`, `e2ee` status) and the paginator that maps the SDK's
 * pages to wrapped items.
 */
import type { BaseMessage, BasePaginator } from './conversations.js';
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

  constructor(
    /** The SDK's message: its body is the envelope, exactly what Twilio stores. */
    readonly raw: BaseMessage,
    readonly conversation: E2EEConversation,
    opened: OpenedBody,
  ) {
    this.sid = raw.sid;
    this.index = raw.index;
    this.author = raw.author;
    this.attributes = raw.attributes;
    this.dateCreated = raw.dateCreated;
    this.dateUpdated = raw.dateUpdated;
    this.body = opened.body;
    this.e2ee = opened.e2ee;
  }

  /** Re-encrypts the new body for the current participants and updates the message. */
  async updateBody(body: string): Promise<void> {
    const sealed = await this.conversation.sealBody(body);
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
