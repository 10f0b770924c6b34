/**
 * LocalConversationsClient: the local relay's client (local mode, no Twilio account). It and its
 * conversations, messages, participants and users have every public member of the
 * @twilio/conversations classes, with the SDK's names, event payloads and semantics where the
 * relay can give them, media included (relay-media.ts); what the relay does not carry (push
 * notifications, user profiles, email and SMS) is answered as the SDK answers when the feature is
 * not in use, or refused with RELAY_UNSUPPORTED (relay-unsupported.ts). No encryption of its own:
 * the wrapper runs unchanged on the relay and on Twilio. It is also the conversations fake in
 * tests: a real client of a real relay.
 */
import {
  RELAY_CLOSE,
  type RelayConversationData,
  type RelayMediaData,
  type RelayOp,
  type RelayOps,
  type RelayPush,
  type RelayResponse,
} from '../../shared/relay-protocol.js';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import type { BaseClient, BasePaginator, JSONValue } from '../conversations.js';
import { LocalParticipant, LocalMessage, LocalConversation, LocalPaginator, type LocalConversationEvents } from './relay-conversation.js';
import { LocalEmitter } from './relay-emitter.js';
import { mediaSidsOf, upload, type MediaUploadProgress, type prepareUploads } from './relay-media.js';
import { applyPush, catchUp, type PushTarget } from './relay-pushes.js';
import { cancellable, unsupported } from './relay-unsupported.js';
import { LocalUser, LocalUsers } from './relay-user.js';

export { LocalConversation, LocalMessage, LocalParticipant, type LocalConversationEvents } from './relay-conversation.js';
export { LocalMedia, type LocalMediaInput, type LocalSendMediaOptions, type MediaUploadProgress } from './relay-media.js';
export { LocalUser } from './relay-user.js';

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
  /**
   * A WebSocket implementation; default the global one, else the `ws` package where the Node
   * entry (`twilio-e2ee/client/node`) is loaded.
   */
  WebSocket?: WebSocketConstructor;
}

/**
 * Set by the Node entry (client/node.ts) to the `ws` package, for runtimes without a global
 * WebSocket (Node 20). Imported there, not here, so that browser bundles never see `ws`.
 */
let nodeWebSocket: WebSocketConstructor | undefined;

/** Called by client/node.ts; not part of the public API. */
export function setNodeWebSocket(impl: WebSocketConstructor): void {
  nodeWebSocket = impl;
}

export type LocalConnectionState = 'connecting' | 'connected' | 'disconnecting' | 'disconnected' | 'denied';

export interface LocalClientEvents {
  conversationAdded(conversation: LocalConversation): void;
  conversationJoined(conversation: LocalConversation): void;
  conversationLeft(conversation: LocalConversation): void;
  conversationRemoved(conversation: LocalConversation): void;
  conversationUpdated(data: { conversation: LocalConversation; updateReasons: string[] }): void;
  messageAdded(message: LocalMessage): void;
  messageUpdated(data: { message: LocalMessage; updateReasons: string[] }): void;
  messageRemoved(message: LocalMessage): void;
  typingStarted(participant: LocalParticipant): void;
  typingEnded(participant: LocalParticipant): void;
  participantJoined(participant: LocalParticipant): void;
  participantLeft(participant: LocalParticipant): void;
  participantUpdated(data: { participant: LocalParticipant; updateReasons: string[] }): void;
  connectionStateChanged(state: LocalConnectionState): void;
  tokenAboutToExpire(): void;
  tokenExpired(): void;
  userSubscribed(user: LocalUser): void;
  userUnsubscribed(user: LocalUser): void;
  /** The relay's own (the SDK has none): bytes of a media upload sent so far. */
  mediaUploadProgress(progress: MediaUploadProgress): void;
}

const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 5000, 10000];

export class LocalConversationsClient extends LocalEmitter<LocalClientEvents> implements BaseClient {
  /** Where the SDK names its own version: this client's. */
  readonly version = 'twilio-e2ee local relay client';
  /** The relay keeps no presence: users' isOnline and isNotifiable are null. */
  readonly reachabilityEnabled = false;
  private readonly users = new LocalUsers(
    () => this.identity,
    (event, user) => this.emit(event, user),
  );
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
  /** What pushes read and change (relay-pushes.ts). */
  private readonly pushTarget: PushTarget = {
    client: this,
    known: (sid) => this.conversations.get(sid),
    forget: (sid) => void this.conversations.delete(sid),
    conversationFor: (sid) => this.conversationFor(sid),
    conversationObject: (data) => this.conversationObject(data),
    emit: (event, ...args) => void this.emit(event, ...args),
  };

  private constructor(
    private readonly relayUrl: string,
    private token: string,
    private readonly WebSocketImpl: WebSocketConstructor,
  ) {
    super();
  }

  /** Connects and authenticates; rejects when the relay refuses the token. */
  static async connect(options: LocalConnectOptions): Promise<LocalConversationsClient> {
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? nodeWebSocket;
    if (!WebSocketImpl) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'no WebSocket in this runtime: pass the WebSocket option, or import from twilio-e2ee/client/node in Node');
    }
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
            if (isE2EEError(err, ErrorCode.UNAUTHORIZED)) {
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
        if (!opened) reject(new E2EEError(ErrorCode.NETWORK_ERROR, `cannot connect to the relay at ${this.relayUrl}`));
      });
      socket.addEventListener('close', (event) => this.onClose(socket, event.code));
    });
  }

  private onClose(socket: WebSocketLike, code: number | undefined): void {
    if (socket !== this.socket) return;
    for (const { reject } of this.pending.values()) reject(new E2EEError(ErrorCode.DISCONNECTED, 'the relay connection closed'));
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
        () => catchUp(this, this.conversations.values()),
        () => undefined, // onClose schedules the next attempt
      );
    }, delay);
  }

  /**
   * @internal Emits a conversation's event on the conversation and on the client, as the SDK
   * does (the conversation's `updated` is the client's `conversationUpdated`).
   */
  announce<K extends keyof LocalConversationEvents & (keyof LocalClientEvents | 'updated')>(
    conversation: LocalConversation,
    event: K,
    ...args: Parameters<LocalConversationEvents[K]>
  ): void {
    conversation.deliver(event, ...args);
    const clientEvent = (event === 'updated' ? 'conversationUpdated' : event) as keyof LocalClientEvents;
    this.emit(clientEvent, ...(args as unknown as Parameters<LocalClientEvents[typeof clientEvent]>));
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
      this.pushQueue = this.pushQueue.then(() => applyPush(this.pushTarget, frame as RelayPush)).catch(() => undefined);
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    this.pending.delete(frame.id);
    if (frame.ok) pending.resolve(frame.result);
    else pending.reject(new E2EEError(frame.error.code as ErrorCode, frame.error.message)); // the relay's code, unchanged
  }

  /** @internal Sends a request and resolves with its result. */
  request<K extends RelayOp>(op: K, params: RelayOps[K][0]): Promise<RelayOps[K][1]> {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) {
      return Promise.reject(new E2EEError(ErrorCode.DISCONNECTED, 'not connected to the relay'));
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
    else conversation.apply(data);
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

  /** A conversation this user can see (a participant of it), without subscribing: here the same as getConversationBySid. */
  async peekConversationBySid(sid: string): Promise<LocalConversation> {
    return this.conversationObject(await this.request('getConversation', { sid }));
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

  /** The signed-in user (see relay-user.ts for what the relay keeps of users). */
  get user(): LocalUser {
    return this.users.myself;
  }

  /** A user, subscribed: this client emits userSubscribed the first time. */
  async getUser(identity: string): Promise<LocalUser> {
    return this.users.get(identity);
  }

  /** The users this client subscribed to (getUser, participant.getUser), itself aside. */
  async getSubscribedUsers(): Promise<LocalUser[]> {
    return this.users.others();
  }

  /** No content templates exist on the relay (the SDK's answer for a service without any). */
  async getContentTemplates(): Promise<readonly never[]> {
    return [];
  }

  /** Temporary URLs (5 minutes) by media sid, for media of conversations this user is in (NOT_FOUND otherwise). */
  getTemporaryContentUrlsForMedia(contentSet: Array<{ sid: string }>): Promise<Map<string, string>> & { cancel(): void } {
    return cancellable(Promise.resolve().then(() => this.mediaUrls(mediaSidsOf(contentSet))));
  }

  getTemporaryContentUrlsForMediaSids(mediaSids: string[]): Promise<Map<string, string>> & { cancel(): void } {
    return cancellable(Promise.resolve().then(() => this.mediaUrls(mediaSidsOf(mediaSids))));
  }

  /** The relay's HTTP base: its WebSocket URL as http(s). */
  private get httpUrl(): string {
    return this.relayUrl.replace(/^ws/, 'http');
  }

  /** @internal Download URLs of media by sid (absolute, fetched without headers). */
  async mediaUrls(sids: string[]): Promise<Map<string, string>> {
    if (sids.length === 0) return new Map();
    const { urls } = await this.request('getMediaUrls', { mediaSids: sids });
    return new Map(sids.map((sid) => [sid, new URL(urls[sid]!, this.httpUrl).href]));
  }

  /** @internal Uploads one blob to a conversation (emits mediaUploadProgress as it goes). */
  uploadMedia(conversationSid: string, item: ReturnType<typeof prepareUploads>[number]): Promise<RelayMediaData> {
    const target = { url: `${this.httpUrl}/media`, token: this.token, conversationSid, onProgress: (p: MediaUploadProgress) => this.emit('mediaUploadProgress', p) };
    return upload(target, item);
  }

  /** Refused: the relay sends no push notifications, so a registration would bring none. */
  async setPushRegistrationId(_channelType: string, _registrationId: string): Promise<never> {
    throw unsupported('push notifications: a registration would bring none');
  }

  /** Resolves: the relay holds no push registration, so none is left after it. */
  async unsetPushRegistrationId(_channelType: string): Promise<void> {}

  /** Resolves: the relay holds no push registration, so none is left after it. */
  async removePushRegistrations(_channelType: string, _registrationId: string): Promise<void> {}

  /** Refused: the relay sends no push notifications, so none of its own reaches the app. */
  parsePushNotification(_payload: unknown): never {
    throw unsupported('push notifications to parse');
  }

  /** Refused, as parsePushNotification. */
  async handlePushNotification(payload: unknown): Promise<never> {
    return this.parsePushNotification(payload);
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
      void catchUp(this, this.conversations.values());
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
