/**
 * The local conversations relay (local mode): conversations, participants and messages over a
 * WebSocket, persisted in the same store as the cards, with ordered live delivery. It implements
 * the subset of Twilio Conversations the E2EE wrapper uses and stores bodies exactly as given:
 * with the wrapper in front it only ever holds envelopes.
 *
 * Live delivery reaches the sockets connected to this process; several instances share the
 * store (history, paging) but not live pushes.
 *
 * Each socket has bounds, so one client cannot make the server hold more than a few MiB for it:
 * an authentication deadline, the end of the session when its token expires, a budget of
 * requests per identity, a number of frames in flight (then the socket is not read), bytes per
 * answer, and bytes waiting to be sent (then the socket is closed).
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  RELAY_CLOSE,
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
import { RelayRateLimiter } from './rate-limit.js';

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

/** Whether a JSON value nests deeper than `limit` (a scalar is depth 0, `{}` depth 1); no recursion. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(v)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

function attributesText(value: unknown): string {
  // Checked before JSON.stringify, which recurses: a value nested thousands deep overflows the stack.
  if (nestsDeeperThan(value, RELAY_LIMITS.attributesDepth)) {
    throw new RelayError('ATTRIBUTES_TOO_DEEP', `attributes may nest at most ${RELAY_LIMITS.attributesDepth} levels`);
  }
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
  attributes: parseAttributes(p.attributes),
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

/** The first items that fit in one answer (RELAY_LIMITS.answerBytes of JSON), at least one. */
function withinAnswerBytes<T>(items: T[]): T[] {
  let budget = RELAY_LIMITS.answerBytes;
  let kept = 0;
  for (const item of items) {
    budget -= Buffer.byteLength(JSON.stringify(item));
    if (kept > 0 && budget < 0) break;
    kept++;
  }
  return items.slice(0, kept);
}

interface Session {
  socket: WebSocket;
  identity: string | null;
  expiresAtMs: number;
  /** Frames received and not answered yet. */
  inFlight: number;
  authTimer?: NodeJS.Timeout;
  warningTimer?: NodeJS.Timeout;
  expiryTimer?: NodeJS.Timeout;
}

export interface RelayHubOptions {
  /** Requests per minute per identity (every frame after `auth`); 0 = no limit. */
  rateLimitPerMinute: number;
  /** A socket without a valid `auth` this long after connecting is closed (RELAY_CLOSE.authTimeout). */
  authTimeoutMs: number;
}

/** How long before a token expires the relay warns the client (like Twilio's tokenAboutToExpire). */
const EXPIRY_WARNING_MS = 60_000;
/** A closed socket's close frame waits behind its unread data this long, then the connection is dropped. */
const CLOSE_GRACE_MS = 5_000;
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RelayHub {
  private readonly sessions = new Map<string, Set<Session>>();
  private readonly rateLimiter: RelayRateLimiter;
  /** Since start, for tests and metrics: the highest values seen on one socket, and sockets closed by the relay's codes. */
  readonly stats = {
    peakFramesInFlight: 0,
    peakBufferedBytes: 0,
    closed: { tokenExpired: 0, authTimeout: 0, backlog: 0 } satisfies Record<keyof typeof RELAY_CLOSE, number>,
  };

  constructor(
    private readonly store: Store,
    private readonly verifyToken: RelayTokenVerifier,
    private readonly log: RelayLogger,
    private readonly options: RelayHubOptions,
  ) {
    this.rateLimiter = new RelayRateLimiter(options.rateLimitPerMinute);
  }

  /** Serves one WebSocket connection until it closes. */
  accept(socket: WebSocket): void {
    const session: Session = { socket, identity: null, expiresAtMs: 0, inFlight: 0 };
    session.authTimer = setTimeout(() => this.end(session, 'authTimeout', 'no valid "auth" frame in time'), this.options.authTimeoutMs);
    session.authTimer.unref();
    // Frames are handled one at a time, in order, so a client's requests keep their order. With
    // framesInFlight waiting the socket is not read any further (TCP pushes back on the client).
    let queue = Promise.resolve();
    socket.on('message', (data, isBinary) => {
      session.inFlight++;
      this.stats.peakFramesInFlight = Math.max(this.stats.peakFramesInFlight, session.inFlight);
      if (session.inFlight >= RELAY_LIMITS.framesInFlight) socket.pause();
      queue = queue
        .then(() => this.onFrame(session, data as Buffer, isBinary))
        .catch((err: Error) => this.log.error({ err: err.message }, 'relay frame failed'))
        .finally(() => {
          session.inFlight--;
          if (socket.isPaused && session.inFlight < RELAY_LIMITS.framesInFlight) socket.resume();
        });
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
    // A socket that is closing gets no more work done for it.
    if (session.socket.readyState !== session.socket.OPEN) return;
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
      if (session.identity !== null) {
        const waitMs = this.rateLimiter.take(session.identity);
        if (waitMs > 0) {
          throw new RelayError('RATE_LIMITED', `over ${this.options.rateLimitPerMinute} relay requests a minute; retry in ${Math.ceil(waitMs / 1000)} s`);
        }
      }
      if (typeof frame.op !== 'string' || !Object.prototype.hasOwnProperty.call(this.handlers, frame.op)) {
        // Not String(op): an array nested thousands deep overflows the stack of Array#join.
        const what = typeof frame.op === 'string' ? `"${frame.op.slice(0, 64)}"` : `of type ${frame.op === null ? 'null' : typeof frame.op}`;
        throw new RelayError('BAD_REQUEST', `unknown op ${what}`);
      }
      const params = (typeof frame.params === 'object' && frame.params !== null ? frame.params : {}) as Record<string, unknown>;
      const op = frame.op as RelayOp;
      if (op !== 'auth' && session.identity === null) throw new RelayError('UNAUTHORIZED', 'send "auth" with a relay token first');
      if (op !== 'auth' && op !== 'updateToken' && Date.now() >= session.expiresAtMs) {
        throw new RelayError('TOKEN_EXPIRED', 'the relay token has expired; send "updateToken"');
      }
      const result = await this.handlers[op](session, params as never);
      this.send(session, JSON.stringify({ id, ok: true, result }));
    } catch (err) {
      const known = err instanceof RelayError;
      if (!known) this.log.error({ err: (err as Error).message }, 'relay request failed');
      const error = known ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: 'internal relay error' };
      this.send(session, JSON.stringify({ id, ok: false, error }));
    }
  }

  /** Sends, unless the client has left more than RELAY_LIMITS.bufferedBytes unread: then it closes the socket. */
  private send(session: Session, text: string): void {
    const { socket } = session;
    if (socket.readyState !== socket.OPEN) return;
    const waiting = socket.bufferedAmount;
    if (waiting > 0 && waiting + Buffer.byteLength(text) > RELAY_LIMITS.bufferedBytes) {
      this.end(session, 'backlog', 'too much unread data');
      return;
    }
    socket.send(text);
    this.stats.peakBufferedBytes = Math.max(this.stats.peakBufferedBytes, socket.bufferedAmount);
  }

  private push<K extends RelayEventName>(identities: Iterable<string>, event: K, data: RelayEvents[K]): void {
    const text = JSON.stringify({ event, data });
    const now = Date.now();
    for (const identity of new Set(identities)) {
      for (const s of this.sessions.get(identity) ?? []) if (now < s.expiresAtMs) this.send(s, text);
    }
  }

  /**
   * Closes a socket with one of RELAY_CLOSE's codes. The close frame queues behind what the client
   * has not read yet; a client that does not read it within CLOSE_GRACE_MS loses the connection.
   */
  private end(session: Session, why: keyof typeof RELAY_CLOSE, reason: string): void {
    const { socket } = session;
    if (socket.readyState !== socket.OPEN) return;
    this.stats.closed[why]++;
    this.log.info({ code: RELAY_CLOSE[why], reason }, 'relay socket closed');
    socket.close(RELAY_CLOSE[why], reason);
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
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
    clearTimeout(session.authTimer);
    clearTimeout(session.warningTimer);
    clearTimeout(session.expiryTimer);
    // Warn a minute ahead, or halfway through a shorter lifetime (so a refresh never loops).
    const lifetime = verified.expiresAtMs - Date.now();
    const warnIn = Math.max(0, lifetime - Math.min(EXPIRY_WARNING_MS, lifetime / 2));
    session.warningTimer = setTimeout(() => this.send(session, JSON.stringify({ event: 'tokenAboutToExpire', data: {} })), Math.min(warnIn, MAX_TIMER_MS));
    session.warningTimer.unref();
    // The session lasts as long as its newest token: no pushes on an expired one.
    session.expiryTimer = setTimeout(() => this.end(session, 'tokenExpired', 'the relay token expired'), Math.min(lifetime, MAX_TIMER_MS));
    session.expiryTimer.unref();
    return { identity: verified.identity };
  }

  private detach(session: Session): void {
    clearTimeout(session.authTimer);
    clearTimeout(session.warningTimer);
    clearTimeout(session.expiryTimer);
    if (session.identity === null) return;
    const set = this.sessions.get(session.identity);
    set?.delete(session);
    if (set?.size === 0) this.sessions.delete(session.identity);
  }

  /**
   * The conversation, if the caller may act on it: a current participant, or its creator while
   * the conversation is new (nobody in it, no messages: between createConversation and the first
   * join). Being the creator grants nothing once the conversation is in use.
   */
  private async accessible(identity: string, conversationSid: unknown): Promise<RelayConversation> {
    const sid = str(conversationSid, 'conversationSid', 256);
    const conversation = await this.store.getConversation(sid);
    if (!conversation) throw new RelayError('NOT_FOUND', `conversation ${sid} not found`);
    if (await this.store.isParticipant(conversation.sid, identity)) return conversation;
    if (conversation.createdBy === identity && (await this.isNew(conversation.sid))) return conversation;
    throw new RelayError('FORBIDDEN', 'not a participant of this conversation');
  }

  private async isNew(conversationSid: string): Promise<boolean> {
    if ((await this.store.participants(conversationSid)).length > 0) return false;
    return (await this.store.messages(conversationSid, { direction: 'backwards', limit: 1 })).length === 0;
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

    listConversations: async (session, p) => {
      const all = await this.store.conversationsOf(session.identity!);
      const start = Number.isSafeInteger(p.pageToken) && p.pageToken! > 0 ? p.pageToken! : 0;
      const items = withinAnswerBytes(all.slice(start, start + RELAY_LIMITS.pageSize).map(toConversationData));
      const next = start + items.length;
      return { items, nextPageToken: next < all.length ? next : null };
    },

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

    updateParticipantAttributes: async (session, p) => {
      const conversation = await this.accessible(session.identity!, p.conversationSid);
      const identity = str(p.identity, 'identity', RELAY_LIMITS.identityChars);
      if (identity !== session.identity) throw new RelayError('FORBIDDEN', 'a participant may update only its own attributes');
      if (p.attributes === undefined) throw new RelayError('BAD_REQUEST', '"attributes" is required');
      const updated = await this.store.updateParticipantAttributes(conversation.sid, identity, attributesText(p.attributes));
      if (!updated) throw new RelayError('FORBIDDEN', 'not a participant of this conversation');
      const data = toParticipantData(updated);
      this.push(await this.participantIdentities(conversation.sid), 'participantUpdated', data);
      return data;
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
      const rows = await this.store.messages(conversation.sid, { anchor, direction, limit: pageSize + 1 });
      // One extra row tells whether there is more in the paging direction.
      let more = rows.length > pageSize;
      if (more) {
        if (direction === 'backwards') rows.shift();
        else rows.pop();
      }
      // The answer holds the messages nearest the anchor that fit in answerBytes; the page then
      // says there is more, and the client pages on from where it stopped.
      const nearestFirst = rows.map(toMessageData);
      if (direction === 'backwards') nearestFirst.reverse();
      const items = withinAnswerBytes(nearestFirst);
      if (items.length < nearestFirst.length) more = true;
      if (direction === 'backwards') items.reverse();
      const first = items[0]?.index;
      const last = items[items.length - 1]?.index;
      const newest = (await this.store.messages(conversation.sid, { direction: 'backwards', limit: 1 }))[0]?.index ?? -1;
      return {
        items,
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
