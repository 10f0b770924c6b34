/**
 * The local conversations relay (local mode): conversations, participants and messages over a
 * WebSocket, persisted in the same store as the cards, with ordered live delivery. It implements
 * the subset of Twilio Conversations the E2EE wrapper uses and stores bodies exactly as given:
 * with the wrapper in front it only ever holds envelopes.
 *
 * Live delivery reaches the sockets connected to this process; several instances share the
 * store (history, paging) but not live pushes.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  RELAY_LIMITS,
  type RelayConversationData,
  type RelayEventName,
  type RelayEvents,
  type RelayMessageData,
  type RelayOp,
  type RelayOps,
  type RelayParticipantData,
} from '../../shared/relay-protocol.js';
import { isStorableText } from '../schemas.js';
import type { RelayConversation, RelayMessage, RelayParticipant, Store } from '../store/types.js';

export interface RelayTokenVerifier {
  /** Returns the identity and expiry (unix ms) of a valid relay token; throws otherwise. */
  (token: string): { identity: string; expiresAtMs: number } | Promise<{ identity: string; expiresAtMs: number }>;
}

export interface RelayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** An error the relay sends back to the client, with a stable code. */
export class RelayError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function newSid(prefix: string): string {
  return prefix + randomBytes(16).toString('hex');
}

function parseAttributes(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function attributesText(value: unknown): string {
  const text = JSON.stringify(value ?? {});
  if (text === undefined || Buffer.byteLength(text) > RELAY_LIMITS.attributesBytes) {
    throw new RelayError('ATTRIBUTES_TOO_LARGE', `attributes must be JSON of at most ${RELAY_LIMITS.attributesBytes} bytes`);
  }
  return text;
}

export const toConversationData = (c: RelayConversation): RelayConversationData => ({
  sid: c.sid,
  uniqueName: c.uniqueName,
  friendlyName: c.friendlyName,
  attributes: parseAttributes(c.attributes),
  createdBy: c.createdBy,
  dateCreated: c.dateCreatedMs,
});

const toParticipantData = (p: RelayParticipant): RelayParticipantData => ({
  sid: p.sid,
  conversationSid: p.conversationSid,
  identity: p.identity,
  type: 'chat',
  dateCreated: p.dateCreatedMs,
});

const toMessageData = (m: RelayMessage): RelayMessageData => ({
  sid: m.sid,
  conversationSid: m.conversationSid,
  index: m.index,
  author: m.author,
  body: m.body,
  attributes: parseAttributes(m.attributes),
  dateCreated: m.dateCreatedMs,
  dateUpdated: m.dateUpdatedMs,
});

function str(value: unknown, field: string, max: number, min = 1): string {
  // NUL is refused: PostgreSQL text cannot hold it, and no envelope or identity contains it. So
  // is a lone surrogate: the stores write UTF-8, so it would come back as U+FFFD, a different
  // string (an identity added that way is someone else).
  if (typeof value !== 'string' || value.length < min || value.length > max || !isStorableText(value)) {
    throw new RelayError('BAD_REQUEST', `"${field}" must be a string of ${min}..${max} characters without NUL, in well-formed Unicode`);
  }
  return value;
}

interface Session {
  socket: WebSocket;
  identity: string | null;
  expiresAtMs: number;
  expiryTimer?: NodeJS.Timeout;
}

/** How long before a token expires the relay warns the client (like Twilio's tokenAboutToExpire). */
const EXPIRY_WARNING_MS = 60_000;

export class RelayHub {
  private readonly sessions = new Map<string, Set<Session>>();

  constructor(
    private readonly store: Store,
    private readonly verifyToken: RelayTokenVerifier,
    private readonly log: RelayLogger,
  ) {}

  /** Serves one WebSocket connection until it closes. */
  accept(socket: WebSocket): void {
    const session: Session = { socket, identity: null, expiresAtMs: 0 };
    // Frames are handled one at a time, in order, so a client's requests keep their order.
    let queue = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      queue = queue.then(() => this.onFrame(session, data as Buffer, isBinary));
    });
    socket.on('close', () => this.detach(session));
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'relay socket error'));
  }

  /** Identities connected to this process, for tests and metrics. */
  connectedIdentities(): string[] {
    return [...this.sessions.keys()];
  }

  close(): void {
    for (const set of this.sessions.values()) for (const s of set) s.socket.close(1001, 'server shutting down');
  }

  private async onFrame(session: Session, data: Buffer, isBinary: boolean): Promise<void> {
    let id: number | null = null;
    try {
      if (isBinary) throw new RelayError('BAD_REQUEST', 'frames must be JSON text');
      let frame: { id?: unknown; op?: unknown; params?: unknown };
      try {
        frame = JSON.parse(data.toString('utf8'));
      } catch {
        throw new RelayError('BAD_REQUEST', 'frame is not valid JSON');
      }
      if (typeof frame !== 'object' || frame === null || !Number.isSafeInteger(frame.id)) {
        throw new RelayError('BAD_REQUEST', 'frame needs a numeric "id"');
      }
      id = frame.id as number;
      if (typeof frame.op !== 'string' || !Object.prototype.hasOwnProperty.call(this.handlers, frame.op)) {
        throw new RelayError('BAD_REQUEST', `unknown op "${String(frame.op)}"`);
      }
      const params = (typeof frame.params === 'object' && frame.params !== null ? frame.params : {}) as Record<string, unknown>;
      const op = frame.op as RelayOp;
      if (op !== 'auth' && session.identity === null) throw new RelayError('UNAUTHORIZED', 'send "auth" with a relay token first');
      if (op !== 'auth' && op !== 'updateToken' && Date.now() >= session.expiresAtMs) {
        throw new RelayError('TOKEN_EXPIRED', 'the relay token has expired; send "updateToken"');
      }
      const result = await this.handlers[op](session, params as never);
      this.send(session, { id, ok: true, result });
    } catch (err) {
      const known = err instanceof RelayError;
      if (!known) this.log.error({ err: (err as Error).message }, 'relay request failed');
      const error = known ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: 'internal relay error' };
      this.send(session, { id, ok: false, error });
    }
  }

  private send(session: Session, frame: object): void {
    if (session.socket.readyState === session.socket.OPEN) session.socket.send(JSON.stringify(frame));
  }

  private push<K extends RelayEventName>(identities: Iterable<string>, event: K, data: RelayEvents[K]): void {
    const text = JSON.stringify({ event, data });
    for (const identity of new Set(identities)) {
      for (const s of this.sessions.get(identity) ?? []) if (s.socket.readyState === s.socket.OPEN) s.socket.send(text);
    }
  }

  private async authenticate(session: Session, token: unknown): Promise<{ identity: string }> {
    if (typeof token !== 'string' || token.length === 0) throw new RelayError('UNAUTHORIZED', '"token" is required');
    let verified: { identity: string; expiresAtMs: number };
    try {
      verified = await this.verifyToken(token);
    } catch {
      throw new RelayError('UNAUTHORIZED', 'the relay token is invalid or expired');
    }
    if (session.identity !== null && session.identity !== verified.identity) {
      throw new RelayError('FORBIDDEN', 'a new token must be for the same identity');
    }
    if (session.identity === null) {
      session.identity = verified.identity;
      let set = this.sessions.get(verified.identity);
      if (!set) this.sessions.set(verified.identity, (set = new Set()));
      set.add(session);
    }
    session.expiresAtMs = verified.expiresAtMs;
    clearTimeout(session.expiryTimer);
    // Warn a minute ahead, or halfway through a shorter lifetime (so a refresh never loops).
    const lifetime = verified.expiresAtMs - Date.now();
    const warnIn = Math.max(0, lifetime - Math.min(EXPIRY_WARNING_MS, lifetime / 2));
    session.expiryTimer = setTimeout(() => this.send(session, { event: 'tokenAboutToExpire', data: {} }), warnIn);
    session.expiryTimer.unref();
    return { identity: verified.identity };
  }

  private detach(session: Session): void {
    clearTimeout(session.expiryTimer);
    if (session.identity === null) return;
    const set = this.sessions.get(session.identity);
    set?.delete(session);
    if (set?.size === 0) this.sessions.delete(session.identity);
  }

  /** The conversation, if the caller may act on it (a participant, or its creator). */
  private async accessible(identity: string, conversationSid: unknown): Promise<RelayConversation> {
    const sid = str(conversationSid, 'conversationSid', 256);
    const conversation = await this.store.getConversation(sid);
    if (!conversation) throw new RelayError('NOT_FOUND', `conversation ${sid} not found`);
    if (conversation.createdBy !== identity && !(await this.store.isParticipant(conversation.sid, identity))) {
      throw new RelayError('FORBIDDEN', 'not a participant of this conversation');
    }
    return conversation;
  }

  private async participantIdentities(conversationSid: string): Promise<string[]> {
    return (await this.store.participants(conversationSid)).map((p) => p.identity);
  }

  private async addParticipant(conversation: RelayConversation, identity: string): Promise<RelayParticipantData> {
    const current = await this.store.participants(conversation.sid);
    if (current.length >= RELAY_LIMITS.participantsPerConversation && !current.some((p) => p.identity === identity)) {
      throw new RelayError('TOO_MANY_PARTICIPANTS', `a conversation has at most ${RELAY_LIMITS.participantsPerConversation} participants`);
    }
    const { participant, created } = await this.store.addParticipant({
      sid: newSid('MB'),
      conversationSid: conversation.sid,
      identity,
      dateCreatedMs: Date.now(),
    });
    const data = toParticipantData(participant);
    if (created) {
      this.push([identity], 'conversationAdded', toConversationData(conversation));
      this.push([...current.map((p) => p.identity), identity], 'participantJoined', data);
    }
    return data;
  }

  private readonly handlers: { [K in RelayOp]: (session: Session, params: Partial<RelayOps[K][0]>) => Promise<RelayOps[K][1]> } = {
    auth: (session, p) => this.authenticate(session, p.token),
    updateToken: (session, p) => this.authenticate(session, p.token),

    createConversation: async (session, p) => {
      const uniqueName = p.uniqueName === undefined ? null : str(p.uniqueName, 'uniqueName', 256);
      const friendlyName = p.friendlyName === undefined ? null : str(p.friendlyName, 'friendlyName', 256, 0);
      const conversation = await this.store.createConversation({
        sid: newSid('CH'),
        uniqueName,
        friendlyName,
        attributes: attributesText(p.attributes),
        createdBy: session.identity!,
        dateCreatedMs: Date.now(),
      });
      if (!conversation) throw new RelayError('CONFLICT', `a conversation named "${uniqueName}" exists`);
      return toConversationData(conversation);
    },

    getConversation: async (session, p) => toConversationData(await this.accessible(session.identity!, p.sid)),

    listConversations: async (session) => (await this.store.conversationsOf(session.identity!)).map(toConversationData),

    join: async (session, p) => this.addParticipant(await this.accessible(session.identity!, p.conversationSid), session.identity!),

    add: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      return this.addParticipant(conversation, str(p.identity, 'identity', RELAY_LIMITS.identityChars));
    },

    removeParticipant: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      const identity = str(p.identity, 'identity', RELAY_LIMITS.identityChars);
      const before = await this.participantIdentities(conversation.sid);
      const removed = await this.store.removeParticipant(conversation.sid, identity);
      if (removed) {
        this.push(before, 'participantLeft', toParticipantData(removed));
        this.push([identity], 'conversationRemoved', { conversationSid: conversation.sid });
      }
      return { removed: removed !== null };
    },

    getParticipants: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      return (await this.store.participants(conversation.sid)).map(toParticipantData);
    },

    sendMessage: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      const identities = await this.participantIdentities(conversation.sid);
      if (!identities.includes(session.identity!)) throw new RelayError('FORBIDDEN', 'join the conversation before sending');
      const body = str(p.body, 'body', RELAY_LIMITS.bodyChars, 0);
      const message = await this.store.appendMessage({
        sid: newSid('IM'),
        conversationSid: conversation.sid,
        author: session.identity!,
        body,
        attributes: attributesText(p.attributes),
        dateCreatedMs: Date.now(),
      });
      const data = toMessageData(message);
      this.push(identities, 'messageAdded', data);
      return data;
    },

    getMessages: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      const pageSize = Number.isSafeInteger(p.pageSize) && p.pageSize! > 0 ? Math.min(p.pageSize!, RELAY_LIMITS.pageSize) : 30;
      const direction = p.direction === 'forward' ? 'forward' : 'backwards';
      const anchor = Number.isSafeInteger(p.anchor) ? p.anchor : undefined;
      const items = await this.store.messages(conversation.sid, { anchor, direction, limit: pageSize + 1 });
      // One extra row tells whether there is more in the paging direction.
      const more = items.length > pageSize;
      if (more) {
        if (direction === 'backwards') items.shift();
        else items.pop();
      }
      const first = items[0]?.index;
      const last = items[items.length - 1]?.index;
      const newest = (await this.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]?.index ?? -1;
      return {
        items: items.map(toMessageData),
        hasPrev: direction === 'backwards' ? more : first !== undefined && first > 0,
        hasNext: direction === 'forward' ? more : last !== undefined && last < newest,
      };
    },

    updateMessageBody: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      const messageSid = str(p.messageSid, 'messageSid', 64);
      const existing = await this.store.getMessage(conversation.sid, messageSid);
      if (!existing) throw new RelayError('NOT_FOUND', `message ${messageSid} not found`);
      if (existing.author !== session.identity) throw new RelayError('FORBIDDEN', 'only the author may edit a message');
      const updated = await this.store.updateMessageBody(conversation.sid, messageSid, str(p.body, 'body', RELAY_LIMITS.bodyChars, 0), Date.now());
      const data = toMessageData(updated!);
      this.push(await this.participantIdentities(conversation.sid), 'messageUpdated', data);
      return data;
    },
  };
}
