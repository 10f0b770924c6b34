/**
 * Twilio's Conversations cloud, in memory, as the real @twilio/conversations 3 Client reaches it:
 * the Client is the SDK's own, built with its network-facing services replaced at the edge (its
 * twilsock client, which is also its REST transport, its Sync client and its notifications
 * client). Every SDK class above them (Conversations, Conversation, Messages, Message,
 * Participants, Participant, TypingIndicator, CommandExecutor, Network) is real.
 *
 * Only what the SDK 3.0.1 asks is answered, in the shapes its builds/lib.js reads: the
 * configuration, my-conversations, conversation, participant, message and typing REST resources,
 * and the Sync documents, maps and lists behind them. As over the network, a Sync event reaches
 * the clients after the REST answer of the change that caused it, never inside it.
 *
 * Media: after `listenMedia()`, the configuration links the SDK to a local Media Content Service
 * (test/support/media-content-service.ts), reached over HTTP by the SDK's own MCS client; a
 * message posted with `media_sids` carries those media (`medias` in its Sync item).
 */
import { EventEmitter } from 'node:events';
import { Client, type ClientOptions } from '@twilio/conversations';
import { copy, handleOf, SyncDocument, SyncList, SyncMap, type Data, type SyncObject } from './conversations-sync.js';
import { MediaContentService, SERVICE_SID } from './media-content-service.js';

const API = 'https://aim.us1.twilio.com';
const MCS = `https://mcs.us1.twilio.com/v1/Services/${SERVICE_SID}`;
/** Bytes per media the configuration announces (media_attachment_size_limit_in_mb). */
const MEDIA_SIZE_LIMIT_MB = 16;
const TOKEN_PREFIX = 'token-of-';
/** The typing indicator timeout the service announces, in seconds (the SDK's default). */
const TYPING_TIMEOUT_S = 5;
const TYPING_NOTIFICATION = 'twilio.ipmsg.typing_indicator';

const now = () => new Date().toISOString();

interface CloudConversation {
  sid: string;
  document: SyncDocument;
  roster: SyncMap;
  messages: SyncList;
  /** Participant sid by identity. */
  participants: Map<string, string>;
}

interface RestAnswer {
  status: { code: number; status: string };
  headers: Record<string, string>;
  body: unknown;
}
const ok = (body: unknown): RestAnswer => ({ status: { code: 200, status: 'OK' }, headers: {}, body });
const refused = (code: number, message: string): RestAnswer => ({ status: { code, status: message }, headers: {}, body: { status: code, message } });

/** The twilsock client of one SDK client: its connection, and its REST transport. */
class Twilsock extends EventEmitter {
  constructor(private readonly session: Session) {
    super();
  }
  connect(): void {}
  async disconnect(): Promise<void> {
    this.session.close();
  }
  async updateToken(): Promise<void> {}
  addPartialTelemetryEvent(): void {}
  get(url: string) {
    return this.session.cloud.rest(this.session, 'get', url, undefined);
  }
  post(url: string, _headers: unknown, body: string) {
    return this.session.cloud.rest(this.session, 'post', url, body);
  }
  delete(url: string) {
    return this.session.cloud.rest(this.session, 'delete', url, undefined);
  }
}

/** The notifications client: typing indicators arrive on it. */
class Notifications extends EventEmitter {
  subscribe(): void {}
  unsubscribe(): void {}
  async updateToken(): Promise<void> {}
  setPushRegistrationId(): void {}
  async commitChanges(): Promise<void> {}
  async removeRegistrations(): Promise<void> {}
}

/** One SDK client's connection to the cloud. */
class Session {
  readonly twilsock = new Twilsock(this);
  readonly notifications = new Notifications();
  readonly handles = new Set<{ object: SyncObject; handle: EventEmitter }>();
  open = true;

  constructor(
    readonly cloud: ConversationsCloud,
    readonly identity: string,
  ) {}

  readonly sync = {
    connectionState: 'connected',
    document: async ({ id }: { id: string }) => handleOf(this.cloud.syncObject(id, SyncDocument), this.handles),
    map: async ({ id }: { id: string }) => handleOf(this.cloud.syncObject(id, SyncMap), this.handles),
    list: async ({ id }: { id: string }) => handleOf(this.cloud.syncObject(id, SyncList), this.handles),
    shutdown: async () => undefined,
  };

  close(): void {
    this.open = false;
    for (const { object, handle } of this.handles) object.handles.delete(handle);
    this.handles.clear();
  }
}

/** A real SDK Client on the cloud, offline until `connect()`. */
export interface CloudClient {
  client: Client;
  /** Brings the connection up; resolves once the SDK has initialized (configuration, user, conversations). */
  connect(): Promise<void>;
}

export class ConversationsCloud {
  private readonly objects = new Map<string, SyncObject>();
  private readonly conversations = new Map<string, CloudConversation>();
  private readonly sessions = new Set<Session>();
  private sids = 0;
  /** Twilio's Media Content Service, once `listenMedia()` resolved (before clients connect: they read its links at start). */
  media: MediaContentService | null = null;

  async listenMedia(): Promise<MediaContentService> {
    this.media ??= await MediaContentService.listen({
      identityOf: (token) => (token.startsWith(TOKEN_PREFIX) ? token.slice(TOKEN_PREFIX.length) : null),
      isParticipant: (identity, sid) => this.conversations.get(sid)?.participants.has(identity) ?? false,
      sizeLimit: MEDIA_SIZE_LIMIT_MB * 1024 * 1024,
    });
    return this.media;
  }

  async close(): Promise<void> {
    await this.media?.close();
  }

  /** The SDK's own Client for `identity`, built with this cloud as its network. */
  client(identity: string): CloudClient {
    const session = new Session(this, identity);
    this.sessions.add(session);
    this.userInfo(identity);
    const options = {
      twilsockClient: session.twilsock,
      notificationsClient: session.notifications,
      syncClient: session.sync,
      // The SDK deep-clones its options through JSON unless told not to, which would turn the services into plain data.
      disableDeepClone: true,
      logLevel: 'silent',
    } as unknown as ClientOptions;
    const client = new Client(`${TOKEN_PREFIX}${identity}`, options);
    const connect = () =>
      new Promise<void>((resolve, reject) => {
        client.once('initialized', () => resolve());
        client.once('initFailed', ({ error }: { error?: { message?: string } }) => reject(new Error(`SDK init failed: ${error?.message}`)));
        session.twilsock.emit('stateChanged', 'connected');
        session.twilsock.emit('connected');
      });
    return { client, connect };
  }

  /** Sync object `id`, created empty on first use (a conversation's, a user's). */
  syncObject<T extends SyncObject>(id: string, kind: new (data: Data) => T): T {
    let object = this.objects.get(id);
    if (!object) this.objects.set(id, (object = new kind({})));
    if (!(object instanceof kind)) throw new Error(`Sync object ${id} is a ${object.constructor.name}`);
    return object;
  }

  private newSid(prefix: string): string {
    return `${prefix}${(++this.sids).toString(16).padStart(32, '0')}`;
  }

  private userInfo(identity: string): void {
    const info = this.syncObject(`user-info:${identity}`, SyncMap);
    info.items.set('friendlyName', { value: identity });
    info.items.set('attributes', { value: '{}' });
  }

  private myConversations(identity: string): SyncMap {
    return this.syncObject(`my-conversations:${identity}`, SyncMap);
  }

  /**
   * A message as the service stores it when a client without the wrapper sends one (a photo with
   * no body, say): `fields` go into the Sync item as they are.
   */
  deliver(conversationSid: string, author: string, fields: Data): number {
    const conversation = this.conversations.get(conversationSid)!;
    return this.appendMessage(conversation, author, fields);
  }

  /** A change the service makes to a stored message by itself (delivery receipts, say). */
  amend(conversationSid: string, index: number, fields: Data): void {
    this.conversations.get(conversationSid)!.messages.update(index, fields);
  }

  /** The message items of a conversation, as the service stores them. */
  storedMessages(conversationSid: string): ReadonlyArray<{ index: number; data: Data }> {
    return this.conversations.get(conversationSid)!.messages.items;
  }

  /** Answers one REST request of a client, as Twilio's endpoints do. */
  async rest(session: Session, method: 'get' | 'post' | 'delete', url: string, body: string | undefined): Promise<RestAnswer> {
    if (!session.open) throw new Error('Twilsock disconnected');
    const path = new URL(url).pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const json = (): Data => (body ? (JSON.parse(body) as Data) : {});
    const who = session.identity;
    if (method === 'get' && path.join('/') === 'Client/v2/Configuration') return ok(this.configuration(who));
    // Every other resource is /v1/Collection/:id/Collection/:id…
    const route = `${method} /${path.map((p, i) => (i >= 2 && i % 2 === 0 ? ':id' : p)).join('/')}`;
    switch (route) {
      case 'get /v1/Users/:id/Conversations':
        if (path[2] !== who) return refused(403, 'Forbidden');
        return ok({ conversations: this.conversationsOf(who), meta: { next_token: null } });
      case 'post /v1/Conversations':
        return ok(this.createConversation(who, json()));
      case 'post /v1/Conversations/:id/Participants':
        return this.withParticipant(path[2]!, who, json().identity === who, (c) => ok(this.addParticipant(c, json())));
      case 'post /v1/Conversations/:id/Messages':
        return this.withParticipant(path[2]!, who, false, (c) => this.sendMessage(c, who, json()));
      case 'post /v1/Conversations/:id/Messages/:id':
        return this.withParticipant(path[2]!, who, false, (c) => this.updateMessage(c, who, path[4]!, json()));
      case 'delete /v1/Conversations/:id/Messages/:id':
        return this.withParticipant(path[2]!, who, false, (c) => this.removeMessage(c, path[4]!));
      case 'post /v1/Typing':
        return this.withParticipant(new URLSearchParams(body).get('ChannelSid') ?? '', who, false, (c) => ok(this.typing(c, who)));
      default:
        throw new Error(`the cloud does not answer ${method.toUpperCase()} ${url}`);
    }
  }

  private withParticipant(sid: string, who: string, joining: boolean, then: (c: CloudConversation) => RestAnswer): RestAnswer {
    const conversation = this.conversations.get(sid);
    if (!conversation) return refused(404, 'Not Found');
    if (!joining && !conversation.participants.has(who)) return refused(403, 'Forbidden');
    return then(conversation);
  }

  private configuration(identity: string): Data {
    return {
      identity,
      links: {
        my_conversations: `${API}/v1/Users/${encodeURIComponent(identity)}/Conversations`,
        conversations: `${API}/v1/Conversations`,
        users: `${API}/v1/Users`,
        current_user: `${API}/v1/Users/${encodeURIComponent(identity)}`,
        typing: `${API}/v1/Typing`,
        media_service: this.media?.mediaUrl ?? `${MCS}/Media`,
        media_set_service: this.media?.mediaSetUrl ?? `${MCS}/MediaSet`,
        messages_receipts: `${API}/v1/Receipts`,
      },
      options: {
        reachability_enabled: false,
        media_attachments_count_limit: 10,
        media_attachment_size_limit_in_mb: MEDIA_SIZE_LIMIT_MB,
        media_attachments_total_size_limit_in_mb: MEDIA_SIZE_LIMIT_MB,
        email_histories_allowed_mime_types: ['text/html'],
        email_bodies_allowed_mime_types: ['text/plain'],
      },
      sync_objects: { my_user_info: `user-info:${identity}`, my_conversations: `my-conversations:${identity}` },
    };
  }

  /** The my-conversations entry of a conversation (REST and Sync carry the same facts, named differently). */
  private entry(conversation: CloudConversation): Data {
    return {
      channel: `${conversation.sid}.channel`,
      messages: `${conversation.sid}.messages`,
      roster: `${conversation.sid}.roster`,
      status: 'joined',
      lastConsumedMessageIndex: null,
      notificationLevel: 'default',
    };
  }

  private conversationsOf(identity: string): Data[] {
    return [...this.conversations.values()]
      .filter((c) => c.participants.has(identity))
      .map((c) => ({
        conversation_sid: c.sid,
        status: 'joined',
        last_read_message_index: null,
        notification_level: 'default',
        sync_objects: { conversation: `${c.sid}.channel`, messages: `${c.sid}.messages`, participants: `${c.sid}.roster` },
      }));
  }

  private createConversation(creator: string, request: Data): Data {
    const sid = this.newSid('CH');
    const conversation: CloudConversation = {
      sid,
      document: this.syncObject(`${sid}.channel`, SyncDocument),
      roster: this.syncObject(`${sid}.roster`, SyncMap),
      messages: this.syncObject(`${sid}.messages`, SyncList),
      participants: new Map(),
    };
    conversation.document.data = {
      messages: `${sid}.messages`,
      roster: `${sid}.roster`,
      friendlyName: request.friendly_name ?? null,
      uniqueName: request.unique_name ?? null,
      attributes: request.attributes ?? '{}',
      createdBy: creator,
      dateCreated: now(),
      dateUpdated: now(),
    };
    this.conversations.set(sid, conversation);
    const url = `${API}/v1/Conversations/${sid}`;
    return { sid, url, links: { messages: `${url}/Messages`, participants: `${url}/Participants` }, sync_objects: { conversation: `${sid}.channel` } };
  }

  private addParticipant(conversation: CloudConversation, request: Data): Data {
    const identity = String(request.identity);
    const sid = conversation.participants.get(identity) ?? this.newSid('MB');
    conversation.participants.set(identity, sid);
    const data = {
      identity,
      attributes: request.attributes ?? '{}',
      dateCreated: now(),
      dateUpdated: now(),
      roleSid: 'RL00000000000000000000000000000000',
      type: 'chat',
      lastConsumedMessageIndex: null,
      lastConsumptionTimestamp: null,
    };
    conversation.roster.set(sid, data);
    this.myConversations(identity).set(conversation.sid, this.entry(conversation));
    return { sid, identity, attributes: data.attributes, date_created: data.dateCreated, date_updated: data.dateUpdated, role_sid: data.roleSid, messaging_binding: null };
  }

  private sendMessage(conversation: CloudConversation, author: string, request: Data): RestAnswer {
    const fields: Data = { text: request.body ?? null, attributes: request.attributes ?? '{}', type: 'text' };
    const sids = request.media_sids;
    if (Array.isArray(sids) && sids.length > 0) {
      const medias = this.media?.attach(sids, author, conversation.sid) ?? 'no media service';
      if (typeof medias === 'string') return refused(400, medias);
      Object.assign(fields, { type: 'media', medias });
    }
    const index = this.appendMessage(conversation, author, fields);
    const { data } = conversation.messages.items.find((i) => i.index === index)!;
    return ok({ sid: data.sid, index, body: data.text, author, attributes: data.attributes });
  }

  private appendMessage(conversation: CloudConversation, author: string, fields: Data): number {
    const timestamp = now();
    const index = conversation.messages.push({
      sid: this.newSid('IM'),
      author,
      memberSid: conversation.participants.get(author) ?? null,
      timestamp,
      dateUpdated: timestamp,
      lastUpdatedBy: null,
      ...fields,
    });
    conversation.document.update({ lastMessage: { index, timestamp }, dateUpdated: timestamp });
    return index;
  }

  private updateMessage(conversation: CloudConversation, who: string, messageSid: string, request: Data): RestAnswer {
    const item = conversation.messages.items.find((i) => i.data.sid === messageSid);
    if (!item) return refused(404, 'Not Found');
    const change: Data = { dateUpdated: now(), lastUpdatedBy: who };
    if (request.body !== undefined) change.text = request.body;
    if (request.attributes !== undefined) change.attributes = request.attributes;
    conversation.messages.update(item.index, change);
    return ok({ sid: messageSid, index: item.index, body: item.data.text });
  }

  private removeMessage(conversation: CloudConversation, messageSid: string): RestAnswer {
    const item = conversation.messages.items.find((i) => i.data.sid === messageSid);
    if (!item) return refused(404, 'Not Found');
    conversation.messages.remove(item.index);
    return ok({});
  }

  /** Tells every other participant's open clients that `who` is typing. */
  private typing(conversation: CloudConversation, who: string): Data {
    const notice = { channel_sid: conversation.sid, identity: who, typing_timeout: TYPING_TIMEOUT_S };
    for (const session of this.sessions) {
      if (session.open && session.identity !== who && conversation.participants.has(session.identity)) {
        setImmediate(() => session.notifications.emit('message', TYPING_NOTIFICATION, copy(notice)));
      }
    }
    return { typing_timeout: TYPING_TIMEOUT_S };
  }
}
