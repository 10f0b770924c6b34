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
import type { WebSocket } from 'ws';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { RELAY_CLOSE, RELAY_LIMITS, type RelayEventName, type RelayEvents } from '../../shared/relay-protocol.js';
import type { Store } from '../store/types.js';
import type { RelayMediaService } from './media.js';
import { RelayOperations } from './operations.js';
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
  private readonly operations: RelayOperations;
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
    media: RelayMediaService,
    private readonly options: RelayHubOptions,
  ) {
    this.rateLimiter = new RelayRateLimiter(options.rateLimitPerMinute);
    this.operations = new RelayOperations(store, media, (identities, event, data) => this.push(identities, event, data));
  }

  /** Counts one request of `identity` against the relay's budget (media uploads too); ms to wait, 0 when allowed. */
  rateLimit(identity: string): number {
    return this.rateLimiter.take(identity);
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
      if (isBinary) throw new E2EEError(ErrorCode.BAD_REQUEST, 'frames must be JSON text');
      let frame: { id?: unknown; op?: unknown; params?: unknown };
      try {
        frame = JSON.parse(data.toString('utf8'));
      } catch {
        throw new E2EEError(ErrorCode.BAD_REQUEST, 'frame is not valid JSON');
      }
      if (typeof frame !== 'object' || frame === null || !Number.isSafeInteger(frame.id)) {
        throw new E2EEError(ErrorCode.BAD_REQUEST, 'frame needs a numeric "id"');
      }
      id = frame.id as number;
      if (session.identity !== null) {
        const waitMs = this.rateLimiter.take(session.identity);
        if (waitMs > 0) {
          throw new E2EEError(ErrorCode.RATE_LIMITED, `over ${this.options.rateLimitPerMinute} relay requests a minute; retry in ${Math.ceil(waitMs / 1000)} s`);
        }
      }
      const op = frame.op;
      if (typeof op !== 'string' || (op !== 'auth' && op !== 'updateToken' && !this.operations.has(op))) {
        // Not String(op): an array nested thousands deep overflows the stack of Array#join.
        const what = typeof op === 'string' ? `"${op.slice(0, 64)}"` : `of type ${op === null ? 'null' : typeof op}`;
        throw new E2EEError(ErrorCode.BAD_REQUEST, `unknown op ${what}`);
      }
      const params = (typeof frame.params === 'object' && frame.params !== null ? frame.params : {}) as Record<string, unknown>;
      if (op !== 'auth' && session.identity === null) throw new E2EEError(ErrorCode.UNAUTHORIZED, 'send "auth" with a relay token first');
      if (op !== 'auth' && op !== 'updateToken' && Date.now() >= session.expiresAtMs) {
        throw new E2EEError(ErrorCode.TOKEN_EXPIRED, 'the relay token has expired; send "updateToken"');
      }
      const result =
        op === 'auth' || op === 'updateToken'
          ? await this.authenticate(session, params.token)
          : await this.operations.handlers[op as keyof RelayOperations['handlers']](session.identity!, params as never);
      this.send(session, JSON.stringify({ id, ok: true, result }));
    } catch (err) {
      const known = isE2EEError(err);
      if (!known) this.log.error({ err: (err as Error).message }, 'relay request failed');
      const error = known ? err.toJSON() : { code: ErrorCode.INTERNAL, message: 'internal relay error' };
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
    if (typeof token !== 'string' || token.length === 0) throw new E2EEError(ErrorCode.UNAUTHORIZED, '"token" is required');
    let verified: { identity: string; expiresAtMs: number };
    try {
      verified = await this.verifyToken(token);
    } catch {
      throw new E2EEError(ErrorCode.UNAUTHORIZED, 'the relay token is invalid or expired');
    }
    if (session.identity !== null && session.identity !== verified.identity) {
      throw new E2EEError(ErrorCode.FORBIDDEN, 'a new token must be for the same identity');
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
}
