/**
 * LocalConversationsClient: the local relay's client (local mode, no Twilio account). It offers
 * the subset of the @twilio/conversations Client API that the E2EE wrapper uses, without any
 * encryption of its own, so the wrapper runs unchanged on the relay and on Twilio. It is also the
 * conversations fake in tests: a real client of a real relay.
 */
import {
  RELAY_CLOSE,
  type RelayConversationData,
  type RelayEventName,
  type RelayEvents,
  type RelayMessageData,
  type RelayOp,
  type RelayOps,
  type RelayParticipantData,
  type RelayPush,
  type RelayResponse,
} from '../../shared/relay-protocol.js';
import type { BaseClient, BaseConversation, BaseMessage, BaseMessageBuilder, BasePaginator, BaseParticipant, JSONValue } from '../conversations.js';
import { Emitter } from '../emitter.js';

/** An error answered by the relay, with its stable code. */
export class RelayRequestError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'RelayRequestError';
  }
}

type WebSocketLike = {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: { data?: unknown; code?: number }) => void): void;
};
type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface LocalConnectOptions {
  relayUrl: string;
  token: string;
  /** A WebSocket implementation; default the global one, else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
}

export type LocalConnectionState = 'connecting' | 'connected' | 'disconnecting' | 'disconnected' | 'denied';

export class LocalParticipant implements BaseParticipant {
  readonly sid: string;
  readonly identity: string;
  readonly type = 'chat';
  readonly conversationSid: string;
  readonly dateCreated: Date;
  attributes: JSONValue;
  constructor(
    data: RelayParticipantData,
    private readonly client: LocalConversationsClient,
    /** The conversation, as the SDK links it (absent for a push about a conversation this client does not hold). */
    readonly conversation?: LocalConversation,
  ) {
    this.sid = data.sid;
    this.identity = data.identity;
    this.conversationSid = data.conversationSid;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
  }
  /** Replaces this participant's attributes; only the participant itself may (FORBIDDEN otherwise). */
  async updateAttributes(attributes: JSONValue): Promise<this> {
    const data = await this.client.request('updateParticipantAttributes', { conversationSid: this.conversationSid, identity: this.identity, attributes });
    this.attributes = data.attributes as JSONValue;
    return this;
  }
}

export class LocalMessage implements BaseMessage {
  readonly sid: string;
  readonly index: number;
  readonly author: string;
  readonly body: string;
  readonly attributes: JSONValue;
  readonly dateCreated: Date;
  readonly dateUpdated: Date | null;
  constructor(
    data: RelayMessageData,
    readonly conversation: LocalConversation,
  ) {
    this.sid = data.sid;
    this.index = data.index;
    this.author = data.author;
    this.body = data.body;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
    this.dateUpdated = data.dateUpdated === null ? null : new Date(data.dateUpdated);
  }
  async updateBody(body: string): Promise<LocalMessage> {
    return this.conversation.updateMessageBody(this.sid, body);
  }
}

class LocalPaginator<T> implements BasePaginator<T> {
  constructor(
    readonly items: T[],
    readonly hasPrevPage: boolean,
    readonly hasNextPage: boolean,
    private readonly fetchPrev: () => Promise<BasePaginator<T>>,
    private readonly fetchNext: () => Promise<BasePaginator<T>>,
  ) {}
  prevPage(): Promise<BasePaginator<T>> {
    if (!this.hasPrevPage) return Promise.reject(new Error('no previous page'));
    return this.fetchPrev();
  }
  nextPage(): Promise<BasePaginator<T>> {
    if (!this.hasNextPage) return Promise.reject(new Error('no next page'));
    return this.fetchNext();
  }
}

class LocalMessageBuilder implements BaseMessageBuilder {
  private body = '';
  private attributes: JSONValue | undefined;
  constructor(private readonly conversation: LocalConversation) {}
  setBody(text: string): this {
    this.body = text;
    return this;
  }
  setAttributes(attributes: JSONValue): this {
    this.attributes = attributes;
    return this;
  }
  build(): { send(): Promise<number> } {
    const { body, attributes } = this;
    return { send: () => this.conversation.sendMessage(body, attributes) };
  }
}

export interface LocalConversationEvents {
  messageAdded(message: LocalMessage): void;
  messageUpdated(data: { message: LocalMessage; updateReasons: string[] }): void;
  participantJoined(participant: LocalParticipant): void;
  participantLeft(participant: LocalParticipant): void;
  participantUpdated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
}

export class LocalConversation extends Emitter<LocalConversationEvents> implements BaseConversation {
  readonly sid: string;
  readonly uniqueName: string | null;
  readonly friendlyName: string | null;
  readonly createdBy: string;
  readonly attributes: JSONValue;
  readonly dateCreated: Date;
  /** The highest message index seen in a page, so a reconnect can fetch what it missed. */
  lastSeenIndex = -1;
  /** The highest index delivered as messageAdded: a push is never delivered twice. */
  lastDeliveredIndex = -1;
  /** Whether the app has read or received messages here: only then does a reconnect catch up. */
  observed = false;

  constructor(
    data: RelayConversationData,
    private readonly client: LocalConversationsClient,
  ) {
    super();
    this.sid = data.sid;
    this.uniqueName = data.uniqueName;
    this.friendlyName = data.friendlyName;
    this.createdBy = data.createdBy;
    this.attributes = data.attributes as JSONValue;
    this.dateCreated = new Date(data.dateCreated);
  }

  async join(): Promise<this> {
    await this.client.request('join', { conversationSid: this.sid });
    return this;
  }
  async add(identity: string): Promise<LocalParticipant> {
    return new LocalParticipant(await this.client.request('add', { conversationSid: this.sid, identity }), this.client, this);
  }
  async removeParticipant(identity: string): Promise<void> {
    await this.client.request('removeParticipant', { conversationSid: this.sid, identity });
  }
  async getParticipants(): Promise<LocalParticipant[]> {
    return (await this.client.request('getParticipants', { conversationSid: this.sid })).map((p) => new LocalParticipant(p, this.client, this));
  }
  async sendMessage(body: string, attributes?: JSONValue): Promise<number> {
    const message = await this.client.request('sendMessage', { conversationSid: this.sid, body, attributes });
    return message.index;
  }
  prepareMessage(): LocalMessageBuilder {
    return new LocalMessageBuilder(this);
  }
  async updateMessageBody(messageSid: string, body: string): Promise<LocalMessage> {
    return new LocalMessage(await this.client.request('updateMessageBody', { conversationSid: this.sid, messageSid, body }), this);
  }
  async getMessages(pageSize = 30, anchor?: number, direction: 'backwards' | 'forward' = 'backwards'): Promise<BasePaginator<LocalMessage>> {
    const page = await this.client.request('getMessages', { conversationSid: this.sid, pageSize, anchor, direction });
    this.observed = true;
    const items = page.items.map((m) => new LocalMessage(m, this));
    for (const m of items) this.lastSeenIndex = Math.max(this.lastSeenIndex, m.index);
    const first = items[0]?.index ?? 0;
    const last = items[items.length - 1]?.index ?? 0;
    return new LocalPaginator(
      items,
      page.hasPrev,
      page.hasNext,
      () => this.getMessages(pageSize, first - 1, 'backwards'),
      () => this.getMessages(pageSize, last + 1, 'forward'),
    );
  }

  /** @internal Called by the client for pushes about this conversation. */
  deliver<K extends keyof LocalConversationEvents>(event: K, ...args: Parameters<LocalConversationEvents[K]>): void {
    this.emit(event, ...args);
  }
}

export interface LocalClientEvents {
  conversationAdded(conversation: LocalConversation): void;
  conversationJoined(conversation: LocalConversation): void;
  conversationRemoved(conversation: LocalConversation): void;
  messageAdded(message: LocalMessage): void;
  messageUpdated(data: { message: LocalMessage; updateReasons: string[] }): void;
  participantJoined(participant: LocalParticipant): void;
  participantLeft(participant: LocalParticipant): void;
  participantUpdated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
  connectionStateChanged(state: LocalConnectionState): void;
  tokenAboutToExpire(): void;
  tokenExpired(): void;
}

const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 5000, 10000];

export class LocalConversationsClient extends Emitter<LocalClientEvents> implements BaseClient {
  connectionState: LocalConnectionState = 'connecting';
  /** The authenticated identity. */
  identity = '';
  private socket: WebSocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly conversations = new Map<string, LocalConversation>();
  private pushQueue: Promise<void> = Promise.resolve();
  private closedByUser = false;
  /** The relay ended the session at token expiry: reconnecting waits for updateToken. */
  private awaitingToken = false;
  private reconnectAttempt = 0;

  private constructor(
    private readonly relayUrl: string,
    private token: string,
    private readonly WebSocketImpl: WebSocketConstructor,
  ) {
    super();
  }

  /** Connects and authenticates; rejects when the relay refuses the token. */
  static async connect(options: LocalConnectOptions): Promise<LocalConversationsClient> {
    const WebSocketImpl =
      options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      ((await import('ws')).default as unknown as WebSocketConstructor);
    const client = new LocalConversationsClient(options.relayUrl, options.token, WebSocketImpl);
    await client.open();
    return client;
  }

  private setState(state: LocalConnectionState): void {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit('connectionStateChanged', state);
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new this.WebSocketImpl(this.relayUrl);
      this.socket = socket;
      let opened = false;
      socket.addEventListener('open', () => {
        opened = true;
        this.request('auth', { token: this.token }).then(
          (result) => {
            this.identity = result.identity;
            this.reconnectAttempt = 0;
            this.setState('connected');
            resolve();
          },
          (err: Error) => {
            // Only the relay's explicit refusal is final; a dropped connection is retried.
            if (err instanceof RelayRequestError && err.code === 'UNAUTHORIZED') {
              this.setState('denied');
              this.closedByUser = true;
            }
            socket.close(4001, 'authentication failed');
            reject(err);
          },
        );
      });
      socket.addEventListener('message', (event) => this.onFrame(String(event.data)));
      socket.addEventListener('error', () => {
        if (!opened) reject(new RelayRequestError('NETWORK_ERROR', `cannot connect to the relay at ${this.relayUrl}`));
      });
      socket.addEventListener('close', (event) => this.onClose(socket, event.code));
    });
  }

  private onClose(socket: WebSocketLike, code: number | undefined): void {
    if (socket !== this.socket) return;
    for (const { reject } of this.pending.values()) reject(new RelayRequestError('DISCONNECTED', 'the relay connection closed'));
    this.pending.clear();
    if (this.closedByUser) {
      if (this.connectionState !== 'denied') this.setState('disconnected');
      return;
    }
    if (code === RELAY_CLOSE.tokenExpired) {
      // The same token would be refused: updateToken reconnects (the SDK's tokenExpired).
      this.awaitingToken = true;
      this.setState('disconnected');
      this.emit('tokenExpired');
      return;
    }
    this.setState('connecting');
    const delay = RECONNECT_DELAYS_MS[Math.min(this.reconnectAttempt++, RECONNECT_DELAYS_MS.length - 1)]!;
    setTimeout(() => {
      if (this.closedByUser || this.awaitingToken) return;
      this.open().then(
        () => this.catchUp(),
        () => undefined, // onClose schedules the next attempt
      );
    }, delay);
  }

  /** After a reconnect: fetch and deliver what arrived while disconnected, in order. */
  private async catchUp(): Promise<void> {
    for (const conversation of this.conversations.values()) {
      // A conversation the app never read: it pages its history when it opens it.
      if (!conversation.observed) continue;
      try {
        let page = await conversation.getMessages(100, Math.max(conversation.lastSeenIndex, conversation.lastDeliveredIndex) + 1, 'forward');
        for (;;) {
          for (const m of page.items as LocalMessage[]) if (m.index > conversation.lastDeliveredIndex) this.deliverMessage(m);
          if (!page.hasNextPage) break;
          page = await page.nextPage();
        }
      } catch {
        // not a participant any more, or disconnected again: the next reconnect retries
      }
    }
  }

  private deliverMessage(message: LocalMessage): void {
    message.conversation.observed = true;
    message.conversation.lastDeliveredIndex = Math.max(message.conversation.lastDeliveredIndex, message.index);
    message.conversation.deliver('messageAdded', message);
    this.emit('messageAdded', message);
  }

  private onFrame(text: string): void {
    let frame: RelayResponse | RelayPush;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if ('event' in frame) {
      // Pushes are handled strictly in arrival order, even when one needs a fetch first.
      this.pushQueue = this.pushQueue.then(() => this.onPush(frame as RelayPush)).catch(() => undefined);
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    this.pending.delete(frame.id);
    if (frame.ok) pending.resolve(frame.result);
    else pending.reject(new RelayRequestError(frame.error.code, frame.error.message));
  }

  private async onPush(push: RelayPush): Promise<void> {
    const { event, data } = push as { event: RelayEventName; data: RelayEvents[RelayEventName] };
    switch (event) {
      case 'messageAdded': {
        const d = data as RelayMessageData;
        const conversation = await this.conversationFor(d.conversationSid);
        if (d.index > conversation.lastDeliveredIndex) this.deliverMessage(new LocalMessage(d, conversation));
        break;
      }
      case 'messageUpdated': {
        const d = data as RelayMessageData;
        const conversation = await this.conversationFor(d.conversationSid);
        const update = { message: new LocalMessage(d, conversation), updateReasons: ['body'] };
        conversation.deliver('messageUpdated', update);
        this.emit('messageUpdated', update);
        break;
      }
      case 'participantJoined':
      case 'participantLeft': {
        const d = data as RelayParticipantData;
        const conversation = this.conversations.get(d.conversationSid);
        const participant = new LocalParticipant(d, this, conversation);
        conversation?.deliver(event, participant);
        this.emit(event, participant);
        break;
      }
      case 'participantUpdated': {
        const d = data as RelayParticipantData;
        const conversation = await this.conversationFor(d.conversationSid);
        const update = { participant: new LocalParticipant(d, this, conversation), updateReasons: ['attributes'] };
        conversation.deliver('participantUpdated', update);
        this.emit('participantUpdated', update);
        break;
      }
      case 'conversationAdded': {
        const d = data as RelayConversationData;
        const conversation = this.conversationObject(d);
        this.emit('conversationAdded', conversation);
        this.emit('conversationJoined', conversation);
        break;
      }
      case 'conversationRemoved': {
        const sid = (data as { conversationSid: string }).conversationSid;
        const conversation = this.conversations.get(sid);
        this.conversations.delete(sid);
        if (conversation) this.emit('conversationRemoved', conversation);
        break;
      }
      case 'tokenAboutToExpire':
        this.emit('tokenAboutToExpire');
        break;
    }
  }

  /** @internal Sends a request and resolves with its result. */
  request<K extends RelayOp>(op: K, params: RelayOps[K][0]): Promise<RelayOps[K][1]> {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) {
      return Promise.reject(new RelayRequestError('DISCONNECTED', 'not connected to the relay'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      socket.send(JSON.stringify({ id, op, params }));
    });
  }

  private conversationObject(data: RelayConversationData): LocalConversation {
    let conversation = this.conversations.get(data.sid);
    if (!conversation) this.conversations.set(data.sid, (conversation = new LocalConversation(data, this)));
    return conversation;
  }

  private async conversationFor(sid: string): Promise<LocalConversation> {
    return this.conversations.get(sid) ?? this.conversationObject(await this.request('getConversation', { sid }));
  }

  async createConversation(options: { uniqueName?: string; friendlyName?: string; attributes?: JSONValue } = {}): Promise<LocalConversation> {
    return this.conversationObject(await this.request('createConversation', options));
  }

  async getConversationBySid(sid: string): Promise<LocalConversation> {
    return this.conversationFor(sid);
  }

  async getConversationByUniqueName(uniqueName: string): Promise<LocalConversation> {
    return this.conversationObject(await this.request('getConversation', { sid: uniqueName }));
  }

  async getSubscribedConversations(): Promise<BasePaginator<LocalConversation>> {
    return this.conversationsPage(undefined);
  }

  private async conversationsPage(pageToken: number | undefined): Promise<BasePaginator<LocalConversation>> {
    const page = await this.request('listConversations', pageToken === undefined ? {} : { pageToken });
    const items = page.items.map((c) => this.conversationObject(c));
    const next = page.nextPageToken;
    const none = () => Promise.reject(new Error('no more pages'));
    return new LocalPaginator(items, false, next !== null, none, next === null ? none : () => this.conversationsPage(next));
  }

  /**
   * Hands the relay a fresh token. Connected: the session goes on under it. After the relay ended
   * the session at token expiry: reconnects with it (and catches up). While reconnecting: the
   * next attempt uses it.
   */
  async updateToken(token: string): Promise<this> {
    if (this.awaitingToken) {
      this.awaitingToken = false;
      this.token = token;
      this.setState('connecting');
      await this.open();
      void this.catchUp();
      return this;
    }
    if (this.socket?.readyState !== 1) {
      this.token = token;
      return this;
    }
    await this.request('updateToken', { token });
    this.token = token;
    return this;
  }

  async shutdown(): Promise<void> {
    this.closedByUser = true;
    this.setState('disconnecting');
    this.socket?.close(1000, 'shutdown');
  }
}
